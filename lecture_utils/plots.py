"""The lessons' plots: training curves, cost bars, lines against reference points, accuracy vs MACs
with the Pareto front, and width x resolution grids.

Every function returns its matplotlib Figure (a pyplot figure: in a notebook it is shown once,
whether it is assigned or is the cell's value; in scripts close it with ``plt.close(fig)``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

_ACC_KEYS = ("train_acc", "val_acc")
_LOSS_KEYS = ("train_loss", "val_loss")


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure rendered as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


class LessonFigure(Figure):
    """A pyplot figure that a notebook shows exactly once.

    Jupyter's inline backend shows open pyplot figures when the cell ends; a figure that is also
    the cell's value would appear twice. Displaying it hands it over from pyplot to the notebook.
    """

    def _ipython_display_(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import Image, display

        png = figure_png(self)
        if self.canvas.manager is not None and plt.fignum_exists(self.canvas.manager.num):
            plt.close(self)  # shown here, so not again at the end of the cell
        display(Image(data=png))


def _new_figure(ncols: int, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Any]]:
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(width * ncols, height), layout="constrained", FigureClass=LessonFigure)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _as_curves(history: Mapping[str, Any]) -> dict[str, list[float]]:
    """Accept a trainer History (train_loss, ...) or the course's {'loss': [(train, val)], 'accuracy': [...]}."""
    if all(k in history for k in _LOSS_KEYS + _ACC_KEYS):
        return {k: [float(v) for v in history[k]] for k in _LOSS_KEYS + _ACC_KEYS}
    if "loss" in history and "accuracy" in history:
        loss, acc = list(history["loss"]), list(history["accuracy"])
        return {"train_loss": [p[0] for p in loss], "val_loss": [p[1] for p in loss],
                "train_acc": [p[0] for p in acc], "val_acc": [p[1] for p in acc]}
    raise ValueError("a history needs the keys train_loss, train_acc, val_loss, val_acc "
                     "(or the course's 'loss' and 'accuracy' lists of (train, val) pairs)")


def _is_history(obj: Any) -> bool:
    return isinstance(obj, Mapping) and (
        all(k in obj for k in _LOSS_KEYS + _ACC_KEYS) or ("loss" in obj and "accuracy" in obj))


def plot_history(history: Mapping[str, Any], title: str | None = None, num_classes: int | None = None,
                 train_loss_label: str | None = None, baseline: tuple[str, float] | None = None) -> Figure:
    """Loss and accuracy per epoch, train (solid) vs val (dashed).

    `history` is one history or a mapping name -> history (one colour per name). With `num_classes`
    a grey line marks chance: accuracy 1/num_classes and the loss ln(num_classes) of a uniform guess.
    `train_loss_label` names the train loss where it is not the val loss's quantity (e.g. with auxiliary losses).
    `baseline` ``(label, accuracy)`` draws a reference accuracy (e.g. the linear baseline) as a line.
    """
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, int)
                                    or num_classes < 2):
        raise ValueError(f"num_classes must be an int >= 2 (or None for no chance line), got {num_classes!r}")
    runs = {"": history} if _is_history(history) else dict(history)
    if not runs or not all(_is_history(h) for h in runs.values()):
        raise ValueError("plot_history needs a history (train_loss, train_acc, val_loss, val_acc) "
                         "or a mapping name -> history")
    fig, (ax_loss, ax_acc) = _new_figure(2)
    for i, (name, h) in enumerate(runs.items()):
        curves = _as_curves(h)
        color = f"C{i % 10}"
        prefix = f"{name} " if name else ""
        for ax, kind in ((ax_loss, "loss"), (ax_acc, "acc")):
            for split, style in (("train", "-"), ("val", "--")):
                values = curves[f"{split}_{kind}"]
                epochs = range(1, len(values) + 1)
                split_label = train_loss_label if (kind, split) == ("loss", "train") and train_loss_label else split
                ax.plot(epochs, values, style, color=color, marker="o", markersize=3,
                        label=f"{prefix}{split_label}")
    if num_classes is not None:
        ax_acc.axhline(1 / num_classes, color="grey", linestyle=":", linewidth=1.2,
                       label=f"chance (1/{num_classes})")
        ax_loss.axhline(math.log(num_classes), color="grey", linestyle=":", linewidth=1.2,
                        label=f"uniform guess (ln {num_classes})")
    if baseline is not None:
        ax_acc.axhline(float(baseline[1]), color="black", linestyle="-.", linewidth=1.0,
                       label=f"{baseline[0]} ({float(baseline[1]):.3f})")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    return fig


