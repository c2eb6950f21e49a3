#!/usr/bin/env bash
# The benchmark runs behind docs/benchmarks.md (2 CPU cores: about 1.5 hours). Resumable: rerun
# to continue an interrupted run; finished (dataset, model, seed, budget) runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=.venv/bin/scmodtt-benchmark
$BENCH --data reapseq_pbmc --seeds 3 --max-epochs 40 \
    --exclude-labels doublet-like,low_quality --min-cells-per-label 40 --out results/reapseq
$BENCH --data bmmc_cite --batch-key batch --seeds 3 --max-epochs 100 \
    --min-cells-per-label 40 --metric-min-cells 8 --out results/bmmc
