"""Where one training step of MODTT goes: data, likelihood, modular layers, coupling, optimizer.

Trains MODTT (Tensor-Train coupling by default) on the bundled REAP-seq data (2,000 HVGs + all ADTs,
Ward modules 50 RNA + 20 ADT, labels ``cell_type``, as the benchmark prepares it)
on one thread, times whole epochs without the profiler, then profiles training epochs with
:mod:`torch.profiler` and prints each part's milliseconds per step and share of the step.

Attribution: forward ops fall to the part whose ``forward`` (or likelihood ``distribution`` /
``log_prob``) they run in; a backward op falls to the part that created its autograd node (matched
by the profiler's sequence numbers); data loading is the DataLoader's ``__next__`` (fetching,
densifying and collating the mini-batch); the optimizer is Adam's ``step`` and ``zero_grad`` minus
the forward and backward its closure runs. Validation is profiled apart and left out of the
per-step shares. Profiling adds overhead to every op, so absolute milliseconds are inflated; the
wall-clock seconds per epoch come from the unprofiled epochs.

Usage (the source tree tested is the one ``scmodtt`` imports from; ``PYTHONPATH=/tmp/src_before``
runs a copy of older sources)::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/profile_step.py --epochs 3 --profile-epochs 1
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections import defaultdict
from pathlib import Path

import mudata
import torch
from lightning.pytorch.callbacks import Callback
from torch.profiler import ProfilerActivity, profile, record_function

import scmodtt
from scmodtt.module._likelihoods import FeatureLikelihood
from scmodtt.nn import ModularDecoder, ModularEncoder, TokenCoupling

LABELS = {
    ModularEncoder: "modular layers",
    ModularDecoder: "modular layers",
    TokenCoupling: "coupling",
}
PARTS = (
    "data loading",
    "likelihood",
    "modular layers",
    "coupling",
    "other model ops",
    "optimizer",
    "framework (Lightning, Python)",
)
_TAG = "scmodtt::"
_DATA_LOADER = "enumerate(DataLoader)"
_OPTIMIZER = "Optimizer."
_BACKWARD = "autograd::engine::evaluate_function"


def prepare(path: Path, n_top_genes: int) -> None:
    """REAP-seq, ``n_top_genes`` HVGs, Ward modules: the speed benchmark's data."""
    mdata = scmodtt.datasets.reapseq_pbmc()
    hvg = scmodtt.pp.highly_variable_genes(mdata, n_top_genes=n_top_genes, subset=True)
    scmodtt.pp.find_modules(hvg, n_modules={"rna": 50, "prot": 20}, method="ward")
    hvg.write(path)


# ---------------------------------------------------------------------- instrumentation
def _enter(label: str):
    scope = record_function(_TAG + label)
    scope.__enter__()
    return scope


def instrument_layers(module: torch.nn.Module) -> None:
    """Wrap the forward of every modular layer and coupling in a labelled profiler range.

    The whole module's forward (inference, generative, loss) is labelled "other model ops": what
    no inner label claims.
    """
    for layer in module.modules():
        label = next((v for k, v in LABELS.items() if isinstance(layer, k)), None)
        if layer is module:
            label = "other model ops"
        if label is None:
            continue
        scopes = []
        layer.register_forward_pre_hook(lambda _m, _i, s=scopes, lab=label: s.append(_enter(lab)))
        layer.register_forward_hook(lambda _m, _i, _o, s=scopes: s.pop().__exit__(None, None, None))


def instrument_training_step() -> None:
    """Label scvi-tools' ``training_step`` (loss bookkeeping, metric logging) as framework time.

    Lightning runs it in Adam's closure; unlabelled, its Python time would count as optimizer.
    """
    from scvi.train import TrainingPlan

    original = TrainingPlan.training_step

    def training_step(self, *args, **kwargs):
        with record_function(_TAG + "framework (Lightning, Python)"):
            return original(self, *args, **kwargs)

    TrainingPlan.training_step = training_step


def instrument_likelihoods() -> None:
    """Label ``FeatureLikelihood.distribution`` and the ``log_prob`` of what it returns."""
    original = FeatureLikelihood.distribution

    def distribution(self, *args, **kwargs):
        with record_function(_TAG + "likelihood"):
            result = original(self, *args, **kwargs)
        log_prob = result.log_prob

        def labelled_log_prob(value):
            with record_function(_TAG + "likelihood"):
                return log_prob(value)

        result.log_prob = labelled_log_prob
        return result

    FeatureLikelihood.distribution = distribution


class EpochClock(Callback):
    """Wall-clock seconds per training epoch (validation included, as a user waits for it)."""

    def __init__(self):
        self.seconds, self.steps, self._start = [], [], 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._start, self._steps = time.perf_counter(), 0

    def on_train_batch_end(self, *args):
        self._steps += 1

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds.append(time.perf_counter() - self._start)
        self.steps.append(self._steps)


class Scopes(Callback):
    """Label each epoch and its validation loop, so validation can be left out of the shares."""

    def __init__(self):
        self._epoch = self._validation = None

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch = _enter("epoch")

    def on_train_epoch_end(self, trainer, pl_module):
        self._epoch.__exit__(None, None, None)

    def on_validation_epoch_start(self, trainer, pl_module):
        self._validation = _enter("validation")

    def on_validation_epoch_end(self, trainer, pl_module):
        self._validation.__exit__(None, None, None)


