"""scmodtt.pl: what each plot draws, the scanpy conventions (ax, show, save) and bad input.

"Real" and "synthetic" cells are the two halves of the bundled tiny CITE-seq set, so the metric
values a plot must show can be computed independently; the model plots use the session's small
trained MODTT of ``conftest.py``. Every figure is drawn with the Agg backend and closed after each
test.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scanpy as sc
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.container import BarContainer

import scmodtt
from scmodtt import pl
from scmodtt.metrics import cond_r, shared_space

LABELS_KEY = "cell_type"
#: Fewest cells of a type for cond_r: each half of tiny_cite has 30 cells of each type.
MIN_CELLS = 10
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def halves():
    """Real and "synthetic" cells: alternate cells of tiny_cite (150 each, 5 types of 30)."""
    mdata = scmodtt.datasets.tiny_cite()
    return mdata[::2].copy(), mdata[1::2].copy()


@pytest.fixture
def pairs(halves):
    found = scmodtt.pp.rna_protein_pairs(halves[0])
    return found.loc[found["kept"], ["gene", "protein"]].reset_index(drop=True)


def _offsets(ax: Axes) -> list[np.ndarray]:
    return [np.asarray(collection.get_offsets()) for collection in ax.collections]


def _sorted_rows(points: np.ndarray) -> np.ndarray:
    return points[np.lexsort(points.T[::-1])]


def _legend_colours(ax: Axes) -> dict[str, str]:
    legend = ax.get_legend()
    return {
        text.get_text(): to_hex(handle.get_color())
        for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True)
    }


def _is_png(path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------------- synthetic_embedding
def test_embedding_draws_each_source_once_and_colours_labels(halves):
    real, synthetic = halves
    source, label = pl.synthetic_embedding(real, synthetic, basis="pca", show=False)

    n_real, n_synthetic = real.n_obs, synthetic.n_obs
    real_points, synthetic_points = _offsets(source)
    assert (len(real_points), len(synthetic_points)) == (n_real, n_synthetic)
    assert [to_hex(c.get_facecolor()[0]) for c in source.collections] == ["#a0a0a0", "#d62728"]

    # The label panel draws the same embedding, every cell once, one colour per label.
    (label_points,) = _offsets(label)
    np.testing.assert_allclose(
        _sorted_rows(label_points), _sorted_rows(np.vstack([real_points, synthetic_points]))
    )
    colours = [to_hex(c) for c in label.collections[0].get_facecolors()]
    by_point = pd.DataFrame({"point": map(tuple, label_points), "colour": colours})
    labels = np.concatenate([m.obs[LABELS_KEY].astype(str) for m in halves])
    coordinates = np.vstack([real_points, synthetic_points])
    expected = pd.DataFrame({"point": map(tuple, coordinates), "label": labels})
    joined = expected.merge(by_point, on="point")
    assert len(joined) == n_real + n_synthetic
    assert (joined.groupby("label")["colour"].nunique() == 1).all()
    assert joined.groupby("label")["colour"].first().nunique() == len(set(labels))
    legend = [text.get_text() for text in label.get_legend().get_texts()]
    assert legend == list(real.obs[LABELS_KEY].cat.categories)


def test_embedding_of_one_set_draws_it_over_all_cells(halves):
    real, synthetic = halves
    ax = pl.synthetic_embedding(real, synthetic, color="synthetic", basis="pca", show=False)
    assert isinstance(ax, Axes)
    background, coloured = _offsets(ax)
    assert len(background) == real.n_obs + synthetic.n_obs
    assert len(coloured) == synthetic.n_obs


def test_embedding_subsamples_and_leaves_the_inputs_alone(halves):
    real, synthetic = halves
    obs_before, annotations_before = real.obs.copy(), (list(real.obsm), list(real.uns))
    counts_before = real["rna"].X.copy()
    source = pl.synthetic_embedding(
        real, synthetic, color="source", basis="pca", max_cells=40, show=False
    )
    assert [len(points) for points in _offsets(source)] == [40, 40]
    pd.testing.assert_frame_equal(real.obs, obs_before)
    assert (real["rna"].X != counts_before).nnz == 0
    assert (list(real.obsm), list(real.uns)) == annotations_before


def test_embedding_of_matrices_and_annotated_matrices(halves):
    real, synthetic = (shared_space(m) for m in halves)
    source = pl.synthetic_embedding(real.X, synthetic.X, color="source", basis="pca", show=False)
    assert sum(len(points) for points in _offsets(source)) == real.n_obs + synthetic.n_obs
    with pytest.raises(ValueError, match="matrix carries no labels.*color='source'"):
        pl.synthetic_embedding(real.X, synthetic.X, color="label", basis="pca", show=False)

    names = real.gene_names.append(real.protein_names)
    as_anndata = [
        ad.AnnData(s.X, obs=s.obs, var=pd.DataFrame(index=names)) for s in (real, synthetic)
    ]
    # Features are matched by name: a shuffled synthetic set draws the same picture.
    shuffled = as_anndata[1][:, np.random.default_rng(0).permutation(len(names))].copy()
    plain = pl.synthetic_embedding(*as_anndata, color="source", basis="pca", show=False)
    reordered = pl.synthetic_embedding(
        as_anndata[0], shuffled, color="source", basis="pca", show=False
    )
    for a, b in zip(_offsets(plain), _offsets(reordered), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_embedding_refuses_mismatched_features(halves):
    real, synthetic = (shared_space(m) for m in halves)
    names = real.gene_names.append(real.protein_names)
    real_cells = ad.AnnData(real.X, obs=real.obs, var=pd.DataFrame(index=names))
    fewer = ad.AnnData(synthetic.X[:, 1:], obs=synthetic.obs, var=pd.DataFrame(index=names[1:]))
    with pytest.raises(
        ValueError, match=rf"1 feature\(s\) missing \({names[0]}\).*common var_names"
    ):
        pl.synthetic_embedding(real_cells, fewer, basis="pca", show=False)
    with pytest.raises(ValueError, match="real cells have .* features but synthetic cells"):
        pl.synthetic_embedding(real.X, synthetic.X[:, 1:], color="source", show=False)


def test_embedding_refuses_unknown_labels_key_and_options(halves):
    with pytest.raises(ValueError, match="labels_key 'celltype'.*Pass the column"):
        pl.synthetic_embedding(*halves, labels_key="celltype", basis="pca", show=False)
    with pytest.raises(ValueError, match="color must be one or more of"):
        pl.synthetic_embedding(*halves, color="batch", show=False)
    with pytest.raises(ValueError, match="basis must be one of"):
        pl.synthetic_embedding(*halves, basis="tsne", show=False)


def test_embedding_draws_on_given_axes_and_checks_their_number(halves, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    _, given = plt.subplots(1, 2)
    # show=None does not show a figure the caller is still drawing on.
    drawn = pl.synthetic_embedding(*halves, basis="pca", ax=given)
    assert list(drawn) == list(given) and not shown
    with pytest.raises(ValueError, match="draws 2 panel\\(s\\) but got 1 Axes"):
        pl.synthetic_embedding(*halves, basis="pca", ax=given[0], show=False)


def test_save_writes_the_file_and_show_returns_nothing(halves, tmp_path, monkeypatch):
    path = tmp_path / "embedding.png"
    pl.synthetic_embedding(*halves, color="source", basis="pca", show=False, save=path)
    assert _is_png(path)

    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(True))
    settings = sc.settings.figdir, sc.settings.file_format_figs
    sc.settings.figdir, sc.settings.file_format_figs = tmp_path / "figures", "png"
    try:
        returned = pl.synthetic_embedding(*halves, color="source", basis="pca", save=True)
    finally:
        sc.settings.figdir, sc.settings.file_format_figs = settings
    assert returned is None
    assert shown == [True]  # show=None follows scanpy.settings.autoshow (True)
    assert _is_png(tmp_path / "figures" / "synthetic_embedding.png")


# ---------------------------------------------------------------------- pair_correlations
def test_pair_correlations_draws_the_entries_of_cond_r(halves, pairs):
    result = cond_r(*halves, pairs, labels_key=LABELS_KEY, min_cells=MIN_CELLS)
    ax = pl.pair_correlations(*halves, pairs, min_cells=MIN_CELLS, show=False)

    drawn = np.vstack(_offsets(ax))
    assert len(drawn) == result.n_entries == len(result.entries) > 0
    defined = ~(result.r_real.isna() | result.r_synthetic.isna()).to_numpy()
    expected = np.column_stack(
        [result.r_real.to_numpy()[defined], result.r_synthetic.to_numpy()[defined]]
    )
    np.testing.assert_allclose(_sorted_rows(drawn), _sorted_rows(expected))
    assert len(ax.collections) == len(result.r_real.index)  # one colour per cell type
    assert f"cond_r = {result.value:.2f}" in ax.get_title()


def test_pair_correlations_reads_pairs_or_takes_a_result(halves, pairs):
    from_mudata = pl.pair_correlations(*halves, min_cells=MIN_CELLS, show=False)
    result = cond_r(*halves, pairs, min_cells=MIN_CELLS)
    from_result = pl.pair_correlations(result=result, show=False)
    for a, b in zip(_offsets(from_mudata), _offsets(from_result), strict=True):
        np.testing.assert_allclose(a, b)
    with pytest.raises(ValueError, match="either `result`.*not both"):
        pl.pair_correlations(*halves, result=result, show=False)
    with pytest.raises(ValueError, match="pass pairs=..."):
        pl.pair_correlations(*(shared_space(m) for m in halves), show=False)


def test_pair_correlations_colour_types_as_the_embedding_does(halves, pairs):
    real, synthetic = halves
    # The first type keeps 5 real cells: cond_r skips it, and the others keep their colours.
    first = real.obs[LABELS_KEY].cat.categories[0]
    is_first = (real.obs[LABELS_KEY] == first).to_numpy()
    real = real[~is_first | (np.cumsum(is_first) <= 5)].copy()
    ax = pl.pair_correlations(real, synthetic, pairs, min_cells=MIN_CELLS, show=False)
    legend = _legend_colours(ax)
    assert first not in legend and len(legend) == len(real.obs[LABELS_KEY].cat.categories) - 1

    label_panel = pl.synthetic_embedding(real, synthetic, color="label", basis="pca", show=False)
    embedding = _legend_colours(label_panel)
    assert legend == {cell_type: embedding[cell_type] for cell_type in legend}


def test_pair_correlations_refuses_unknown_labels_key(halves, pairs):
    with pytest.raises(ValueError, match="labels_key 'celltype'.*Pass the column"):
        pl.pair_correlations(*halves, pairs, labels_key="celltype", show=False)


# ---------------------------------------------------------------------- module_heatmap
def _specificity(model, labels_key: str) -> pd.DataFrame:
    """The tutorial's definition, one type at a time."""
    tokens = model.get_module_embeddings().astype(np.float64)
    labels = model.adata.obs[labels_key].astype(str).to_numpy()
    types = sorted(set(labels))
    grand = tokens.mean(axis=0)
    means = {t: tokens[labels == t].mean(axis=0) for t in types}
    within = sum(((tokens[labels == t] - means[t]) ** 2).sum(axis=(0, 2)) for t in types)
    within_sd = np.sqrt(within / (tokens.shape[0] * tokens.shape[2]))
    rows = {t: np.linalg.norm(means[t] - grand, axis=-1) / within_sd for t in types}
    return pd.DataFrame(rows, index=model.module_names).T


