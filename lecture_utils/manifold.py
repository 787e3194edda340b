"""The manifold/ReLU experiment of the MobileNetV2 paper (Figure 1).

A 2-D spiral X (N x 2) is embedded into n dimensions by a random Gaussian matrix T (n x 2),
passed through an activation, and projected back with the pseudo-inverse of T:

    Y = act(X T^T)            (N x n)
    X_hat = Y (T^+)^T         (N x 2)

Two measures of what the activation destroyed, both reported per n:

* ``projection_error``: mean Euclidean distance |X_hat - X| divided by the spiral's radius.
  It does *not* fall with n. For large n, ReLU(z) = z/2 + |z|/2 and T^+ maps the |z| half to
  almost nothing, so X_hat is close to X/2: the error stays near half the mean radius
  (about 0.25 for the default spiral) however wide the embedding.
* ``unexplained_variance``: 1 - R^2 of the best linear read-out (least squares with a bias) from
  Y back to X. It does fall with n: at n = 2, 3 a large part of the spiral is squashed onto
  the same points and no read-out can recover it; from n of about 15 on, every point of the
  plane is seen by about half of the units, from many directions, and a weighted sum of the
  outputs undoes the folds: a linear read-out recovers the spiral almost exactly.

With the default unit spiral and standard normal T, |X T^T| rarely exceeds 6, so ReLU6 gives
the same result as ReLU; a larger ``scale`` in :func:`make_spiral` shows its clipping.

The paper's point is the second one: ReLU keeps the information of a low-dimensional manifold
only when it is embedded in enough dimensions; the pseudo-inverse of T is not that read-out.
Everything is numpy, seeded, and runs in milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from lecture_utils._util import positive_int

__all__ = [
    "ACTIVATIONS",
    "DIMENSIONS",
    "ManifoldResult",
    "make_spiral",
    "random_embedding",
    "activate",
    "projection_error",
    "linear_readout",
    "unexplained_variance",
    "embed_and_recover",
    "manifold_experiment",
    "measure_table",
    "plot_manifold",
    "plot_activation_grid",
]

ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "leaky_relu", "none")
DIMENSIONS: tuple[int, ...] = (2, 3, 5, 15, 30)  # the paper's Figure 1 panels


@dataclass(frozen=True, eq=False)
class ManifoldResult:
    """One panel of the experiment: the embedding T, the activated points and what came back."""

    n: int
    activation: str
    seed: int
    transform: np.ndarray  # T, (n, 2)
    activated: np.ndarray  # act(X T^T), (N, n)
    recovered: np.ndarray  # act(X T^T) (T^+)^T, (N, 2)
    readout: np.ndarray  # best affine read-out of X from act(X T^T), (N, 2)
    projection_error: float
    unexplained_variance: float


def _check_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
        raise ValueError(f"points must be an (N, 2) array with N >= 3, got shape {points.shape}")
    return points


def make_spiral(
    num_points: int = 1000,
    turns: float = 2.0,
    scale: float = 1.0,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """An Archimedean spiral centred on the origin, radius growing linearly from 0 to ``scale``.

    Point i sits at s_i = i / (N - 1) with radius s_i * scale and angle 2 pi turns s_i; ``noise``
    adds seeded Gaussian jitter (standard deviation relative to ``scale``). Returns (N, 2).
    """
    num_points = positive_int(int(num_points) if isinstance(num_points, np.integer) else num_points,
                              "num_points", minimum=3)
    if not turns > 0 or not scale > 0 or not noise >= 0:
        raise ValueError(f"turns and scale must be > 0 and noise >= 0, got {turns}, {scale}, {noise}")
    s = np.linspace(0.0, 1.0, num_points)
    angle = 2.0 * np.pi * turns * s
    points = scale * np.stack([s * np.cos(angle), s * np.sin(angle)], axis=1)
    if noise:
        points += np.random.default_rng(seed).normal(0.0, noise * scale, size=points.shape)
    return points


def random_embedding(n: int, seed: int = 0) -> np.ndarray:
    """The random matrix T (n x 2) with independent standard normal entries, seeded by (seed, n)."""
    n = positive_int(int(n) if isinstance(n, np.integer) else n, "n")  # numpy ints too (dims=np.arange(...))
    return np.random.default_rng([seed, n]).standard_normal((n, 2))


def activate(z: np.ndarray, activation: str, negative_slope: float = 0.01) -> np.ndarray:
    """Apply "relu", "relu6" (min(max(z, 0), 6)), "leaky_relu" (slope ``negative_slope``) or "none"."""
    if activation == "relu":
        return np.maximum(z, 0.0)
    if activation == "relu6":
        return np.clip(z, 0.0, 6.0)
    if activation == "leaky_relu":
        return np.where(z > 0, z, negative_slope * z)
    if activation == "none":
        return np.array(z, dtype=np.float64, copy=True)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")


def projection_error(points: np.ndarray, recovered: np.ndarray) -> float:
    """Mean distance between original and recovered points, relative to the spiral's radius.

    mean_i |x_hat_i - x_i| / max_i |x_i|  (0 = perfect; about 0.25 when X_hat = X / 2).
    """
    points = _check_points(points)
    recovered = np.asarray(recovered, dtype=np.float64)
    if recovered.shape != points.shape:
        raise ValueError(f"recovered must have the shape of points {points.shape}, got {recovered.shape}")
    radius = np.linalg.norm(points, axis=1).max()
    return float(np.linalg.norm(recovered - points, axis=1).mean() / radius)


def linear_readout(points: np.ndarray, activated: np.ndarray) -> np.ndarray:
    """The best affine read-out of ``points`` from ``activated``: Y W + b fitted by least squares."""
    points = _check_points(points)
    activated = np.asarray(activated, dtype=np.float64)
    if activated.ndim != 2 or len(activated) != len(points):
        raise ValueError(f"activated must be (N, n) with N = {len(points)}, got shape {activated.shape}")
    design = np.hstack([activated, np.ones((len(activated), 1))])
    coef, *_ = np.linalg.lstsq(design, points, rcond=None)
    return design @ coef


def unexplained_variance(points: np.ndarray, activated: np.ndarray) -> float:
    """Share of the points' variance that no affine read-out of ``activated`` explains: 1 - R^2.

    Fits X ~ Y W + b by least squares; returns |X - Y W - b|^2 / |X - mean(X)|^2.
    """
    points = _check_points(points)
    residual = np.sum((linear_readout(points, activated) - points) ** 2)
    total = np.sum((points - points.mean(axis=0)) ** 2)
    return float(residual / total)


def embed_and_recover(
    points: np.ndarray,
    n: int,
    activation: str = "relu",
    seed: int = 0,
    negative_slope: float = 0.01,
) -> ManifoldResult:
    """Embed ``points`` into n dims with a random T, apply ``activation``, recover with pinv(T).

    The recovered points are ``result.recovered`` (N x 2), the best linear read-out's are
    ``result.readout``; both measures are filled in.
    """
    points = _check_points(points)
    transform = random_embedding(n, seed)
    activated = activate(points @ transform.T, activation, negative_slope)
    recovered = activated @ np.linalg.pinv(transform).T
    readout = linear_readout(points, activated)
    residual = np.sum((readout - points) ** 2)
    return ManifoldResult(
        n=n,
        activation=activation,
        seed=seed,
        transform=transform,
        activated=activated,
        recovered=recovered,
        readout=readout,
        projection_error=projection_error(points, recovered),
        unexplained_variance=float(residual / np.sum((points - points.mean(axis=0)) ** 2)),
    )


def manifold_experiment(
    points: np.ndarray | None = None,
    dims: Iterable[int] = DIMENSIONS,
    activation: str = "relu",
    seed: int = 0,
) -> list[ManifoldResult]:
    """One :func:`embed_and_recover` per n in ``dims`` (default: the paper's 2, 3, 5, 15, 30)."""
    points = make_spiral() if points is None else points
    return [embed_and_recover(points, n, activation, seed) for n in dims]


def measure_table(
    points: np.ndarray | None = None,
    dims: Iterable[int] = DIMENSIONS,
    activations: Iterable[str] = ACTIVATIONS,
    seeds: Iterable[int] = range(5),
) -> list[dict[str, float | int | str]]:
    """Both measures averaged over ``seeds``, one row per (activation, n).

    Rows: {"activation", "n", "projection_error", "unexplained_variance"}.
    """
    points = make_spiral() if points is None else points
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    rows = []
    for activation in activations:
        for n in dims:
            runs = [embed_and_recover(points, n, activation, seed) for seed in seeds]
            rows.append(
                {
                    "activation": activation,
                    "n": n,
                    "projection_error": float(np.mean([r.projection_error for r in runs])),
                    "unexplained_variance": float(np.mean([r.unexplained_variance for r in runs])),
                }
            )
    return rows


# --------------------------------------------------------------------------- plots
def _draw(ax, xy: np.ndarray, colour: np.ndarray, title: str, limit: float) -> None:
    ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="viridis", s=4, linewidths=0)
    ax.set_xlim(-limit, limit)
    ax.set_ylim(-limit, limit)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


