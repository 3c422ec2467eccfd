"""Evaluation figures (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from rgbt.atomic import atomic_write
from rgbt.evaluation.missrate import MissRateCurve

#: Miss-rate ticks of the classic Caltech/KAIST figure.
_MISS_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.64, 0.8, 1.0)


def plot_miss_rate(
    curves: Mapping[str, MissRateCurve],
    path: str | os.PathLike[str],
    title: str | None = None,
    fppi_range: tuple[float, float] = (1e-3, 1e1),
) -> Path:
    """Draw miss rate vs FPPI (log-log), one curve per result, the legend sorted by MR.

    Args:
        curves: legend name -> curve (e.g. ``{'MLPD': evaluate_miss_rate(...)}``).
        path: the image file to write (format from the extension, e.g. ``.png``, ``.pdf``).
        title: figure title.
        fppi_range: x-axis limits.

    Returns:
        ``path``. Each legend entry reads ``"7.58% MLPD"``; best (lowest MR) first.
    """
    # A bare Figure renders through the Agg canvas without touching pyplot's global backend state.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    order = sorted(curves.items(), key=lambda item: (np.nan_to_num(item[1].mr, nan=2.0), item[0]))
    fig = Figure(figsize=(6.0, 5.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for name, curve in order:
        if len(curve.fppi):
            # Extend the curve to the right edge so every result spans the plot, as dbEval does.
            fppi = np.concatenate([curve.fppi, [max(fppi_range[1], curve.fppi[-1])]])
            miss = np.concatenate([curve.miss_rate, [curve.miss_rate[-1]]])
        else:
            fppi, miss = np.array(fppi_range, dtype=float), np.ones(2)
        label = f"{curve.mr * 100:.2f}% {name}" if not np.isnan(curve.mr) else f"n/a {name}"
        ax.step(np.maximum(fppi, fppi_range[0]), np.maximum(miss, 1e-4), where="post", linewidth=1.8,
                label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*fppi_range)
    # The classic figure starts at 0.05; go lower only when a curve does.
    lowest = min((float(c.miss_rate.min()) for c in curves.values() if len(c.miss_rate)), default=1.0)
    bottom = max((t for t in _MISS_TICKS if t <= min(lowest, 0.05)), default=_MISS_TICKS[0])
    ticks = [t for t in _MISS_TICKS if t >= bottom]
    ax.set_ylim(bottom, 1.0)
    ax.set_yticks(ticks)
    ax.set_yticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.grid(True, which="major", linestyle=":", linewidth=0.6)
    ax.set_xlabel("false positives per image")
    ax.set_ylabel("miss rate")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    fig.tight_layout()
    path = Path(path)
    # The format follows the suffix (png, pdf, svg ...), as plt.savefig(path) would choose it.
    return atomic_write(path, lambda handle: fig.savefig(handle, format=path.suffix.lstrip(".").lower() or "png"))


def plot_misalignment(
    series: list[Mapping[str, object]],
    path: str | os.PathLike[str],
    ylabel: str = "MR$^{-2}$ all (%)",
    title: str | None = None,
) -> Path:
    """Miss rate under misalignment: one panel per perturbation family, one curve per detector.

    Args:
        series: points, each a mapping with ``detector``, ``panel`` (``S0``, ``S45``, ``rotate``,
            ``blackout`` ...; panels appear in first-seen order), ``value`` (x), ``mr`` (percent;
            ``None`` is skipped) and optionally ``xlabel`` (the panel's x-axis title) and ``label``:
            a panel whose points carry a non-empty ``label`` is drawn as grouped bars, one group per
            label (the blackout cases), instead of lines against ``value``.
        path: the PNG file to write (atomically: a resumed sweep never leaves half an image).
        ylabel: y-axis title.
        title: figure title.

    Returns:
        ``path``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure


    panels: dict[str, list[Mapping[str, object]]] = {}
    for point in series:
        panels.setdefault(str(point["panel"]), []).append(point)
    if not panels:
        raise ValueError("plot_misalignment: nothing to plot")
    detectors = list(dict.fromkeys(str(point["detector"]) for point in series))
    colours = {name: f"C{i % 10}" for i, name in enumerate(detectors)}
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.6 * ncols, 3.6 * nrows), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (panel, points) in zip(axes, panels.items()):
        labels = list(dict.fromkeys(str(p.get("label") or "") for p in points))
        if any(labels):
            width = 0.8 / len(detectors)
            for i, name in enumerate(detectors):
                mr = {str(p.get("label") or ""): p["mr"] for p in points if p["detector"] == name}
                heights = [np.nan if mr.get(label) is None else float(mr[label]) for label in labels]
                ax.bar(np.arange(len(labels)) + (i - (len(detectors) - 1) / 2) * width, heights, width,
                       color=colours[name], label=name)
            ax.set_xticks(np.arange(len(labels)), labels, rotation=20, ha="right", fontsize=8)
        else:
            for name in detectors:
                pairs = sorted((float(p["value"]), float(p["mr"])) for p in points
                               if p["detector"] == name and p["mr"] is not None)
                if pairs:
                    xs, ys = zip(*pairs)
                    ax.plot(xs, ys, marker="o", markersize=3, color=colours[name], label=name)
        ax.set_title(panel)
        ax.set_xlabel(next((str(p["xlabel"]) for p in points if p.get("xlabel")), ""))
        ax.set_ylabel(ylabel)
        # A perfect detector sits at the evaluator's floor (1e-8 %): keep at least 0-1 % in view.
        ax.set_ylim(0, max(1.0, ax.get_ylim()[1]))
        ax.grid(True, linestyle=":", linewidth=0.6)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8, framealpha=0.9)
    if title:
        fig.suptitle(title)
    return atomic_write(path, lambda handle: fig.savefig(handle, format="png"))
