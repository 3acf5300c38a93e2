#!/usr/bin/env bash
# After `source .tools/cuda/env.sh && cargo build -p train --bin train-job --features cuda`:
# strip + gzip the binary into the carried folder (a stripped debug build is ~70 MB, over the
# 64 MiB carry limit; gzip -1 brings it to ~25-30 MB) and show what it needs at run time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BIN=${1:-target/debug/train-job}
readelf -d "$BIN" | grep NEEDED
readelf -d "$BIN" | grep -q 'libcublas.so.13' || { echo "$BIN is not the CUDA build" >&2; exit 1; }
strip -o .tools/cuda/device/train-job "$BIN"
gzip -1 -f .tools/cuda/device/train-job
ls -la .tools/cuda/device/train-job.gz
LD_LIBRARY_PATH=.tools/cuda/site/nvidia/cu13/lib ldd "$BIN" | grep -E 'cuda|cublas|curand|nvrtc|not found' || true
du -sh .tools/cuda/device
