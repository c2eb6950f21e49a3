#!/usr/bin/env bash
# The benchmark runs behind docs/benchmarks.md (about 10 CPU-core hours; two of these commands
# can run side by side on 2 cores if their --out folders differ). Resumable: rerun to continue
# an interrupted run; finished (dataset, model, seed, budget) runs are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH=.venv/bin/scmodtt-benchmark
# One torch/BLAS thread per process: the runs are small, and two processes share 2 cores better.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

# Every model trains until its early stopping or its own default schedule (no epoch cap); the
# epochs each run took are in results.csv (metric "epochs").
REAPSEQ="--data reapseq_pbmc --exclude-labels doublet-like,low_quality --min-cells-per-label 40"
BMMC="--data bmmc_cite --batch-key batch --min-cells-per-label 40 --metric-min-cells 8"
ABLATIONS=modtt-tt:random,modtt-dense:random,modtt-tt:hallmark,modtt-dense:hallmark

# Every model at its default size, 5 seeds (REAP-seq about 40 CPU-minutes per seed). Two
# processes can share the seeds: `--seeds 0-2` and `--seeds 3,4` into two --out folders, then
# concatenate their results.csv into one (each run is a complete block of rows).
$BENCH $REAPSEQ --seeds 5 --out results/reapseq --no-report
$BENCH $BMMC --seeds 5 --out results/bmmc --no-report

# Module ablations (random and Hallmark modules), 3 seeds.
$BENCH $REAPSEQ --seeds 3 --models $ABLATIONS --out results/reapseq --no-report
$BENCH $BMMC --seeds 3 --models $ABLATIONS --out results/bmmc --no-report

# Parameter budgets (the paper's Figure 2), 3 seeds. Dense coupling has one size knob
# (module_dim) and cannot land within ±10% of every budget: those runs are skipped and reported.
$BENCH $REAPSEQ --seeds 3 --models modtt-tt,modtt-dense,flat --budgets 60k,200k,500k,1m \
    --out results/reapseq
$BENCH $BMMC --seeds 3 --models modtt-tt,modtt-dense,flat --budgets 60k,100k,200k,500k,1m \
    --out results/bmmc

# Whole transcriptome: every gene detected in >= 10 training cells, 300 RNA modules.
$BENCH $REAPSEQ --n-top-genes 0 --n-modules rna=300,prot=20 --seeds 2 \
    --models modtt-tt,modtt-dense,flat,totalvi,linear,oracle --out results/reapseq_whole

# Likelihoods: the reference paper's Gaussian losses on log1p / CLR instead of NB.
$BENCH $REAPSEQ --seeds 3 --models modtt-tt,modtt-dense,flat \
    --gene-likelihood normal --protein-likelihood normal --out results/reapseq_gaussian

# Speed: every model in fresh processes, interleaved, 3 repeats (run it on an idle machine).
$BENCH --task speed --repeats 3 --out results/speed

# Reference mapping (transfer), 3 seeds each: REAP-seq samples, BMMC batches, the PBMC panel.
TRANSFER="$BENCH --task transfer --seeds 3"
$TRANSFER --data reapseq_pbmc --batch-key sample --exclude-labels doublet-like,low_quality \
    --out results/transfer_reapseq
$TRANSFER --data bmmc_cite --batch-key batch --out results/transfer_bmmc
$TRANSFER --data pbmc_panel --batch-key dataset --query-batch eccite --reference-batches reapseq \
    --exclude-labels doublet-like,low_quality --out results/transfer_pbmc_panel
# Modality dropout of the reference (MODTT query mapping only).
for dropout in 0.0 0.25; do
    $TRANSFER --data reapseq_pbmc --batch-key sample --exclude-labels doublet-like,low_quality \
        --models modtt_query --protein-dropout $dropout --out results/transfer_reapseq_dropout_$dropout
done

# Peak memory of training from disk against in memory (50k and 200k synthetic cells).
.venv/bin/python scripts/measure_ondisk_rss.py run --folder /tmp/scmodtt_ondisk --sizes 50000 200000 \
    --epochs 2 --results docs/benchmark_reports/ondisk_rss.json --figure docs/figures/ondisk_rss.png