def test_module_heatmap_shows_types_by_modules(trained_model, setup_kwargs):
    labels_key = setup_kwargs["labels_key"]
    ax = pl.module_heatmap(trained_model, show=False)
    (image,) = ax.get_images()
    expected = _specificity(trained_model, labels_key)
    assert image.get_array().shape == (len(expected), len(trained_model.module_names))
    np.testing.assert_allclose(image.get_array(), expected.to_numpy(), rtol=1e-5)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(expected.index)
    assert [t.get_text() for t in ax.get_xticklabels()] == trained_model.module_names

    top = pl.module_heatmap(trained_model, modules=1, show=False)
    chosen = [t.get_text() for t in top.get_xticklabels()]
    assert chosen == list(dict.fromkeys(expected.idxmax(axis=1)))


def test_module_heatmap_refuses_missing_labels(trained_model, unlabelled_model):
    with pytest.raises(ValueError, match="labels_key 'celltype' is in neither.*Pass labels_key="):
        pl.module_heatmap(trained_model, labels_key="celltype", show=False)
    with pytest.raises(ValueError, match="set up without labels_key; pass labels_key="):
        pl.module_heatmap(unlabelled_model, show=False)
    with pytest.raises(ValueError, match="Unknown module"):
        pl.module_heatmap(trained_model, modules=["no_such_module"], show=False)


