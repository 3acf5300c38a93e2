#!/usr/bin/env bash
# GPU check of the CUDA-built train-job, run on the GPU machine from the repo root:
#   bash infra/cuda-check/check.sh          (with .tools/cuda/device carried along)
# Needs .tools/cuda/device/train-job.gz (strip + gzip of the `--features cuda` build) and
# .tools/cuda/device/store (prepared here: ingest + features + the linear/mlp training file).
# Evidence that candle ran on CUDA:
#   * train-job logs "candle trains on the GPU" with the device (nn::device()),
#   * the process opens /dev/nvidia* (cuInit only happens inside Device::new_cuda),
#   * the driver JIT-compiles candle's sm_90a PTX into CUDA_CACHE_PATH (files appear),
#   * a control run with CUDA_VISIBLE_DEVICES= (nn::device() warns and falls back to the CPU)
#     does none of these, and must reach the same metrics.
set -u
D="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.tools/cuda/device"
O="${OUT:-/tmp/out}"; mkdir -p "$O"
KEY=$(cd "$D/store" && ls features/card_activity/v=*/_manifest.json | head -1)
echo "trigger key: $KEY"
NV=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
L=""
for d in "$NV/cu13/lib" "$NV"/*/lib /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
  [ -d "$d" ] && L="$L:$d"
done
export LD_LIBRARY_PATH="${L#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

nvidia-smi -L
nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.used --format=csv

B=/tmp/train-job
gunzip -c "$D/train-job.gz" > "$B" && chmod +x "$B" || { echo "no $D/train-job.gz"; exit 2; }
echo "--- ldd (CUDA libs)"
ldd "$B" | grep -E 'cuda|cublas|curand|nvrtc|cudart|not found'
if ldd "$B" | grep -q 'not found'; then
  echo "missing libraries; candidates:"
  find /opt/torch/.venv /usr/local/cuda* /usr/local/nvidia /usr/lib/x86_64-linux-gnu \
    \( -name 'libcuda.so*' -o -name 'libcublas*.so*' -o -name 'libcurand.so*' \
       -o -name 'libnvrtc.so*' -o -name 'libcudart.so*' \) 2>/dev/null | head -30
fi

run() { # name, extra env...
  local n=$1; shift
  rm -rf "/tmp/s-$n" "/tmp/jit-$n"; cp -rL "$D/store" "/tmp/s-$n"
  local t0=$(date +%s.%N) start=$SECONDS
  # env execs the binary, so $! is train-job itself (its /proc/PID/fd is what we sample)
  env "$@" CUDA_CACHE_PATH="/tmp/jit-$n" MLPIPE_STORE="/tmp/s-$n" MLPIPE_TRIGGER_KEY="$KEY" \
    "$B" > "$O/$n.log" 2>&1 &
  local pid=$! fds=0 seen="" c
  while kill -0 $pid 2>/dev/null; do
    c=$(ls -l /proc/$pid/fd 2>/dev/null | grep -cE '/dev/nvidia[0-9]'); [ "$c" -gt "$fds" ] && fds=$c
    [ -z "$seen" ] && seen=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader 2>/dev/null | head -3)
    [ $((SECONDS - start)) -gt 240 ] && { echo "timeout: killing $n"; kill $pid; }
    sleep 0.3
  done
  wait $pid; local rc=$?
  local t1=$(date +%s.%N)
  echo "=== $n: rc=$rc wall=$(awk "BEGIN{printf \"%.1f\", $t1-$t0}")s max_fds_on_/dev/nvidiaN=$fds" \
       "jit_cache_files=$(find /tmp/jit-$n -type f 2>/dev/null | wc -l) compute_apps='${seen}'"
  grep -E 'candle|"level":"(ERROR|WARN)"|panicked' "$O/$n.log" | head -5
  tail -n 1 "$O/$n.log" | cut -c1-400
}
run gpu
run cpu CUDA_VISIBLE_DEVICES=
