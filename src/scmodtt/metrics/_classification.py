"""Train-on-synthetic, test-on-real (TSTR) cell-type classification."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mudata import MuData
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ._space import SharedSpace, as_space


@dataclass(frozen=True)
class TSTRResult:
    """Result of :func:`tstr_f1`; ``float(result)`` is :attr:`~TSTRResult.tstr_f1`.

    Attributes
    ----------
    tstr_f1
        Macro F1 on the real test cells of a classifier trained on the synthetic cells.
    trtr_f1
        Macro F1 of the same classifier trained on real training cells (the ceiling); ``None``
        without ``real_train``.
    per_label
        Indexed by the real test labels: ``tstr`` and ``trtr`` per-label F1, ``n_real_test``,
        ``n_synthetic`` and ``n_real_train`` cells. A label with ``n_synthetic == 0`` was never
        generated and scores F1 = 0.

    """

    tstr_f1: float
    trtr_f1: float | None
    per_label: pd.DataFrame

    def __float__(self) -> float:
        return self.tstr_f1


def _fit_predict(
    train: SharedSpace, train_labels: np.ndarray, test_features: np.ndarray, role: str, seed: int
) -> np.ndarray:
    if len(np.unique(train_labels)) < 2:
        raise ValueError(
            f"tstr_f1: the {role} cells carry a single label ({np.unique(train_labels)}); a "
            "classifier needs >= 2 cell types to train on."
        )
    # Standardized features so that the L2 penalty treats RNA and ADT features alike.
    classifier = make_pipeline(
        StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed)
    )
    # A few thousand cells fit in seconds on one thread; on shared machines, BLAS threads
    # spin-waiting for busy cores made the fit ~5x slower (measured on 2 cores).
    with threadpool_limits(limits=1):
        classifier.fit(train.X, train_labels)
        return classifier.predict(test_features)


def tstr_f1(
    synthetic: MuData | SharedSpace,
    real_test: MuData | SharedSpace,
    labels_key: str = "cell_type",
    real_train: MuData | SharedSpace | None = None,
    seed: int = 0,
) -> TSTRResult:
    """Macro F1 of a cell-type classifier trained on synthetic cells and tested on real cells.

    Definition (``docs/user_guide/metrics.md``). A logistic regression (scikit-learn, L2, ``C = 1``,
    lbfgs, ``max_iter = 2000``, ``random_state = seed``) on standardized shared-space features (all
    genes and proteins: RNA ``log1p`` at 10⁴ counts per cell, ADT per-cell CLR; the scaler is fit on
    the training cells) is trained on the synthetic cells with the labels they were generated for,
    and predicts the real test cells::

        tstr_f1 = macro F1 over the labels present in the real test set

    With ``real_train``, the same classifier trained on real training cells gives ``trtr_f1``
    (train real, test real), the ceiling a generator is judged against.

    Edge cases: a real test label that the synthetic set lacks cannot be predicted and scores
    F1 = 0 (it counts in the macro average); a synthetic-only label is not averaged over, but
    real cells predicted as it count as errors. Features are matched by name; the synthetic and
    training sets must contain every feature of the real test set.

    Parameters
    ----------
    synthetic
        Synthetic cells (MuData of raw counts or :class:`SharedSpace`).
    real_test
        Held-out real cells, same form.
    labels_key
        Cell-type column in ``mdata.obs`` (or, failing that, ``mdata['rna'].obs``).
    real_train
        Real training cells for the TRTR ceiling; optional.
    seed
        ``random_state`` of the classifier.

    Returns
    -------
    :class:`TSTRResult` with ``tstr_f1`` and ``trtr_f1`` (``None`` without ``real_train``).

    Raises
    ------
    ValueError
        Missing labels, missing features, or a training set with a single label.

    Examples
    --------
    >>> from scmodtt.metrics._toy import toy_cite_mudata
    >>> result = tstr_f1(toy_cite_mudata(seed=1), toy_cite_mudata(seed=2))
    >>> result.tstr_f1 > 0.8
    True

    """
    real_test = as_space(real_test, "real_test")
    test_labels = real_test.labels(labels_key, "real_test")
    test_features = real_test.X
    labels = pd.Index(np.unique(test_labels), name=labels_key)

    training_sets = {"tstr": ("synthetic", synthetic)}
    if real_train is not None:
        training_sets["trtr"] = ("real_train", real_train)

    scores: dict[str, float] = {}
    per_label = pd.DataFrame(index=labels)
    per_label["n_real_test"] = pd.Series(test_labels).value_counts().reindex(labels)
    for name, (role, train) in training_sets.items():
        train = as_space(train, role).select_features(
            real_test.gene_names, real_test.protein_names, role
        )
        train_labels = train.labels(labels_key, role)
        predicted = _fit_predict(train, train_labels, test_features, role, seed)
        per_label[name] = f1_score(
            test_labels, predicted, labels=labels, average=None, zero_division=0.0
        )
        per_label[f"n_{role}"] = (
            pd.Series(train_labels).value_counts().reindex(labels, fill_value=0)
        )
        scores[name] = float(per_label[name].mean())
    return TSTRResult(tstr_f1=scores["tstr"], trtr_f1=scores.get("trtr"), per_label=per_label)
