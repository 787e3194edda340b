"""The linear baseline: softmax regression on Fashion-MNIST's raw pixels, the line every network should clear.

``python -m lecture_utils.experiment.baseline --data-root /usr/share/datasets/fashion-mnist`` fits it and
stores it in ``data/reference/linear-baseline.json``; lessons read it with
:func:`lecture_utils.experiment.results.load_linear_baseline`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from lecture_utils._util import atomic_write, check_writable_file, cpu_name, git_commit
from lecture_utils.datasets import get_dataset
from lecture_utils.experiment.results import LINEAR_BASELINE_FILE

__all__ = ["softmax_regression_loss", "linear_baseline", "main"]


def softmax_regression_loss(x: Any, y: Any, w: Any, b: Any, weight_decay: float) -> tuple[Any, tuple[Any, Any]]:
    """Mean cross-entropy of the logits ``x @ w + b`` plus ``weight_decay * |w|^2``, and its gradient.

    The gradient in closed form: with p = softmax(x w + b) and Y the one-hot labels,
    dL/dw = x^T (p - Y) / n + 2 weight_decay w and dL/db = sum over the images of (p - Y) / n.
    """
    logits = x @ w + b
    loss = torch.nn.functional.cross_entropy(logits, y) + weight_decay * (w * w).sum()
    residual = (logits.softmax(dim=1) - torch.nn.functional.one_hot(y, w.shape[1]).to(w.dtype)) / len(y)
    return loss, (x.T @ residual + 2 * weight_decay * w, residual.sum(dim=0))


def linear_baseline(root: str | Path | None = None, max_iter: int = 300, weight_decay: float = 1e-4,
                    per_class: int | None = None) -> dict[str, Any]:
    """Softmax regression on Fashion-MNIST's raw pixels: the line every network should clear.

    784 pixel values in [0, 1] (plus a bias) -> 10 logits, fitted on all 60,000 training images by
    full-batch L-BFGS in float64 with an L2 penalty of `weight_decay` on the weights, and scored on
    the 10,000 test images. No convolution, no hidden layer: a straight line per class. With
    `per_class`, it is fitted on the zoo's training images instead (`per_class` per class from the
    training split less its held-out part, drawn with seed 0 as a sweep condition of seed 0 draws them)
    and also scored on the held-out images (``heldout_acc``).
    """
    def arrays(split: str) -> tuple[torch.Tensor, torch.Tensor]:
        ds = get_dataset("fashion_mnist", split, root=root)
        x = torch.tensor(ds.images, dtype=torch.float64).reshape(len(ds), -1) / 255.0  # a copy: the file is read-only
        return x, torch.as_tensor(ds.targets, dtype=torch.long)

    started, commit = time.time(), git_commit()
    (x, y), (xv, yv) = arrays("train"), arrays("val")
    held: dict[str, Any] = {}
    if per_class is not None:
        from lecture_utils.data import pick_per_class
        from lecture_utils.holdout import heldout_split

        targets = y.tolist()
        rest, held_rows = heldout_split(targets)
        rows = torch.as_tensor(pick_per_class(targets, rest, per_class, 0))
        xh, yh = x[held_rows], y[held_rows]
        x, y = x[rows], y[rows]
    w = torch.zeros(x.shape[1], 10, dtype=torch.float64)
    b = torch.zeros(10, dtype=torch.float64)
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, history_size=20,
                                  tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        loss, (w.grad, b.grad) = softmax_regression_loss(x, y, w, b, weight_decay)
        return loss

    optimizer.step(closure)
    with torch.no_grad():
        train_acc = float(((x @ w + b).argmax(1) == y).double().mean())
        test_acc = float(((xv @ w + b).argmax(1) == yv).double().mean())
        if per_class is not None:
            held = {"per_class": per_class, "heldout_images": len(yh),
                    "heldout_acc": float(((xh @ w + b).argmax(1) == yh).double().mean())}
    return {**held,
        "model": "softmax regression on raw pixels (784 -> 10)",
        "train_images": len(y), "test_images": len(yv), "train_acc": train_acc, "test_acc": test_acc,
        "weight_decay": weight_decay, "max_iter": max_iter, "optimizer": "L-BFGS (strong Wolfe), float64",
        "wall_time_s": round(time.time() - started, 1), "torch": torch.__version__,
        "cpu": cpu_name(), "threads": torch.get_num_threads(), "commit": commit,
        "python": platform.python_version(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: fit the baseline and write it to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m lecture_utils.experiment.baseline",
                                     description="Fit softmax regression on Fashion-MNIST's raw pixels and store "
                                     "its accuracy (the baseline every lesson's network is compared with).")
    parser.add_argument("--data-root", default=None, help="folder of the raw files (default: the data set's own)")
    parser.add_argument("--per-class", type=int, default=None,
                        help="fit on this many training images per class, as the zoo draws them (default: all)")
    parser.add_argument("--out", default=None, help="(default: linear-baseline.json, linear-baseline-N.json with "
                        "--per-class N, in the runs folder, $LECTURE_RUNS_DIR; the stored ones in data/reference/ are "
                        "replaced only when named)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    if args.per_class is not None and args.per_class < 1:
        parser.error(f"--per-class must be an integer >= 1, got {args.per_class}")
    if args.out is None:  # never the tracked reference by default: a try-out would replace it
        from lecture_utils.settings import runs_dir

        name = LINEAR_BASELINE_FILE if args.per_class is None else f"linear-baseline-{args.per_class}.json"
        args.out = str(runs_dir() / name)
    try:
        check_writable_file(args.out, "baseline file")  # before the fit, not after it
        result = linear_baseline(args.data_root, per_class=args.per_class)
    except (FileNotFoundError, ValueError) as exc:
        parser.error(str(exc))
    result["command"] = " ".join(["python -m lecture_utils.experiment.baseline", *argv])
    text = json.dumps(result, indent=1, sort_keys=True) + "\n"
    try:  # atomically: a failed write leaves the previous file, never an empty one
        atomic_write(args.out, lambda tmp: tmp.write_text(text))
    except OSError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"softmax regression on raw pixels: train {result['train_acc']:.4f}, test {result['test_acc']:.4f} "
          f"({result['wall_time_s']:.0f} s) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
