"""Classification metrics, in NumPy: what SCONE's users report for a classifier."""

from __future__ import annotations

import numpy as np


def roc_curve(y_true: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) over every threshold."""
    y_true = np.asarray(y_true, dtype=bool)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    s, y = np.asarray(score, float)[order], y_true[order]
    distinct = np.flatnonzero(np.diff(s)) if len(s) > 1 else np.array([], int)
    idx = np.concatenate([distinct, [len(s) - 1]]) if len(s) else np.array([], int)
    tp = np.cumsum(y)[idx]
    fp = (idx + 1) - tp
    p, n = max(y.sum(), 1), max((~y).sum(), 1)
    return np.concatenate([[0.0], fp / n]), np.concatenate([[0.0], tp / p])


def roc_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    y_true = np.asarray(y_true, dtype=bool)
    if y_true.all() or not y_true.any():
        return float("nan")
    fpr, tpr = roc_curve(y_true, score)
    return float(np.trapezoid(tpr, fpr))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return cm


def binary_metrics(is_ia: np.ndarray, p_ia: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, ROC AUC, and for SNIa: purity (precision), efficiency (recall), F1."""
    is_ia = np.asarray(is_ia, dtype=bool)
    pred = np.asarray(p_ia, float) >= threshold
    tp = int(np.sum(pred & is_ia))
    fp = int(np.sum(pred & ~is_ia))
    fn = int(np.sum(~pred & is_ia))
    purity = tp / (tp + fp) if tp + fp else float("nan")
    efficiency = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * purity * efficiency / (purity + efficiency) if tp else 0.0
    return {
        "n": int(len(is_ia)),
        "n_ia": int(is_ia.sum()),
        "threshold": float(threshold),
        "accuracy": float(np.mean(pred == is_ia)) if len(is_ia) else float("nan"),
        "auc": roc_auc(is_ia, p_ia),
        "purity": purity,
        "efficiency": efficiency,
        "f1": f1,
    }


def categorical_metrics(y_true: np.ndarray, probs: np.ndarray, classes: list[str]) -> dict:
    y_pred = np.argmax(probs, axis=1)
    cm = confusion_matrix(y_true, y_pred, len(classes))
    per_class = {}
    for i, name in enumerate(classes):
        tp = cm[i, i]
        predicted, actual = cm[:, i].sum(), cm[i, :].sum()
        per_class[name] = {
            "precision": float(tp / predicted) if predicted else float("nan"),
            "recall": float(tp / actual) if actual else float("nan"),
            "n": int(actual),
        }
    return {"accuracy": float(np.mean(y_pred == y_true)) if len(y_true) else float("nan"),
            "per_class": per_class, "confusion_matrix": cm.tolist(), "classes": classes}


def calibration(is_ia: np.ndarray, p_ia: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean predicted, observed fraction, count) per probability bin."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p_ia, edges) - 1, 0, bins - 1)
    mean_p, frac, count = np.full(bins, np.nan), np.full(bins, np.nan), np.zeros(bins, int)
    for b in range(bins):
        sel = which == b
        count[b] = sel.sum()
        if count[b]:
            mean_p[b] = np.mean(np.asarray(p_ia)[sel])
            frac[b] = np.mean(np.asarray(is_ia)[sel])
    return mean_p, frac, count