# ---------------------------------------------------------------------- attribution
def attribute(events) -> tuple[dict[str, float], float]:
    """Self CPU microseconds per part over the profiled training epochs, and validation's."""
    # Autograd nodes created inside a labelled forward range belong to that part.
    owner = {}

    def collect(event, part):
        if event.name.startswith(_TAG) and event.name[len(_TAG) :] in PARTS:
            part = event.name[len(_TAG) :]  # the innermost label wins
        if part is not None and event.sequence_nr >= 0 and not event.name.startswith(_BACKWARD):
            owner[event.sequence_nr] = part
        for child in event.cpu_children:
            collect(child, part)

    for event in events:
        if event.cpu_parent is None:
            collect(event, None)

    totals: dict[str, float] = defaultdict(float)
    by_op: dict[tuple[str, str], float] = defaultdict(float)
    validation = 0.0

    def walk(event, part, in_validation):
        nonlocal validation
        name = event.name
        if name == _TAG + "validation":
            in_validation = True
        elif name.startswith(_TAG) and name[len(_TAG) :] in PARTS:
            part = name[len(_TAG) :]
        elif name.startswith(_DATA_LOADER):
            part = "data loading"
        elif name.startswith(_OPTIMIZER):
            part = "optimizer"
        elif name.startswith(_BACKWARD):
            part = owner.get(event.sequence_nr, "other model ops")
        if in_validation:
            validation += event.self_cpu_time_total
        else:
            totals[part] += event.self_cpu_time_total
            by_op[part, name] += event.self_cpu_time_total
        for child in event.cpu_children:
            walk(child, part, in_validation)

    for event in events:
        if event.cpu_parent is None and event.name == _TAG + "epoch":
            walk(event, "framework (Lightning, Python)", False)
    return totals, validation, by_op


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs, no profiler")
    parser.add_argument("--warmup", type=int, default=1, help="untimed epochs first")
    parser.add_argument("--profile-epochs", type=int, default=1)
    parser.add_argument("--coupling", default="tt", choices=("tt", "dense"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n-top-genes", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--top-ops", type=int, default=0, help="list each part's costliest ops")
    parser.add_argument(
        "--data", type=Path, default=Path("/tmp/scmodtt_profile_reapseq_hvg.h5mu"), help="cache"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mudata.set_options(pull_on_update=False)
    import scvi

    scvi.settings.seed = args.seed
    if not args.data.exists():
        prepare(args.data, args.n_top_genes)
    mdata = mudata.read_h5mu(args.data)
    scmodtt.MODTT.setup_mudata(
        mdata, labels_key="cell_type", modalities={"rna_layer": "rna", "protein_layer": "prot"}
    )
    model = scmodtt.MODTT(mdata, coupling=args.coupling)
    print(f"scmodtt from {Path(scmodtt.__file__).parent}")
    print(model)
    instrument_layers(model.module)
    instrument_likelihoods()
    instrument_training_step()

    clock = EpochClock()
    n_timed = args.warmup + args.epochs
    common = dict(
        batch_size=args.batch_size,
        early_stopping=False,
        flow_prior=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
    )
    model.train(max_epochs=n_timed, callbacks=[clock], **common)
    epoch_seconds = clock.seconds[args.warmup :]
    steps = clock.steps[-1]

    scopes = Scopes()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        # A second `train` continues from the trained weights; its epochs are the profiled ones.
        with contextlib.redirect_stdout(None):
            model.train(max_epochs=args.profile_epochs, callbacks=[scopes], **common)
    totals, validation, by_op = attribute(prof.events())
    n_steps = steps * args.profile_epochs
    step_us = sum(totals.values()) / n_steps

    print(
        f"\n{mdata['rna'].n_vars} genes + {mdata['prot'].n_vars} ADTs, {mdata.n_obs} cells, "
        f"batch {args.batch_size}, {args.threads} thread(s), coupling {args.coupling!r}"
    )
    print(
        f"wall s/epoch (median of {len(epoch_seconds)}, no profiler, validation included): "
        f"{statistics.median(epoch_seconds):.3f}  "
        f"[{', '.join(f'{s:.3f}' for s in epoch_seconds)}], {steps} training steps/epoch"
    )
    print(
        f"profiled: {step_us / 1e3:.2f} ms per training step; validation "
        f"{validation / 1e3 / args.profile_epochs:.0f} ms per epoch (not in the shares)\n"
    )
    print(f"| {'part':<30} | ms/step | share |")
    print(f"|{'-' * 32}|---------|-------|")
    for part in PARTS:
        us = totals.get(part, 0.0) / n_steps
        print(f"| {part:<30} | {us / 1e3:7.2f} | {100 * us / step_us:4.1f}% |")
    for part in PARTS if args.top_ops else ():
        ops = sorted(((us, op) for (p, op), us in by_op.items() if p == part), reverse=True)
        print(
            f"\n{part}: "
            + ", ".join(f"{op} {us / n_steps / 1e3:.2f}" for us, op in ops[: args.top_ops])
        )


if __name__ == "__main__":
    main()
