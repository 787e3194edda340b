"""The held-out validation split: a fixed, stratified part of the training split that every choice looks at.

Every data set's training split is cut once into a *held-out* part, ``1/12`` of each class
(Fashion-MNIST: 500 images of each of its 10 classes, 5,000 of the 60,000; the shipped sample: 25 of
each class's 300), and the rest, which is all a run may train on. The cut is drawn with
:data:`HOLDOUT_SEED`, the same for every run and independent of the run's own seed, so every run of
every lesson holds out the same images. A condition validated on it (``validation="heldout"``)
chooses its epochs, learning rate and best epoch on these images; the official test split is
evaluated once, at the end of the run, and reported beside it. ``validation="test"`` is the
course's way (the official test split as validation), which every stored record used.
No torch here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

__all__ = ["VALIDATIONS", "HOLDOUT_FRACTION", "HOLDOUT_SEED", "check_validation", "heldout_split", "draw_per_class",
           "heldout_count", "heldout_sizes"]

VALIDATIONS = ("test", "heldout")
HOLDOUT_FRACTION = 1 / 12  # Fashion-MNIST: 6,000 training images per class, 500 held out
HOLDOUT_SEED = 20_150_505  # fixed: the held-out images do not depend on a run's seed


def check_validation(validation: str) -> str:
    """`validation` if it names a split a run may validate on (test, heldout), else a ValueError."""
    if validation not in VALIDATIONS:
        raise ValueError(f"validation must be one of {', '.join(VALIDATIONS)} (test: the official test split, "
                         f"as the course does; heldout: 1/12 of each class of the training split), got {validation!r}")
    return validation


def heldout_count(class_size: int) -> int:
    """How many images of a class of `class_size` training images are held out: 1/12, at least 1, never all."""
    if class_size < 2:
        raise ValueError(f"a class needs at least 2 training images to hold one out, got {class_size}")
    return min(class_size - 1, max(1, round(class_size * HOLDOUT_FRACTION)))


def heldout_split(targets: Sequence[int]) -> tuple[list[int], list[int]]:
    """``(rest, heldout)``: indices of the training split (labels `targets`), each list in ascending order.

    Per class, :func:`heldout_count` images drawn with :data:`HOLDOUT_SEED` are held out; the same
    labels always give the same split.
    """
    held = draw_per_class(targets, heldout_count, HOLDOUT_SEED)
    chosen = set(held)
    return [i for i in range(len(targets)) if i not in chosen], held


def draw_per_class(targets: Sequence[int], count: Callable[[int], int], seed: int) -> list[int]:
    """Indices of ``count(n)`` items of each class of n items (all of them, undrawn, if that is n or more).

    Drawn with ``random.Random(seed)``, class by class in label order; returned in ascending order.
    """
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(int(t), []).append(i)
    rng = random.Random(seed)
    chosen: list[int] = []
    for label in sorted(by_class):
        idx = by_class[label]
        k = count(len(idx))
        chosen += idx if len(idx) <= k else rng.sample(idx, k)
    return sorted(chosen)


def heldout_sizes(n_train: int, subset: int | tuple[int | None, int | None] | None,
                  num_classes: int = 10) -> tuple[int, int]:
    """(training, held-out) images of a training split of `n_train` images cut for a held-out run (an estimate).

    `subset` (images per class, or (train, val)) caps both, as it caps a run's training and validation images.
    """
    per_class = n_train // num_classes
    held = heldout_count(per_class) * num_classes
    train_cap, val_cap = (subset, subset) if subset is None or isinstance(subset, int) else subset
    rest = n_train - held
    return (rest if train_cap is None else min(rest, num_classes * int(train_cap)),
            held if val_cap is None else min(held, num_classes * int(val_cap)))
