"""Plain metrics of binary and regression outputs: functions of ``(y_true, y_score)``, numpy only.

Fine-tuning reports them and the shrink pipeline's fidelity check reuses them, so teacher and
student are measured the same way. Conventions:

* a binary ``y_true`` holds 0/1; ``y_score`` any monotone score (logit or probability);
* a sample is called positive when ``y_score >= threshold``;
* a metric that is undefined on the data (AUROC with one class only, Pearson r of a
  constant) is ``nan``, never an exception, so a report can still be written.

References:
    Hanley J.A., McNeil B.J. The meaning and use of the area under a receiver operating
    characteristic (ROC) curve. Radiology 143(1):29-36, 1982 (AUROC as the Mann-Whitney U).
    Average precision as in scikit-learn's ``average_precision_score`` (step-wise, no
    interpolation).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "auprc",
    "auroc",
    "binary_report",
    "mae",
    "pearson_r",
    "pearson_r_interval",
    "regression_report",
    "rmse",
    "sensitivity_specificity",
]


def _binary(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(y_score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values, y_score {s.size}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true of a binary metric must hold only 0 and 1")
    if not np.all(np.isfinite(s)):
        raise ValueError("y_score holds non-finite values")
    return y, s


def _paired(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"y_true has {y.size} values, y_pred {p.size}")
    return y, p


def auroc(y_true, y_score) -> float:
    """Area under the ROC curve (ties count one half); ``nan`` unless both classes occur."""
    y, s = _binary(y_true, y_score)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(s)  # average ranks: ties count one half
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def auprc(y_true, y_score) -> float:
    """Average precision: sum over thresholds of (recall step) x precision; ``nan`` without positives."""
    y, s = _binary(y_true, y_score)
    n_pos = y.sum()
    if n_pos == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # One operating point per distinct score (the last index of each run of ties).
    last = np.r_[np.nonzero(np.diff(s_sorted))[0], y.size - 1]
    tp = np.cumsum(y_sorted)[last]
    predicted = last + 1
    precision = tp / predicted
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def sensitivity_specificity(y_true, y_score, threshold: float) -> tuple[float, float]:
    """(sensitivity, specificity) when ``y_score >= threshold`` is called positive; ``nan`` if a class is absent."""
    y, s = _binary(y_true, y_score)
    called = s >= threshold
    pos, neg = y == 1, y == 0
    sens = float(called[pos].mean()) if pos.any() else math.nan
    spec = float((~called[neg]).mean()) if neg.any() else math.nan
    return sens, spec


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    y, p = _paired(y_true, y_pred)
    return float(np.mean(np.abs(y - p))) if y.size else math.nan


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    y, p = _paired(y_true, y_pred)
    return float(np.sqrt(np.mean((y - p) ** 2))) if y.size else math.nan


def pearson_r(y_true, y_pred) -> float:
    """Pearson correlation; ``nan`` if either side is constant or has fewer than two values."""
    y, p = _paired(y_true, y_pred)
    if y.size < 2 or np.ptp(y) == 0 or np.ptp(p) == 0:
        return math.nan
    return float(np.corrcoef(y, p)[0, 1])


def pearson_r_interval(y_true, y_pred, groups, level: float = 0.95, draws: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of Pearson r that resamples whole groups (records), not values.

    Windows cut from one recording are not independent: resampling them one by one would
    make the interval too narrow. Each draw takes as many groups as there are, with
    replacement, and every value of a drawn group as often as the group was drawn. Seeded, so
    a report is reproducible; ``(nan, nan)`` with fewer than two groups.
    """
    y, p = _paired(y_true, y_pred)
    g = np.asarray(groups).ravel()
    if g.shape != y.shape:
        raise ValueError(f"groups has {g.size} values, y_true {y.size}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie between 0 and 1, not {level}")
    ids, index = np.unique(g, return_inverse=True)
    if ids.size < 2:
        return math.nan, math.nan
    y, p = y - y.mean(), p - p.mean()  # centred, so the one-pass weighted moments below keep their precision
    rng = np.random.default_rng(seed)
    rs = []
    batch = 500  # draws per matrix product: bounded memory for long evaluation sets
    for start in range(0, draws, batch):
        counts = rng.multinomial(ids.size, np.full(ids.size, 1 / ids.size), size=min(batch, draws - start))
        w = counts[:, index].astype(np.float64)
        n = w.sum(axis=1)
        my, mp = w @ y / n, w @ p / n
        cov = w @ (y * p) / n - my * mp
        var_y, var_p = w @ (y * y) / n - my**2, w @ (p * p) / n - mp**2
        with np.errstate(invalid="ignore", divide="ignore"):
            rs.append(cov / np.sqrt(var_y * var_p))
    r = np.concatenate(rs)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(r, [tail, 100 - tail])
    return float(low), float(high)


def binary_report(y_true, y_score, threshold: float = 0.5) -> dict:
    """AUROC, AUPRC, sensitivity and specificity at ``threshold``, counts and prevalence.

    ``y_score`` should be a probability when ``threshold`` is one.
    """
    y, s = _binary(y_true, y_score)
    sens, spec = sensitivity_specificity(y, s, threshold)
    return {
        "n": int(y.size),
        "positives": int(y.sum()),
        "prevalence": float(y.mean()) if y.size else math.nan,
        "auroc": auroc(y, s),
        "auprc": auprc(y, s),
        "threshold": float(threshold),
        "sensitivity": sens,
        "specificity": spec,
    }


def regression_report(y_true, y_pred) -> dict:
    """MAE, RMSE, Pearson r, bias (mean of prediction minus truth) and the SD of the truth."""
    y, p = _paired(y_true, y_pred)
    return {
        "n": int(y.size),
        "mae": mae(y, p),
        "rmse": rmse(y, p),
        "pearson_r": pearson_r(y, p),
        "bias": float(np.mean(p - y)) if y.size else math.nan,
        "sd_true": float(np.std(y)) if y.size else math.nan,
    }
