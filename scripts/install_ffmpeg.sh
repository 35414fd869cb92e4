#!/usr/bin/env bash
# Install Debian's ffmpeg (ffmpeg + ffprobe) for the media pipeline's video renditions
# (mediapipeline/videos.py, tests/test_media_pipeline.py). Idempotent: does nothing but print
# the version when it is already installed.
set -euo pipefail

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install_ffmpeg.sh: installing ffmpeg needs root (try: sudo bash $0)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    # Refresh the package lists only when apt does not know the package yet.
    if ! apt-cache show ffmpeg >/dev/null 2>&1; then
        apt-get update -q
    fi
    apt-get install -y -q --no-install-recommends ffmpeg
fi

ffmpeg -version | head -n 1
