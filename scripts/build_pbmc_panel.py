"""Build ``src/scmodtt/data/pbmc_panel.h5mu``: the PBMC panel's ECCITE-seq and 10x PBMC5k cells.

``scmodtt.datasets.pbmc_panel()`` joins three PBMC data sets on their shared genes and antibody
targets. Its REAP-seq cells come from the shipped ``reapseq_pbmc.h5mu``; this script writes the
other two (read from ``../shared/data``) on the panel's features, with the REAP-seq antibody each
target takes, so that the loader only selects and concatenates. Deterministic and rerunnable:
``python scripts/build_pbmc_panel.py`` (run ``scripts/make_datasets.py`` first if the shipped
REAP-seq file is to be rebuilt too).

Matching
--------
Genes: the symbols measured in all three sets, in the shipped REAP-seq order (REAP-seq and
ECCITE-seq are annotated on hg19, PBMC5k on GRCh38; genes renamed between the two drop out).

Antibodies: isotype controls and blanks are dropped. Every other antibody gets a *target*: the
gene symbol :mod:`scmodtt.pp`'s alias table gives for its cleaned name (``CD3_TotalSeqB`` → CD3E,
``IL7Ralpha (CD127)`` → IL7R), except that isoform-specific antibodies (CD45RA, CD45RO, B220:
notes with "isoform" in ``protein_aliases.csv``) keep their cleaned name, so that CD45, CD45RA
and CD45RO stay three targets; names the table lacks fall back to the cleaned name. Where one set
has several antibodies against one target (REAP-seq: two CD4, two CD8 plus CD8a, two CD45;
ECCITE-seq: PD-1 and PD1, B7-H1 and PD-L1) the antibody with the largest total count in that set
is kept (ties: the first in the panel). The panel's targets are those all three sets keep, in
REAP-seq's antibody order, named by REAP-seq's antibody without its barcode (``CD4``,
``CD127``, ``HLA-DRA``). Every antibody's fate is stored in ``uns['adt_matching']``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import anndata as ad
import mudata
import numpy as np
import pandas as pd
import scipy.sparse as sp

SCRIPTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = SCRIPTS_DIR.parent
sys.path.insert(0, str(SCRIPTS_DIR))
sys.path.insert(0, str(REPO_ROOT / "src"))

import make_datasets  # noqa: E402

from scmodtt import datasets  # noqa: E402
from scmodtt.pp._aliases import (  # noqa: E402
    CONTROL_NAME,
    alias_key,
    alias_lookup,
    gene_for,
    protein_aliases,
)

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
OUT_NAME = "pbmc_panel.h5mu"
#: The panel's data sets, by the name ``obs['dataset']`` gives them, and their source files.
SOURCES = {
    "eccite": "mimitou2019_eccite_pbmc_ctrl_citefuse.h5mu",
    "pbmc5k": "pbmc5k_protein_v3_scvi_test200.h5mu",
}
REFERENCE_NAME = "reapseq"
UNLABELLED = "unknown"

CITATION = (
    "Peterson VM, et al. Multiplexed quantification of proteins and transcripts in single cells. "
    "Nat Biotechnol 35, 936-939 (2017). doi:10.1038/nbt.3973 | Mimitou EP, et al. Multiplexed "
    "detection of proteins, transcriptomes, clonotypes and CRISPR perturbations in single cells. "
    "Nat Methods 16, 409-412 (2019). doi:10.1038/s41592-019-0392-0 | 10x Genomics, 5k Peripheral "
    "blood mononuclear cells (PBMCs) from a healthy donor with cell surface proteins (v3 "
    "chemistry), 5k_pbmc_protein_v3 (2019)"
)
LICENSE = (
    "REAP-seq: public GEO data (GSE100501), see scmodtt.datasets.reapseq_pbmc. ECCITE-seq: public "
    "GEO data (GSE126310; NCBI places no restrictions on the use of GEO data), taken from the "
    "example data of the CiteFuse R package (SydneyBioX/CiteFuse, GPL-3). 10x PBMC5k: 10x Genomics "
    "data, CC BY 4.0, taken from scvi-tools' test data (BSD-3-Clause). Panel processing: scmodtt, "
    "BSD-3-Clause. Cite Peterson et al. 2017, Mimitou et al. 2019 and 10x Genomics."
)


def read_source(file: str) -> mudata.MuData:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="var_names are not unique")
        return mudata.read_h5mu(SHARED_DATA / file)


def isoform_keys() -> set[str]:
    """Alias keys of isoform-specific antibodies (CD45RA, CD45RO, …): a target of their own."""
    table = protein_aliases()
    isoform = table["note"].str.contains("isoform", case=False)
    return set(table.loc[isoform, "antibody"].map(alias_key))


def antibody_table(prot: ad.AnnData, dataset: str) -> pd.DataFrame:
    """One row per antibody: its cleaned name, gene, target, whether a control, total count."""
    lookup, isoforms = alias_lookup(), isoform_keys()
    rows = []
    controls = prot.var["isotype_control"].to_numpy(dtype=bool)
    totals = np.asarray(prot.X.sum(axis=0)).ravel()
    for name, control, total in zip(prot.var_names, controls, totals, strict=True):
        cleaned, gene = gene_for(name, lookup)
        key = alias_key(cleaned)
        target = gene if gene is not None and key not in isoforms else key
        rows.append(
            {
                "dataset": dataset,
                "antibody": name,
                "name": cleaned,
                "gene": gene or "",
                "target": target,
                "control": bool(control or CONTROL_NAME.search(name)),
                "total_count": int(total),
            }
        )
    return pd.DataFrame(rows)


def resolve_duplicates(table: pd.DataFrame) -> pd.DataFrame:
    """Mark controls, and keep the antibody with the largest total count per target."""
    table = table.copy()
    table["status"] = np.where(table["control"], "isotype control", "")
    candidates = table[~table["control"]]
    # Stable sort: among equal counts the first antibody of the panel wins.
    ranked = candidates.sort_values("total_count", ascending=False, kind="stable")
    best = ranked.drop_duplicates("target")
    winner = best.set_index("target")["antibody"]
    for index, row in candidates.iterrows():
        if row["antibody"] != winner[row["target"]]:
            table.loc[index, "status"] = (
                f"duplicate target {row['target']}: fewer counts than {winner[row['target']]}"
            )
    return table


def match_targets(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The targets every data set keeps, in the reference's order, and each set's antibody."""
    kept = {
        name: table[table["status"] == ""].set_index("target")["antibody"]
        for name, table in tables.items()
    }
    shared = [
        target
        for target in kept[REFERENCE_NAME].index
        if all(target in antibodies.index for antibodies in kept.values())
    ]
    reference = tables[REFERENCE_NAME].set_index("antibody")
    var = pd.DataFrame(
        {
            "target": shared,
            "gene": [reference.loc[kept[REFERENCE_NAME][t], "gene"] for t in shared],
            **{f"antibody_{name}": [kept[name][t] for t in shared] for name in tables},
        }
    )
    var.index = [reference.loc[kept[REFERENCE_NAME][t], "name"] for t in shared]
    if not var.index.is_unique:
        raise SystemExit(f"panel ADT names are not unique: {list(var.index)}")
    for name, table in tables.items():
        antibodies = set(var[f"antibody_{name}"])
        unshared = (table["status"] == "") & ~table["antibody"].isin(antibodies)
        table.loc[unshared, "status"] = "target not in every data set"
        table.loc[table["antibody"].isin(antibodies), "status"] = "kept"
    return var


