"""Test-set metrics (`metrics.json`) and the pictures people look at, written into the
model folder under the names `folder` gives them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scone_assets.atomic import atomic_write_text
from scone_assets.model import metrics as m
from scone_assets.model.folder import (
    CALIBRATION_PNG,
    CONFUSION_PNG,
    CURVES_PNG,
    EXAMPLES_PNG,
    METRICS_FILE,
    ROC_PNG,
)
from scone_assets.snana.types import IA


def p_ia(probs: np.ndarray, classes: list[str], categorical: bool) -> np.ndarray:
    probs = np.asarray(probs, dtype=float)
    if not categorical:
        return probs.reshape(-1)
    return probs[:, classes.index(IA)] if IA in classes else np.zeros(len(probs))


def evaluate_and_report(out: Path, labels, per_set: dict, history: dict, catalog=None,
                        calibration: dict | None = None, ensemble: dict | None = None) -> dict:
    """Metrics on the test objects, per heatmap set (one per early truncation) and overall;
    `calibration` (temperature, ECE before and after) and `ensemble` (each member alone;
    `per_set` then holds the ensemble's probabilities) are recorded as given."""
    result: dict = {"sets": {}}
    if calibration is not None:
        result["calibration"] = calibration
    if ensemble is not None:
        result["ensemble"] = ensemble
    all_types, all_probs = [], []
    for name, (_, type_names, probs) in per_set.items():
        type_names = labels.names(type_names)  # as the model learnt them (count_as_ia)
        pia = p_ia(probs, labels.classes, labels.categorical)
        entry = {"binary": m.binary_metrics(type_names == IA, pia)}
        if labels.categorical:
            entry["categorical"] = m.categorical_metrics(labels.encode(type_names), np.asarray(probs), labels.classes)
        result["sets"][name] = entry
        all_types.append(type_names)
        all_probs.append(np.asarray(probs))
    type_names = np.concatenate(all_types) if all_types else np.array([], dtype=object)
    probs = np.concatenate(all_probs) if all_probs else np.zeros((0, len(labels.classes)))
    pia = p_ia(probs, labels.classes, labels.categorical)
    result["test"] = m.binary_metrics(type_names == IA, pia)
    if labels.categorical:
        result["categorical"] = m.categorical_metrics(labels.encode(type_names), probs, labels.classes)
    atomic_write_text(out / METRICS_FILE, json.dumps(result, indent=1, default=float))
    plot_report(out, history, type_names == IA, pia, labels, type_names, probs)
    if catalog is not None:
        example_heatmaps(catalog, out / EXAMPLES_PNG)
    return result


def example_heatmaps(catalog, path: Path, per_class: int = 3) -> Path | None:
    """The first few heatmaps of each class, flux channel, as the network sees them."""
    from scone_assets.heatmaps.store import records_of

    picked: dict[str, list] = {}
    for seen, (img, snid, tname, _, _) in enumerate(records_of(catalog).as_numpy_iterator()):
        name = tname.decode() or "?"
        if len(picked.setdefault(name, [])) < per_class:
            picked[name].append((img, f"{name} {snid.decode()}"))
        full = all(len(v) >= per_class for v in picked.values())
        if (full and seen >= 500) or seen >= 5000:  # enough to meet the rarer classes
            break
    items = [it for name in sorted(picked) for it in picked[name]]
    if not items:
        return None
    from scone_assets.heatmaps.grid import WAVE_MAX, WAVE_MIN

    return plot_examples(np.stack([i for i, _ in items]), [t for _, t in items], path, waves=(WAVE_MIN, WAVE_MAX))


def plot_report(out: Path, history: dict, is_ia, pia, labels, type_names, probs) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), constrained_layout=True)
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        if key in history:
            ax.plot(history[key], label="train")
        if f"val_{key}" in history:
            ax.plot(history[f"val_{key}"], label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    paths.append(out / CURVES_PNG)
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4.2), constrained_layout=True)
    fpr, tpr = m.roc_curve(is_ia, pia)
    ax.plot(fpr, tpr, lw=2, label=f"AUC {m.roc_auc(is_ia, pia):.3f}")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (SN Ia efficiency)")
    ax.legend(loc="lower right")
    paths.append(out / ROC_PNG)
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    if labels.categorical:
        classes = labels.classes
        cm = m.confusion_matrix(labels.encode(type_names), np.argmax(probs, axis=1), len(classes))
    else:
        classes = ["non-Ia", "SN Ia"]
        cm = m.confusion_matrix(is_ia.astype(int), (pia >= 0.5).astype(int), 2)
    fig, ax = plt.subplots(figsize=(1.2 * len(classes) + 2.5, 1.1 * len(classes) + 2), constrained_layout=True)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{cm[i, j]}\n{norm[i, j]:.2f}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    paths.append(out / CONFUSION_PNG)
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.5, 4.2), constrained_layout=True)
    mean_p, frac, count = m.calibration(is_ia, pia)
    ok = count > 0
    ax.plot(mean_p[ok], frac[ok], "o-")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set_xlabel("predicted P(Ia)")
    ax.set_ylabel("observed SN Ia fraction")
    paths.append(out / CALIBRATION_PNG)
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def plot_examples(images: np.ndarray, titles: list[str], path: Path, waves=None) -> Path:
    """A grid of heatmaps (flux channel), one per example."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    cols = min(4, max(1, n))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False, constrained_layout=True)
    for ax, img, title in zip(axes.flat, images, titles, strict=False):
        extent = None if waves is None else (0, img.shape[1], waves[0], waves[-1])
        ax.imshow(img[..., 0], aspect="auto", origin="lower", cmap="magma", extent=extent)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("time bin")
        ax.set_ylabel("wavelength (A)" if waves is not None else "wavelength bin")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