# ---------------------------------------------------------------------- module_coherence
@pytest.fixture(scope="module")
def coherence_reports():
    """module_report of tiny_cite for Ward modules and for gene-set modules with a residual."""
    mdata = scmodtt.datasets.tiny_cite()
    scmodtt.pp.find_modules(mdata, n_modules={"rna": 6, "prot": 3}, key_added="ward")
    genes = list(mdata["rna"].var_names)
    gene_sets = {"first": genes[:20], "second": genes[20:45]}
    scmodtt.pp.find_modules(
        mdata, method="gene_sets", gene_sets=gene_sets, n_modules={"prot": 3}, key_added="sets"
    )
    return {key: scmodtt.pp.module_report(mdata, key=key, seed=0) for key in ("ward", "sets")}


def test_module_coherence_draws_each_module_over_its_baseline(coherence_reports, tmp_path):
    report = coherence_reports["ward"]
    path = tmp_path / "coherence.png"
    ax = pl.module_coherence(report, show=False, save=path)
    assert _is_png(path)
    baseline, modules = _offsets(ax)
    genes = report[report["modality"] == "rna"].dropna()
    assert len(modules) == len(genes) == 6
    np.testing.assert_allclose(modules, genes[["size", "mean_within_r"]].to_numpy())
    np.testing.assert_allclose(baseline, genes[["size", "random_mean_within_r"]].to_numpy())
    assert ax.get_xscale() == "log" and ax.get_title() == "gene modules"
    # Plain-number ticks within the modules' sizes (8 to 221 genes), not widening the axis.
    assert [tick.get_text() for tick in ax.get_xticklabels()] == ["10", "20", "50", "100", "200"]
    low, high = ax.get_xlim()
    assert low < genes["size"].min() and genes["size"].max() < high < 300
    # Ward's tiny_cite gene modules: the small ones are far above their random baseline.
    assert (modules[:, 1] - baseline[:, 1]).max() > 0.3

    proteins = pl.module_coherence(report, modality="prot", logx=False, show=False)
    assert len(_offsets(proteins)[1]) == (report["modality"] == "prot").sum()
    assert proteins.get_xlabel() == "ADTs in module"