_RECOVERIES = {"pinv": "recovered", "readout": "readout"}


def _shown(result: ManifoldResult, recovery: str) -> np.ndarray:
    if recovery not in _RECOVERIES:
        raise ValueError(f"recovery must be one of {', '.join(_RECOVERIES)}; got {recovery!r}")
    return getattr(result, _RECOVERIES[recovery])


def _limit(points: np.ndarray, results: Sequence[ManifoldResult], recovery: str) -> float:
    """One axis range for every panel, so that shrinking (ReLU halves the spiral) stays visible."""
    extent = max([np.abs(points).max()] + [np.abs(_shown(r, recovery)).max() for r in results])
    return 1.05 * float(extent)


def plot_manifold(
    points: np.ndarray,
    results: Sequence[ManifoldResult],
    recovery: str = "pinv",
    show_measures: bool = True,
    panel_size: float = 2.2,
) -> Figure:
    """Input spiral and one recovered spiral per result, side by side (as in the paper's Figure 1).

    ``recovery``: "pinv" (the paper's T^+ projection) or "readout" (best affine read-out).
    Points are coloured by their position along the spiral; all panels share one axis range.
    """
    points = _check_points(points)
    if not results:
        raise ValueError("results must hold at least one ManifoldResult")
    fig = Figure(figsize=(panel_size * (len(results) + 1), panel_size * 1.2), layout="constrained")
    axes = fig.subplots(1, len(results) + 1)
    colour = np.linspace(0.0, 1.0, len(points))
    limit = _limit(points, results, recovery)
    _draw(axes[0], points, colour, "input", limit)
    for ax, result in zip(axes[1:], results):
        title = f"n = {result.n}"
        if show_measures:
            title += f"\nerr {result.projection_error:.2f}, 1-R² {result.unexplained_variance:.3f}"
        _draw(ax, _shown(result, recovery), colour, title, limit)
    return fig


