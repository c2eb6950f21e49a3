#!/usr/bin/env bash
# The benchmark runs behind docs/benchmarks.md (2 CPU cores: ~2 hours). Resumable: rerun to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=.venv/bin/scmodtt-benchmark
$BENCH --data bmmc_cite --batch-key batch --seeds 5 --max-epochs 100 \
    --min-cells-per-label 40 --metric-min-cells 8 --out results/bmmc
$BENCH --data reapseq_pbmc --seeds 3 --max-epochs 60 \
    --exclude-labels doublet-like,low_quality --min-cells-per-label 40 --out results/reapseq
