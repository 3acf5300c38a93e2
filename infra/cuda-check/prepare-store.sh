#!/usr/bin/env bash
# Builds .tools/cuda/device/store with an already-built `mlpipe` (no cargo): ingest + features
# of examples/fraud with training switched off, then the GPU training file (candle families
# only: linear + mlp, which train through nn::device()) published with `mlpipe push`, so the
# device runs training alone.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
T=.tools/cuda
S=$T/device/store
M=${MLPIPE_BIN:-target/debug/mlpipe}
rm -rf "$S" "$T/project-features" "$T/project-gpu"; mkdir -p "$T/device"
cp -r examples/fraud "$T/project-features"
rm -rf "$T/project-features/training"
sed -i 's/^training *=.*/training = []/' "$T/project-features/mlpipe.toml"
cp -r examples/fraud "$T/project-gpu"
cp infra/cuda-check/gpu-training.toml "$T/project-gpu/training/fraud.toml"
"$M" --store "$S" run --project "$T/project-features" --json > "$T/run-features.json"
"$M" --store "$S" push --project "$T/project-gpu"
rm -rf "$S/raw" "$S/_online"   # train-job reads features/ definitions/ models/ requests/ runs/
ls "$S"/features/card_activity/ | grep '^v='
du -sh "$S"