def format_count(value: float) -> str:
    """Human-readable count: 3504872 -> '3.50M', 300774272 -> '300.8M', 1.5e9 -> '1.50G'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            scaled = value / scale
            return f"{scaled:.1f}{unit}" if abs(scaled) >= 100 else f"{scaled:.2f}{unit}"
    return f"{value:g}"


def plot_bars(data: Mapping[str, Mapping[str, Any]], metrics: Sequence[str] | None = None,
              log: bool = False, title: str | None = None, xlabel: str | None = None) -> Figure:
    """One bar panel per metric (e.g. params, MACs) across models, each bar labelled with its value.

    `data` is ``{model: {metric: value}}``, or grouped ``{group: {model: {metric: value}}}``
    (e.g. widths as groups, one bar per model). The y axis is labelled with the metric (and
    "log scale" with `log`, for when one bar dwarfs the rest); `xlabel` names the bars.
    """
    if not data:
        raise ValueError("plot_bars needs at least one entry")
    first = next(iter(data.values()))
    grouped = isinstance(first, Mapping) and isinstance(next(iter(first.values()), None), Mapping)
    groups = dict(data) if grouped else {"": data}
    series = list(dict.fromkeys(name for g in groups.values() for name in g))
    available = list(dict.fromkeys(m for g in groups.values() for v in g.values() for m in v))
    metrics = list(metrics) if metrics is not None else available
    missing = [m for m in metrics if m not in available]
    if missing or not metrics:
        raise ValueError(f"unknown metrics {missing}; available: {', '.join(available)}")
    fig, axes = _new_figure(len(metrics), width=max(4.0, 0.6 * len(series) * len(groups) + 2))
    width = 0.8 / len(series) if grouped else 0.8
    for ax, metric in zip(axes, metrics):
        for j, name in enumerate(series):
            xs, heights = [], []
            for g, (group, entries) in enumerate(groups.items()):
                if name in entries and metric in entries[name]:
                    xs.append(g + (j - (len(series) - 1) / 2) * width if grouped else j)
                    heights.append(float(entries[name][metric]))
            bars = ax.bar(xs, heights, width=width, color=f"C{j % 10}", label=name if grouped else None)
            ax.bar_label(bars, labels=[format_count(h) for h in heights], fontsize="x-small", rotation=90 if grouped else 0,
                         padding=2)
        if grouped:
            ax.set_xticks(range(len(groups)), list(groups))
            ax.legend(fontsize="small")
        else:
            ax.set_xticks(range(len(series)), series, rotation=30, ha="right")
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(f"{metric} (log scale)" if log else metric)
        if xlabel:
            ax.set_xlabel(xlabel)
        ax.set_title(metric)
        ax.margins(y=0.15)
        ax.grid(axis="y", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig


def plot_lines(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], xlabel: str, ylabel: str,
               reference: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
               log_x: bool = False, log_y: bool = False, title: str | None = None) -> Figure:
    """Lines with markers, one per ``{name: (xs, ys)}``; `reference` points (e.g. a paper's table) as open markers.

    `log_y` (or `log_x`) draws that axis on a log scale and says so in its label.
    """
    if not series:
        raise ValueError("plot_lines needs at least one series {name: (xs, ys)}")
    fig, (ax,) = _new_figure(1, width=6.0, height=4.0)
    for group, style in ((series, "line"), (reference or {}, "points")):
        for name, pair in group.items():
            if len(pair) != 2 or len(pair[0]) != len(pair[1]):
                raise ValueError(f"series {name!r} must be a pair (xs, ys) of equal length")
            xs, ys = [float(v) for v in pair[0]], [float(v) for v in pair[1]]
            if style == "line":
                ax.plot(xs, ys, marker="o", markersize=4, label=name)
            else:
                ax.plot(xs, ys, linestyle="none", marker="s", markersize=8, markerfacecolor="none",
                        markeredgewidth=1.5, label=name)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    ax.set(xlabel=f"{xlabel} (log scale)" if log_x else xlabel, ylabel=f"{ylabel} (log scale)" if log_y else ylabel)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return fig


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower or equal cost and higher accuracy), by cost.

    Points are ``(cost, accuracy)``; lower cost and higher accuracy are better.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _records_to_groups(records: Sequence[Mapping[str, Any]], x: str, y: str, group: str | None,
                       label: str | Sequence[str] | None) -> dict[str, list[tuple[str, float, float]]]:
    groups: dict[str, list[tuple[str, float, float]]] = {}
    label_keys = [label] if isinstance(label, str) else list(label or [])
    for r in records:
        name = str(r[group]) if group else ""
        text = " ".join(str(r[k]) for k in label_keys)
        groups.setdefault(name, []).append((text, float(r[x]), float(r[y])))
    return groups


def plot_acc_vs_macs(results: Mapping[str, Sequence[tuple[str, float, float]]] | Sequence[Mapping[str, Any]],
                     x: str = "macs", y: str = "val_acc", group: str | None = "model",
                     label: str | Sequence[str] | None = None, log_x: bool = True, pareto: bool = True,
                     title: str | None = None, panels: bool = False,
                     baseline: tuple[str, float] | None = None) -> Figure:
    """Accuracy against MACs, one colour per group, points labelled, each group's Pareto front drawn.

    `results` is ``{group: [(label, macs, acc), ...]}`` or a list of records (dicts) read through
    the keys `x`, `y`, `group` and `label` (e.g. the sweep's rows). With ``panels`` each group gets
    its own panel (on shared axes, so labels do not overlap), with the other groups' fronts drawn thin.
    `baseline` ``(label, accuracy)`` draws a reference accuracy as a horizontal line.
    """
    if isinstance(results, Mapping):
        groups = {str(k): [(str(p[0]), float(p[1]), float(p[2])) for p in v] for k, v in results.items()}
    else:
        groups = _records_to_groups(list(results), x, y, group, label)
    if not any(groups.values()):
        raise ValueError("plot_acc_vs_macs needs at least one point")
    fronts = {name: [points[k] for k in pareto_front([(p[1], p[2]) for p in points])] if pareto and len(points) > 1
              else [] for name, points in groups.items()}
    colors = {name: f"C{i % 10}" for i, name in enumerate(groups)}
    if panels:
        fig, axes = _new_figure(len(groups), width=4.6, height=4.4)
        for ax in axes[1:]:
            ax.sharex(axes[0])
            ax.sharey(axes[0])
    else:
        fig, axes = _new_figure(1, width=7.0, height=5.0)
    for i, (name, points) in enumerate(groups.items()):
        ax = axes[i] if panels else axes[0]
        ax.scatter([p[1] for p in points], [p[2] for p in points], color=colors[name], label=name or None, zorder=3)
        labelled = sorted((p for p in points if p[0]), key=lambda p: p[1])
        for k, (text, px, py) in enumerate(labelled):  # neighbours alternate above and below their point
            ax.annotate(text, (px, py), textcoords="offset points", xytext=(4, 3 if k % 2 == 0 else -10),
                        fontsize="small")
        shown = fronts if panels else {name: fronts[name]}
        for other, front in shown.items():
            if front:
                ax.step([p[1] for p in front], [p[2] for p in front], where="post", color=colors[other],
                        alpha=0.6 if other == name else 0.35, linewidth=1.2 if other == name else 0.8)
    for ax in axes:
        if baseline is not None:
            ax.axhline(float(baseline[1]), color="black", linestyle="-.", linewidth=1.0,
                       label=f"{baseline[0]} ({float(baseline[1]):.3f})")
        if log_x:
            ax.set_xscale("log")
        ax.set(xlabel="MACs" if x == "macs" else x, ylabel="validation accuracy" if y == "val_acc" else y)
        ax.grid(alpha=0.3, which="both")
        if any(groups) or baseline is not None:
            ax.legend(fontsize="small", loc="lower right")
    if panels:
        fig.suptitle(title or "accuracy vs cost (lines: Pareto fronts; thin: the other groups')")
    else:
        axes[0].set_title(title or "accuracy vs cost (lines: Pareto front of each group)")
    return fig


def _grid_array(grid: Mapping[str, Mapping[str, float]] | Any, row_labels: Sequence[str] | None,
                col_labels: Sequence[str] | None) -> tuple[np.ndarray, list[str], list[str]]:
    if isinstance(grid, Mapping):
        rows = list(row_labels) if row_labels is not None else [str(r) for r in grid]
        cols = list(col_labels) if col_labels is not None else list(dict.fromkeys(
            str(c) for r in grid.values() for c in r))
        keyed = {str(r): {str(c): v for c, v in row.items()} for r, row in grid.items()}
        values = np.array([[float(keyed.get(r, {}).get(c, np.nan)) for c in cols] for r in rows])
        return values, rows, cols
    values = np.asarray(grid, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"a grid must be 2-D, got shape {values.shape}")
    rows = list(row_labels) if row_labels is not None else [str(i) for i in range(values.shape[0])]
    cols = list(col_labels) if col_labels is not None else [str(j) for j in range(values.shape[1])]
    if (len(rows), len(cols)) != values.shape:
        raise ValueError(f"{len(rows)} row and {len(cols)} column labels for a grid of shape {values.shape}")
    return values, rows, cols


def plot_grid(grid: Mapping[str, Any] | Any, row_labels: Sequence[str] | None = None,
              col_labels: Sequence[str] | None = None, fmt: str = "{:.3f}", xlabel: str = "resolution",
              ylabel: str = "width", title: str | None = None, cmap: str = "viridis",
              vmin: float | None = None, vmax: float | None = None, colorbar_label: str | None = None) -> Figure:
    """Heatmap of a width x resolution grid with every value written in its cell.

    `grid` is ``{row: {col: value}}`` (e.g. ``{"W100%": {"R224": 0.81, ...}}``), a 2-D array with
    labels, or ``{panel: grid}`` for several panels on one colour scale: `vmin`..`vmax` when given
    (e.g. 0..1 for accuracies, so that colours mean the same in every figure), else the data's range.
    """
    if isinstance(grid, Mapping) and grid and all(
            isinstance(v, Mapping) and v and all(isinstance(w, Mapping) for w in v.values())
            for v in grid.values()):
        panels = {str(k): _grid_array(v, row_labels, col_labels) for k, v in grid.items()}
    else:
        panels = {"": _grid_array(grid, row_labels, col_labels)}
    finite = np.concatenate([p[0][np.isfinite(p[0])] for p in panels.values()])
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    vmin, vmax = low if vmin is None else float(vmin), high if vmax is None else float(vmax)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    ncols = len(panels)
    first = next(iter(panels.values()))
    fig, axes = _new_figure(ncols, width=max(3.5, 0.9 * len(first[2]) + 1.5), height=max(3.0, 0.6 * len(first[1]) + 1.5))
    image = None
    for ax, (name, (values, rows, cols)) in zip(axes, panels.items()):
        image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(cols)), cols)
        ax.set_yticks(range(len(rows)), rows)
        ax.set(xlabel=xlabel, ylabel=ylabel)
        if name:
            ax.set_title(name)
        for r in range(values.shape[0]):
            for c in range(values.shape[1]):
                v = values[r, c]
                if np.isfinite(v):
                    light = (v - vmin) / (vmax - vmin) > 0.5
                    ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize="medium",
                            color="black" if light else "white")
    bar = fig.colorbar(image, ax=axes, shrink=0.85)
    if colorbar_label:
        bar.set_label(colorbar_label)
    if title:
        fig.suptitle(title)
    return fig


def plot_differences(groups: Mapping[str, Sequence[Any]], xlabel: str = "difference",
                     title: str | None = None) -> Figure:
    """Horizontal bars of mean differences with their 95 % intervals, one panel per group.

    `groups` is ``{panel: [comparison, ...]}`` where each comparison has ``variant``, ``mean``, ``half``
    (the 95 % interval's half-width), ``n`` and ``p`` (e.g. :class:`lecture_utils.experiment.results.Comparison`).
    A bar is coloured where its interval excludes zero (red below, green above), grey otherwise.
    """
    if not groups or not all(groups.values()):
        raise ValueError("plot_differences needs at least one comparison per panel")
    fig, axes = _new_figure(len(groups), width=6.0, height=0.7 * max(len(v) for v in groups.values()) + 1.8)
    for ax, (name, comparisons) in zip(axes, groups.items()):
        labels = [c.variant for c in comparisons]
        means = [c.mean for c in comparisons]
        errors = [c.half for c in comparisons]
        colors = ["C3" if m + e < 0 else "C2" if m - e > 0 else "0.6" for m, e in zip(means, errors)]
        ax.barh(range(len(labels)), means, xerr=errors, color=colors, capsize=4)
        for k, c in enumerate(comparisons):
            ax.annotate(f"{c.mean:+.3f}  (n = {c.n}, p = {c.p:.2g})", (0, k), textcoords="offset points",
                        xytext=(4 if c.mean <= 0 else -4, 9), ha="left" if c.mean <= 0 else "right",
                        fontsize="small")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(labels)), labels)
        ax.invert_yaxis()
        ax.set(xlabel=xlabel, title=name)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title)
    return fig