def build(reapseq: mudata.MuData) -> mudata.MuData:
    sources = {name: read_source(file) for name, file in SOURCES.items()}
    tables = {REFERENCE_NAME: resolve_duplicates(antibody_table(reapseq["prot"], REFERENCE_NAME))}
    for name, source in sources.items():
        tables[name] = resolve_duplicates(antibody_table(source["prot"], name))
    var = match_targets(tables)

    reference_genes = reapseq["rna"].var_names
    shared = set(reference_genes)
    for source in sources.values():
        shared &= set(source["rna"].var_names)
    genes = [gene for gene in reference_genes if gene in shared]

    rna_parts, prot_parts, obs_parts = [], [], []
    for name, source in sources.items():
        cells = source["rna"].obs_names
        rna_parts.append(source["rna"][:, genes].X)
        prot = source["prot"][cells]
        prot_parts.append(prot[:, var[f"antibody_{name}"].to_numpy()].X)
        obs_parts.append(
            pd.DataFrame(
                {"dataset": name, "sample": name, "cell_type": UNLABELLED}, index=cells.copy()
            )
        )
    obs = pd.concat(obs_parts)
    if not obs.index.is_unique:
        raise SystemExit("cell barcodes repeat across the data sets")
    for column in ("dataset", "sample", "cell_type"):
        obs[column] = pd.Categorical(obs[column])
    prot_var = var.copy()
    prot_var["isotype_control"] = False
    modalities = {
        "rna": ad.AnnData(
            X=make_datasets.as_int_csr(_vstack(rna_parts)), var=pd.DataFrame(index=genes)
        ),
        "prot": ad.AnnData(X=make_datasets.as_int_csr(_vstack(prot_parts)), var=prot_var),
    }
    for modality in modalities.values():
        modality.obs_names = obs.index
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="var_names are not unique")
        mdata = mudata.MuData(modalities)
    make_datasets.set_obs(mdata, obs)

    processing = (
        f"ECCITE-seq ({sources['eccite'].n_obs} cells) and 10x PBMC5k ({sources['pbmc5k'].n_obs} "
        f"cells), all cells, counts unchanged, on the {len(genes)} genes they share with the "
        f"shipped reapseq_pbmc and the {len(var)} antibody targets all three keep (alias-table "
        "gene symbol per antibody, isoform antibodies by name; controls dropped; per data set, "
        "of several antibodies against one target the one with the largest total count kept). "
        "No labels: cell_type 'unknown'. scmodtt.datasets.pbmc_panel() adds the REAP-seq cells."
    )
    provenance = {
        "dataset": "PBMC panel: REAP-seq, ECCITE-seq and 10x PBMC5k on shared genes and ADTs",
        "repo": "; ".join(json.loads(s.uns["provenance"])["repo"] for s in sources.values()),
        "commit": "; ".join(json.loads(s.uns["provenance"])["commit"] for s in sources.values()),
        "sources": {name: json.loads(s.uns["provenance"]) for name, s in sources.items()},
        "scmodtt": {
            "built_by": "scripts/build_pbmc_panel.py",
            "source_files": [f"shared/data/{file}" for file in SOURCES.values()],
            "reference": "scmodtt.datasets.reapseq_pbmc() (REAP-seq cells added on load)",
            "processing": processing,
        },
    }
    make_datasets.set_uns(mdata, provenance, LICENSE, CITATION)
    matching = pd.concat(tables.values(), ignore_index=True)
    matching.index = matching.index.astype(str)
    mdata.uns["adt_matching"] = matching.drop(columns="control")
    return mdata


def _vstack(parts):
    return sp.vstack([sp.csr_matrix(part) for part in parts], format="csr")


def main() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    mudata.set_options(pull_on_update=False)
    mdata = build(datasets.reapseq_pbmc())
    path = make_datasets.write(mdata, OUT_NAME)
    print(f"{path.relative_to(REPO_ROOT)}: {path.stat().st_size / 1e6:.2f} MB")
    print(f"{mdata.n_obs} cells, {mdata['rna'].n_vars} genes, {mdata['prot'].n_vars} ADTs")
    print(mdata["prot"].var.to_string())
    matching = mdata.uns["adt_matching"]
    print(matching[matching["status"].str.startswith("duplicate")].to_string())


if __name__ == "__main__":
    main()
