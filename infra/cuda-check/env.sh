# Source me (bash): `source infra/cuda-check/env.sh` from the repo root, then
#   cargo build -p train --bin train-job --features cuda
# Build-time only; the run-time library path is set by check.sh on the GPU machine.
_CU_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.tools/cuda"
export CUDA_ROOT="$_CU_HERE/site/nvidia/cu13"
# cudarc's build.rs (dynamic-linking, the feature candle-core 0.11.1 turns on) takes link-search
# dirs from CUDA_HOME/CUDA_PATH/CUDA_ROOT/CUDA_TOOLKIT_ROOT_DIR: <root>/lib and <root>/lib/stubs.
export CUDA_HOME="$CUDA_ROOT"
export CUDA_PATH="$CUDA_ROOT"
export CUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT"
# nvcc: cudaforge (candle-kernels' build helper) takes $NVCC, then PATH; cudarc runs
# `nvcc --version` from PATH (feature cuda-version-from-build-system) -> "13.0" -> cuda-13000.
export PATH="$CUDA_ROOT/bin:$PATH"
export NVCC="$CUDA_ROOT/bin/nvcc"
# H100/H200: cudaforge turns "90" into sm_90a / compute_90a (no nvidia-smi here to detect it).
export CUDA_COMPUTE_CAP=90
# candle-kernels emits -lcudart without a search path; the cc linker also reads LIBRARY_PATH.
export LIBRARY_PATH="$CUDA_ROOT/lib:$CUDA_ROOT/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
# 2-core machine: nvcc jobs inside candle-kernels' build script (rayon pool).
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-2}"
# Host compiler: gcc 12 from PATH works with nvcc 13.0 as is; NVCC_CCBIN is left unset on
# purpose (when set, cudaforge also adds -allow-unsupported-compiler).
unset _CU_HERE
