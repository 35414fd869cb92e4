"""Media content checks per core: NudeNet + Haar faces (`moderation.media.scan_rgb`) on 640 px
images, beside the rest of `process_image` (decode, quality features, renditions) in the same
run, one process. The machine is shared: the load average is printed.

    uv run python -m bench.media_moderation [--images 30]
"""

from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=30)
    args = parser.parse_args()
    from matplotlib import cbook

    from mediapipeline.images import process_image
    from moderation.media import scan_rgb

    portrait = Image.open(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    big = portrait.convert("RGB").resize((1080, 1266))
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    small = np.asarray(big.copy().resize((546, 640)))
    scan_rgb(small)  # load the models
    print(f"load average before: {os.getloadavg()}")
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.images):
        scan_rgb(small)
    scan_cpu = (time.process_time() - cpu) / args.images
    scan_wall = (time.perf_counter() - wall) / args.images
    cpu = time.process_time()
    for _ in range(args.images):
        process_image(data)
    full_cpu = (time.process_time() - cpu) / args.images
    print(
        f"content checks: {scan_cpu * 1000:.0f} ms CPU per image ({1 / scan_cpu:.1f} images/s per "
        f"core; wall {scan_wall * 1000:.0f} ms); whole process_image of a 1080x1266 JPEG with "
        f"them: {full_cpu * 1000:.0f} ms CPU ({full_cpu and scan_cpu / full_cpu:.0%} is the checks)"
    )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
