"""Hashtag and location suggestions against popularity on held-out use (Recall@10).

    uv run python -m bench.suggestions_quality --users 1000 --days 3 --seed 7

Straight from the generator (no platform build): the serving code (`serving.hashtags`,
`serving.locations`) runs on a snapshot of the posts created before a cutoff (the last
`--holdout` share of the window is held out), with the follows live at the cutoff, private
accounts and blocks. Held-out use = the distinct hashtags / places each user puts on their own
posts after the cutoff; Recall@10 = share of them among the user's 10 suggestions, averaged over
users with any. The baseline is the same module's popularity fallback for that viewer (visible
posts only), so both lists pass the same visibility filter. No impressions are simulated, so
"seen" posts do not contribute here (follows and own posts do).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd


def build(users: int, days: int, seed: int, holdout: float) -> tuple[Any, pd.DataFrame]:
    from serving.snapshot import Posts
    from visibility import VisibilityGraph
    from workload.config import WorkloadConfig
    from workload.content import build_content
    from workload.graph import build_graph
    from workload.vocab import CITIES

    config = WorkloadConfig(users=users, days=days, seed=seed)
    rng = np.random.default_rng(seed)
    graph = build_graph(config, rng)
    content = build_content(config, graph, rng)
    posts = content.posts.copy()
    posts["hashtags"] = [[content.hashtags[t] for t in tags] for tags in content.post_tags]
    loc = posts["location"].to_numpy()
    posts["location_id"] = [int(CITIES[i][0]) if i >= 0 else 0 for i in loc]
    posts["location_name"] = [str(CITIES[i][1]) if i >= 0 else "" for i in loc]
    lo, hi = int(posts["created_ms"].min()), int(posts["created_ms"].max())
    cutoff = lo + int((1.0 - holdout) * (hi - lo))
    before = posts[(posts["created_ms"] < cutoff) & (posts["deleted_ms"] > cutoff)]
    after = posts[(posts["created_ms"] >= cutoff) & (posts["deleted_ms"] > hi)]
    edges = graph.feed_edges
    live = edges[(edges["from_ms"] < cutoff) & (edges["to_ms"] > cutoff)]
    n = graph.n
    visibility = VisibilityGraph.from_edges(
        follows=zip(live["viewer"].tolist(), live["author"].tolist(), strict=True),
        blocks=[(code // n, code % n) for code in graph.blocked_ever],
        private_users=np.flatnonzero(graph.users["is_private"].to_numpy()).tolist(),
    )
    frame = pd.DataFrame(
        {
            "post_id": before["post_id"].to_numpy(),
            "author_id": before["author"].to_numpy(),
            "created_ts": before["created_ms"].to_numpy() / 1000.0,
            "media_type": "photo",
            "hashtags": before["hashtags"].to_list(),
            "popularity": 1.0,
            "location_id": before["location_id"].to_numpy(),
            "location_name": before["location_name"].to_list(),
        }
    )
    snapshot = SimpleNamespace(
        posts=Posts(frame, frozenset()),
        visibility=visibility,
        follows=visibility.follows,
        seen_posts={},
    )
    return snapshot, after


def popular_for(snapshot: Any, user: int, name: str, k: int) -> list[Any]:
    """The popularity fallback for this viewer: most used tags / places over the posts they may
    see (their own visibility, none of their taste), ties by name as in serving."""
    from collections import Counter

    from serving.hashtags import taste_weights

    visible, _ = taste_weights(snapshot, user)
    counts: Counter[Any] = Counter()
    posts = snapshot.posts
    for row in np.flatnonzero(visible).tolist():
        if name == "hashtags":
            counts.update({str(t).lower() for t in posts.frame["hashtags"].iat[row]})
        elif posts.location_ids[row] > 0:
            counts[int(posts.location_ids[row])] += 1
    return [item for item, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def recall(suggested: list[Any], held: set[Any]) -> float:
    return len(set(suggested) & held) / len(held)


def main(argv: list[str] | None = None) -> None:
    from serving import hashtags, locations

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout", type=float, default=0.25)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--max-users", type=int, default=400, help="evaluated users (sampled)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    snapshot, after = build(args.users, args.days, args.seed, args.holdout)
    held_tags: dict[int, set[str]] = {}
    held_places: dict[int, set[int]] = {}
    for author, tags, place in after[["author", "hashtags", "location_id"]].itertuples(index=False):
        held_tags.setdefault(int(author), set()).update(t.lower() for t in tags)
        if place > 0:
            held_places.setdefault(int(author), set()).add(int(place))
    rng = np.random.default_rng(args.seed)
    results = {}
    for name, module, held, key in (
        ("hashtags", hashtags, held_tags, lambda item: item[0]),
        ("locations", locations, held_places, lambda item: item[0]),
    ):
        users = sorted(u for u, s in held.items() if s)
        if len(users) > args.max_users:
            users = sorted(rng.choice(users, args.max_users, replace=False).tolist())
        model, base, taste_share = [], [], 0
        for user in users:
            version, ranked = getattr(module, f"suggest_{name}")(snapshot, user, args.k)
            taste_share += version == module.MODEL_VERSION
            model.append(recall([key(r) for r in ranked], held[user]))
            visible = popular_for(snapshot, user, name, args.k)
            base.append(recall(visible, held[user]))
        results[name] = (len(users), taste_share, float(np.mean(model)), float(np.mean(base)))
    from serving.suggestion_gate import SUGGESTERS, evaluate

    gates = {name: evaluate(snapshot, SUGGESTERS[name]) for name in results}
    took = time.perf_counter() - start
    print(f"users={args.users} days={args.days} seed={args.seed} holdout={args.holdout}")
    print(f"| suggestions | users | taste model used | Recall@{args.k} | popularity | ratio |")
    print("|---|---|---|---|---|---|")
    for name, (n, share, m, b) in results.items():
        ratio = m / b if b else float("nan")
        print(f"| {name} | {n} | {share} | {m:.3f} | {b:.3f} | {ratio:.2f}x |")
    for decision in gates.values():  # what serving would do on this snapshot (its own holdout)
        serves = "taste model" if decision.serve_model else "popularity baseline"
        print(f"gate serves the {serves}: {decision.reason}")
    print(f"({took:.1f} s)")


if __name__ == "__main__":
    main()