def plot_activation_grid(
    points: np.ndarray | None = None,
    dims: Sequence[int] = DIMENSIONS,
    activations: Sequence[str] = ACTIVATIONS,
    seed: int = 0,
    recovery: str = "pinv",
    panel_size: float = 1.8,
) -> Figure:
    """A grid of recovered spirals: one row per activation, one column per n (plus the input).

    Same T for every row (same seed), so rows differ only by the activation; ``recovery`` as in
    :func:`plot_manifold`.
    """
    points = make_spiral() if points is None else _check_points(points)
    rows = [manifold_experiment(points, dims, activation, seed) for activation in activations]
    if not rows or not rows[0]:
        raise ValueError("dims and activations must not be empty")
    limit = max(_limit(points, results, recovery) for results in rows)
    fig = Figure(
        figsize=(panel_size * (len(dims) + 1), panel_size * len(activations) * 1.1), layout="constrained"
    )
    axes = fig.subplots(len(activations), len(dims) + 1, squeeze=False)
    colour = np.linspace(0.0, 1.0, len(points))
    for row, (activation, results) in enumerate(zip(activations, rows)):
        _draw(axes[row, 0], points, colour, "input", limit)
        axes[row, 0].set_ylabel(activation)
        for ax, result in zip(axes[row, 1:], results):
            title = f"n = {result.n}, 1-R² {result.unexplained_variance:.3f}"
            _draw(ax, _shown(result, recovery), colour, title, limit)
    return fig
