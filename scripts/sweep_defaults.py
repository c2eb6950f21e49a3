# ruff: noqa: E402, E501, E702, B905
"""The sweep behind MODTT's defaults (user guide, "Choosing the defaults").

REAP-seq, the benchmark's split and features of one seed; each configuration is trained with early
stopping and sampled with the flow prior and the Gaussian prior; every metric against the test
cells is appended to a CSV. Usage (one thread, ~3-8 minutes per configuration)::

    .venv/bin/python scripts/sweep_defaults.py results/sweep.csv 0 \
        '[{"tag": "d8r8_protnb_kl0.2", "model": {"module_dim": 8, "tt_rank": 8,
           "protein_likelihood": "nb"}, "train": {"max_epochs": 100, "max_kl_weight": 0.2}}]'

The configurations of the published table are in ``CONFIGS`` (run with ``all`` as third argument).
"""

import json
import os
import sys
import time

import numpy as np
import pandas as pd
import scvi
import torch

torch.set_num_threads(1)
from scmodtt.benchmark import _seed
from scmodtt.benchmark._zoo import build_model

_OLD = {"module_dim": 4, "tt_rank": 4, "protein_likelihood": "nbmixture"}
_BIG = {"module_dim": 8, "tt_rank": 8}
CONFIGS = [
    {"tag": "old defaults", "model": _OLD, "train": {"max_epochs": 60, "max_kl_weight": 1.0}},
    {"tag": "kl0.2", "model": _OLD, "train": {"max_epochs": 60}},
    {"tag": "kl0.05", "model": _OLD, "train": {"max_epochs": 100, "max_kl_weight": 0.05}},
    {
        "tag": "kl0.2 gene-label",
        "model": {**_OLD, "dispersion": "gene-label"},
        "train": {"max_epochs": 100},
    },
    {"tag": "kl0.2 latent16", "model": {**_OLD, "n_latent": 16}, "train": {"max_epochs": 100}},
    {
        "tag": "kl0.2 protein nb",
        "model": {**_OLD, "protein_likelihood": "nb"},
        "train": {"max_epochs": 100},
    },
    {
        "tag": "d8r8 kl1",
        "model": {**_OLD, **_BIG},
        "train": {"max_epochs": 100, "max_kl_weight": 1.0},
    },
    {"tag": "d8r8 kl0.2", "model": {**_OLD, **_BIG}, "train": {"max_epochs": 100}},
    {
        "tag": "d8r8 kl0.05",
        "model": {**_OLD, **_BIG},
        "train": {"max_epochs": 100, "max_kl_weight": 0.05},
    },
    {
        "tag": "d16r8 kl0.2",
        "model": {**_OLD, "module_dim": 16, "tt_rank": 8},
        "train": {"max_epochs": 100},
    },
    {
        "tag": "defaults",
        "train": {"max_epochs": 100},
        "protocols": {
            "flow": {},
            "gaussian": {"prior": "gaussian"},
            "flow5": {"n_steps": 5},
            "flow10": {"n_steps": 10},
            "flow_g2": {"guidance": 2.0},
        },
    },
]

out, seed = sys.argv[1], int(sys.argv[2])
configs = CONFIGS if sys.argv[3] == "all" else json.loads(sys.argv[3])
ctx = _seed.reapseq_context(seed)
for cfg in configs:
    tag = cfg.pop("tag")
    model_kw = cfg.get("model", {})
    train_kw = cfg.get("train", {})
    scvi.settings.seed = seed
    fit = ctx.fit.copy()
    _seed.use_modules(fit, "ward")
    model = build_model(cfg.get("base", "modtt-tt"), fit, labels_key="cell_type", **model_kw)
    t = time.time()
    model.train(
        enable_progress_bar=False,
        datasplitter_kwargs={
            "external_indexing": [
                ctx.split_in_fit.train,
                ctx.split_in_fit.validation,
                np.array([], dtype=np.int64),
            ]
        },
        **train_kw,
    )
    secs = time.time() - t
    epochs = len(model.history["elbo_train"])
    rows = []
    for proto, kw in cfg.get("protocols", {"flow": {}, "gaussian": {"prior": "gaussian"}}).items():
        t0 = time.time()
        syn = model.sample(labels=ctx.label_counts.to_dict(), seed=seed, **kw)
        gen = time.time() - t0
        syn.obs["cell_type"] = syn.obs["cell_type"].astype(str).astype("category")
        sc = ctx.score(syn, min_cells=20)
        d = dict(zip(sc["metric"], sc["value"]))
        d.update(
            tag=tag,
            protocol=proto,
            seed=seed,
            epochs=epochs,
            train_s=secs,
            gen_s=gen,
            n_params=int(model.parameter_counts()["total"]),
            elbo_val=float(model.history["elbo_validation"].iloc[-1, 0]),
        )
        rows.append(d)
        print(
            tag,
            proto,
            {
                k: round(d[k], 3)
                for k in [
                    "cond_r",
                    "interact_r",
                    "tstr_f1",
                    "c2st_auc",
                    "mmd2_rbf",
                    "knn_precision",
                    "knn_recall",
                ]
                if k in d
            },
            "ep",
            epochs,
            "t",
            round(secs),
            flush=True,
        )
    pd.DataFrame(rows).to_csv(out, mode="a", header=not os.path.exists(out), index=False)
