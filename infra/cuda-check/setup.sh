#!/usr/bin/env bash
# Prepare a CUDA 13.0 build toolchain from PyPI wheels under .tools/cuda (git-ignored); run from anywhere.
# Matches the GPU image: torch 2.11.0+cu130 pins cuda-toolkit==13.0.2 (cublas 13.1.0.3,
# cudart 13.0.96, nvrtc 13.0.88, curand 10.4.0.35); nvcc/crt/nvvm 13.0.88; cccl 13.0.85.
# Idempotent. Does NOT run cargo.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.tools/cuda"; mkdir -p "$HERE"
SITE="$HERE/site"
ROOT="$SITE/nvidia/cu13"

if [ ! -x "$ROOT/bin/nvcc" ]; then
  python3 -m pip install --no-compile --target "$SITE" \
    "cuda-toolkit[nvcc,crt,nvvm,cudart,cublas,curand,nvrtc,cccl]==13.0.2"
fi

# 1. Unversioned names for the linker (-lcublas -lcublasLt -lcurand -lnvrtc -lcudart).
#    The wheels only ship the SONAME files; DT_NEEDED in the binary stays libX.so.N.
cd "$ROOT/lib"
ln -sf libcublas.so.13   libcublas.so
ln -sf libcublasLt.so.13 libcublasLt.so
ln -sf libcurand.so.10   libcurand.so
ln -sf libnvrtc.so.13    libnvrtc.so
ln -sf libcudart.so.13   libcudart.so

# 2. libcuda.so link stub (the driver is not here; no wheel ships the stub).
#    Exports every cu* entry point cudarc 0.19.10 declares; SONAME libcuda.so.1 so the binary
#    needs the real driver's libcuda.so.1 at run time. Never put lib/stubs on LD_LIBRARY_PATH.
mkdir -p "$ROOT/lib/stubs"
CUDARC_SRC="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10 | head -1)"
[ -d "$CUDARC_SRC" ] || { echo "cudarc-0.19.10 source missing: run cargo fetch" >&2; exit 1; }
{
  echo '/* generated link stub for libcuda.so.1 */'
  grep -oE '^\s+fn cu\w+\(' "$CUDARC_SRC/src/driver/sys/mod.rs" \
    | sed -E 's/^\s+fn (cu\w+)\(/\1/' | sort -u \
    | while read -r s; do echo "int $s(void){return 999;}"; done
} > "$HERE/libcuda_stub.c"
gcc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 -o "$ROOT/lib/stubs/libcuda.so" "$HERE/libcuda_stub.c"

"$ROOT/bin/nvcc" --version | tail -2
echo "setup ok: CUDA_ROOT=$ROOT"
