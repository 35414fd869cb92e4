"""The capacity model's arithmetic (`bench.capacity`): cores are the load over the measured
per-core rate rounded up, and the named first bottleneck is the stage that needs the most."""

import math

from bench import capacity


def test_cores_are_load_over_the_measured_rate_rounded_up() -> None:
    table = {s.name: s for s in capacity.stages(uncached_share=0.1)}
    kafka = table["Kafka -> ClickHouse ingestion (peak)"]
    # 6,000 posts/s x 32.6 events per post / 15,072 events/s per consumer core.
    assert kafka.load == capacity.PEAK_POSTS_PER_S * capacity.EVENTS_PER_POST
    assert kafka.cores == math.ceil(195_863 / 15_072) == 13
    uncached = table["serving, uncached feed (rebuild + rank, peak)"]
    assert uncached.cores == math.ceil(300_000 * 0.1 / 32) == 938
    assert table["Redis feed reads (peak)"].cores is None  # not measured stays not measured


def test_first_bottleneck_is_the_stage_with_the_most_cores() -> None:
    for share in (0.0, 0.1, 0.29, 0.3, 1.0):
        table = capacity.stages(uncached_share=share)
        top = capacity.first_bottleneck(table)
        assert top.cores == max(s.cores for s in table if s.cores is not None)
    media = capacity.first_bottleneck(capacity.stages(0.1))
    assert media.name.startswith("media")
    crossover = capacity.crossover_uncached_share(media.cores or 0)
    below = capacity.first_bottleneck(capacity.stages(crossover - 0.01))
    above = capacity.first_bottleneck(capacity.stages(crossover + 0.01))
    assert below.name.startswith("media") and above.name.startswith("serving, uncached")
