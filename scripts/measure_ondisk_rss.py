"""Peak memory of MODTT trained from an on-disk store against the same cells in memory.

1. ``prepare``: trains MODTT on the bundled REAP-seq data (2,000 HVGs + all 48 ADTs, Ward modules
   50 RNA + 20 ADT, labels ``cell_type``: the speed benchmark's data), then writes on-disk stores
   of its synthetic cells (``model.sample``, cell types in the training proportions, 10,000 cells
   per chunk) with :func:`scmodtt.io.write_h5mu_store`, one per size.
2. ``measure``: in a fresh process, opens one store on disk (:func:`scmodtt.io.read_h5mu_store`)
   or reads it into memory (:func:`mudata.read_h5mu`), sets MODTT up, trains it for a few epochs
   (no early stopping) and fits its flow prior, and prints as JSON the peak resident memory
   after set-up, after training and after the flow fit. The peak is the kernel's ``VmHWM``,
   restarted after the imports (their own peak, ``ru_maxrss`` then, is reported apart: it would
   hide anything smaller), so it counts what stays resident from the imports plus what the data
   and the training add.
3. ``run`` (the default): ``prepare`` if needed, then ``measure`` for every size and mode, each in
   its own process, written to ``--results`` and drawn to ``--figure``.

Usage (the stores, ≈ 0.4 GB at 200,000 cells, go under ``--folder``, not into the repository)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/measure_ondisk_rss.py run \\
        --folder /tmp/scmodtt_ondisk --sizes 50000 200000 --epochs 2 \\
        --results docs/benchmark_reports/ondisk_rss.json --figure docs/figures/ondisk_rss.png
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

#: Cells generated per ``model.sample`` call while a store is written.
CHUNK_CELLS = 10_000
LABELS_KEY = "cell_type"
MODALITIES = {"rna_layer": "rna", "protein_layer": "prot"}


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak() -> float:
    """Restart the kernel's peak-RSS counter (Linux ≥ 4.0); return the RSS now, MiB.

    Importing torch, Lightning and scvi-tools peaks above what they keep resident; without the
    reset, that import peak would hide everything the data adds below it.
    """
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


def peak_since_reset_mib() -> float:
    """Peak resident set size since :func:`reset_peak`, MiB (``VmHWM``)."""
    return _status_mib("VmHWM")


def store_path(folder: Path, n_cells: int) -> Path:
    return folder / f"synthetic_{n_cells}.h5mu"


# ---------------------------------------------------------------------- prepare
def prepare(folder: Path, sizes: list[int], epochs: int, seed: int) -> None:
    """Train the generating model on REAP-seq and write a store of synthetic cells per size."""
    import numpy as np
    import scvi

    import scmodtt

    folder.mkdir(parents=True, exist_ok=True)
    scvi.settings.seed = seed
    mdata = scmodtt.datasets.reapseq_pbmc()
    hvg = scmodtt.pp.highly_variable_genes(mdata, n_top_genes=2000, subset=True)
    scmodtt.pp.find_modules(hvg, n_modules={"rna": 50, "prot": 20}, method="ward")
    scmodtt.MODTT.setup_mudata(hvg, labels_key=LABELS_KEY, modalities=dict(MODALITIES))
    model = scmodtt.MODTT(hvg)
    model.train(max_epochs=epochs, enable_progress_bar=False)
    shares = hvg.obs[LABELS_KEY].value_counts(normalize=True)
    membership = model.module_membership_

    def chunks(n_cells: int):
        for index, start in enumerate(range(0, n_cells, CHUNK_CELLS)):
            size = min(CHUNK_CELLS, n_cells - start)
            counts = np.floor(shares.to_numpy() * size).astype(int)
            counts[0] += size - counts.sum()
            chunk = model.sample(
                dict(zip(shares.index, counts.tolist(), strict=True)), seed=seed + index
            )
            names = [f"c{start + i}" for i in range(chunk.n_obs)]
            for mod, role in zip(MODALITIES.values(), ("rna", "protein"), strict=True):
                chunk[mod].obs_names = names
                # The model's modules, so that the store sets MODTT up on its own.
                chunk[mod].varm["modtt_modules"] = membership[role].loc[chunk[mod].var_names]
            chunk.obs_names = names
            yield chunk

    for n_cells in sizes:
        began = time.perf_counter()
        path = scmodtt.io.write_h5mu_store(store_path(folder, n_cells), chunks(n_cells), True)
        print(
            f"wrote {path} ({path.stat().st_size / 2**20:.0f} MiB) in "
            f"{time.perf_counter() - began:.0f} s",
            flush=True,
        )


# ---------------------------------------------------------------------- measure
def measure(path: Path, mode: str, epochs: int, flow_epochs: int, seed: int) -> dict:
    """Set MODTT up on one store (on disk or read into memory), train it, report peak RSS."""
    import gc

    import mudata
    import scvi

    import scmodtt

    record = {"store": str(path), "mode": mode, "epochs": epochs, "flow_epochs": flow_epochs}
    record["peak_rss_mib_import"] = peak_rss_mib()
    gc.collect()
    record["rss_mib_before_data"] = reset_peak()
    began = time.perf_counter()
    if mode == "disk":
        mdata = scmodtt.io.read_h5mu_store(path)
    else:
        mudata.set_options(pull_on_update=False)
        mdata = mudata.read_h5mu(path)
    record["n_cells"] = int(mdata.n_obs)
    record["n_features"] = {mod: int(mdata[mod].n_vars) for mod in mdata.mod}
    record["store_mib"] = path.stat().st_size / 2**20
    scvi.settings.seed = seed
    scmodtt.MODTT.setup_mudata(mdata, labels_key=LABELS_KEY, modalities=dict(MODALITIES))
    model = scmodtt.MODTT(mdata)
    record["setup_s"] = time.perf_counter() - began
    record["peak_rss_mib_setup"] = peak_since_reset_mib()
    began = time.perf_counter()
    model.train(
        max_epochs=epochs,
        early_stopping=False,
        flow_prior=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    record["train_s"] = time.perf_counter() - began
    record["peak_rss_mib_train"] = peak_since_reset_mib()
    began = time.perf_counter()
    model.fit_flow_prior(max_epochs=flow_epochs, progress=False)
    record["flow_s"] = time.perf_counter() - began
    record["peak_rss_mib"] = peak_since_reset_mib()
    record["peak_rss_mib_whole_process"] = peak_rss_mib()
    record["elbo_train_last"] = float(model.history["elbo_train"].to_numpy().ravel()[-1])
    return record


# ---------------------------------------------------------------------- run all
def run(args) -> list[dict]:
    folder = Path(args.folder)
    missing = [n for n in args.sizes if not store_path(folder, n).exists()]
    if missing:
        prepare(folder, missing, args.prepare_epochs, args.seed)
    records = []
    for n_cells in args.sizes:
        for mode in args.modes:
            # A fresh process per measurement: peak RSS only ever grows within one.
            command = [
                sys.executable,
                __file__,
                "measure",
                "--store",
                str(store_path(folder, n_cells)),
                "--mode",
                mode,
                "--epochs",
                str(args.epochs),
                "--flow-epochs",
                str(args.flow_epochs),
                "--seed",
                str(args.seed),
            ]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            record = json.loads(output.strip().splitlines()[-1])
            print(json.dumps(record), flush=True)
            records.append(record)
    result = {
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "command": " ".join(["scripts/measure_ondisk_rss.py", *sys.argv[1:]]),
        "records": records,
    }
    if args.results:
        Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    if args.figure:
        draw(records, Path(args.figure))
    return records


def draw(records: list[dict], path: Path) -> None:
    """Peak RSS against cells, one line per mode, the data size in memory for scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for mode, label, marker in (("disk", "on disk (backed)", "o"), ("memory", "in memory", "s")):
        rows = sorted((r for r in records if r["mode"] == mode), key=lambda r: r["n_cells"])
        if rows:
            ax.plot(
                [r["n_cells"] / 1000 for r in rows],
                [r["peak_rss_mib"] / 1024 for r in rows],
                marker=marker,
                label=label,
            )
    ax.set_xlabel("cells (thousands)")
    ax.set_ylabel("peak RSS (GiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("MODTT training: peak memory", fontsize=10)
    ax.legend(frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    run_parser = commands.add_parser("run", help="prepare if needed, measure every size and mode")
    run_parser.add_argument("--folder", default="/tmp/scmodtt_ondisk")
    run_parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000])
    run_parser.add_argument("--modes", nargs="+", default=["disk", "memory"])
    run_parser.add_argument("--epochs", type=int, default=2)
    run_parser.add_argument("--flow-epochs", type=int, default=1)
    run_parser.add_argument("--prepare-epochs", type=int, default=50)
    run_parser.add_argument("--seed", type=int, default=0)
    run_parser.add_argument("--results", default=None)
    run_parser.add_argument("--figure", default=None)
    measure_parser = commands.add_parser("measure", help="one measurement (a fresh process)")
    measure_parser.add_argument("--store", required=True)
    measure_parser.add_argument("--mode", choices=["disk", "memory"], required=True)
    measure_parser.add_argument("--epochs", type=int, default=2)
    measure_parser.add_argument("--flow-epochs", type=int, default=1)
    measure_parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.command == "measure":
        record = measure(Path(args.store), args.mode, args.epochs, args.flow_epochs, args.seed)
        print(json.dumps(record), flush=True)
    else:
        if args.command is None:
            args = run_parser.parse_args(sys.argv[1:])
        run(args)


if __name__ == "__main__":
    main()