def test_module_coherence_draws_one_panel_per_report_and_leaves_out_residuals(
    coherence_reports,
):
    sets = coherence_reports["sets"]
    assert sets["module"].str.endswith("_residual").sum() == 1
    ward_panel, sets_panel = pl.module_coherence(coherence_reports, show=False)
    assert [ward_panel.get_title(), sets_panel.get_title()] == [
        "ward gene modules",
        "sets gene modules",
    ]
    assert len(_offsets(sets_panel)[1]) == 2  # the two gene sets, not the residual module
    with_residual = pl.module_coherence(sets, residual=True, show=False)
    assert len(_offsets(with_residual)[1]) == 3


def test_module_coherence_names_missing_modalities_and_columns(coherence_reports):
    report = coherence_reports["ward"]
    with pytest.raises(
        ValueError, match=r"no modules of modality 'protein'; it has \['prot', 'rna'\]"
    ):
        pl.module_coherence(report, modality="protein", show=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['random_mean_within_r'\]"):
        pl.module_coherence(report.drop(columns="random_mean_within_r"), show=False)
    with pytest.raises(ValueError, match="draws 2 panel"):
        pl.module_coherence(coherence_reports, ax=plt.subplots()[1], show=False)


# ---------------------------------------------------------------------- training_history
def test_training_history_draws_one_line_per_key(trained_model, tmp_path):
    history = trained_model.history
    ax = pl.training_history(trained_model, show=False)
    assert [line.get_label() for line in ax.get_lines()] == ["elbo_train", "elbo_validation"]
    for line in ax.get_lines():
        expected = history[line.get_label()].iloc[:, 0].to_numpy(dtype=float)
        np.testing.assert_allclose(line.get_ydata(), expected)

    keys = ["reconstruction_loss_train", "kl_local_train", "kl_global_train"]
    path = tmp_path / "history.png"
    ax = pl.training_history(trained_model, keys, show=False, save=path)
    assert len(ax.get_lines()) == len(keys) and _is_png(path)


def test_training_history_refuses_unknown_keys_and_untrained_models(trained_model):
    with pytest.raises(ValueError, match="no key\\(s\\) \\['elbo_test'\\]; it has"):
        pl.training_history(trained_model, "elbo_test", show=False)
    with pytest.raises(ValueError, match="no training history: train it first"):
        pl.training_history({}, show=False)


# ---------------------------------------------------------------------- benchmark figures
def _tidy_results() -> pd.DataFrame:
    """Two seeds of modtt-tt at two budgets (two protocols), totalvi once, and the oracle."""
    rng = np.random.default_rng(0)
    runs = [
        ("modtt-tt", protocol, budget, n_params)
        for budget, n_params in (("60k", 60_000), ("200k", 200_000))
        for protocol in ("native", "latent_flow")
    ]
    runs += [("totalvi", "latent_flow", "default", 2_000_000), ("oracle", "oracle", "default", 0)]
    rows = [
        ("toy", model, protocol, seed, budget, n_params, metric, rng.uniform(0.3, 0.9))
        for model, protocol, budget, n_params in runs
        for metric in ("cond_r", "interact_r", "tstr_f1", "trtr_f1", "c2st_auc")
        for seed in (0, 1)
    ]
    columns = ["dataset", "model", "protocol", "seed", "budget", "n_params", "metric", "value"]
    return pd.DataFrame(rows, columns=columns)


def _bars(ax: Axes) -> list[BarContainer]:
    return [container for container in ax.containers if isinstance(container, BarContainer)]


def test_metric_bars_draw_one_bar_per_run_at_its_mean():
    results = _tidy_results()
    axes = pl.metric_bars(results, show=False)
    assert len(axes) == len(pl._benchmark.BAR_METRICS)
    generators = results[results["model"] != "oracle"]
    for ax, metric in zip(axes, pl._benchmark.BAR_METRICS, strict=True):
        means = (
            generators[generators["metric"] == metric]
            .groupby(["model", "protocol", "budget"])["value"]
            .mean()
        )
        (bars,) = _bars(ax)
        heights = sorted(patch.get_height() for patch in bars)
        np.testing.assert_allclose(heights, sorted(means))
    # A summary over seeds draws the same bars as the tidy rows it came from.
    from scmodtt.benchmark._summary import summarize

    again = pl.metric_bars(summarize(results), show=False)
    heights = [[p.get_height() for p in _bars(ax)[0]] for ax in (again[0], axes[0])]
    assert heights[0] == heights[1]


def test_budget_curves_draw_each_trained_run_and_refuse_several_datasets():
    results = _tidy_results()
    axes = pl.budget_curves(results, metrics=["cond_r"], show=False)
    (ax,) = axes
    trained = results[results["n_params"] > 0].drop_duplicates(["model", "protocol"])
    assert len(ax.containers) == len(trained)  # one errorbar per (model, protocol)
    both = pd.concat([results, results.assign(dataset="other")])
    with pytest.raises(ValueError, match="2 datasets.*one at a time"):
        pl.metric_bars(both, show=False)
