"""What one sweep run trains: a :class:`Condition`, checked on construction, its key, its model.

A condition is a model at one width and resolution, trained for some epochs on a data set (all
of it or a subset), with a seed, a named augmentation, a training recipe (optimiser, learning rate,
schedule, weight decay, label smoothing: :class:`lecture_utils.recipe.Recipe`) and the split its
epochs are validated on (``validation``: ``test``, the official test split as the course does, or
``heldout``, a fixed part of the training split: :mod:`lecture_utils.holdout`), the batch size and the data
set's folder (``data_root``: None for the data set's own, where it is found without one). ``KEY_FIELDS``
are its fields in order, and :attr:`Condition.key` (equal for the condition a results record was
trained at, :func:`condition_key`) is what every reader of results compares. A record written
before the recipe and the validation split were recorded reads as the course's constant Adam,
validated on the test split, one without a data root as trained on the data set's own folder (``LEGACY_FIELDS``
are the fields every record has; every record also holds the batch size it was trained at). Nothing here
imports torch. A condition's model is any name ``lecture_utils.models.create_model`` accepts
(:mod:`lecture_utils.model_names`: the ablation variants and ``wide_resnetD_K`` included).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import astuple, dataclass, fields
from typing import Any, Callable, Iterable, Mapping, Sequence

from lecture_utils._util import positive_float, positive_int
from lecture_utils.augment import check_augment_name
from lecture_utils.holdout import check_validation
from lecture_utils import model_names
from lecture_utils.model_names import ABLATION_VARIANTS, C_SWITCHES, MODELS, SWITCHES, has_width  # noqa: F401
from lecture_utils.recipe import COURSE, RECIPE_FIELDS, Recipe

DEFAULT_WIDTHS = (1.0, 0.75, 0.5, 0.35)
DEFAULT_RESOLUTIONS = (224, 192, 160, 128, 96)
DEFAULT_LR = 1e-3  # the course's Adam learning rate
DEFAULT_BATCH = 192  # the course's batch size


def _registry() -> list[str]:
    from lecture_utils.models import list_models  # torch: only for names outside the MobileNet family

    return list_models()


def parse_model_name(name: str) -> tuple[str, str, dict[str, Any]]:
    """A condition's model name as (canonical name, registry name, keyword arguments): see
    :func:`lecture_utils.model_names.parse_model_name`; ValueError listing the allowed names."""
    return model_names.parse_model_name(name, _registry)


def build_model(model: str, width: float, num_classes: int) -> Any:
    """The untrained network of a condition's `model` at `width` (``create_model`` with its arguments)."""
    from lecture_utils.models import create_model

    _, factory, kwargs = parse_model_name(model)
    if has_width(model):
        kwargs = {**kwargs, "width_multiplier": width}
    return create_model(factory, num_classes=num_classes, **kwargs)


def check_width(width: Any) -> float:
    """A width multiplier > 0 (a number, or its text), rounded to 6 decimals."""
    with contextlib.suppress(TypeError, ValueError):
        width = float(width) if isinstance(width, str) else width  # from the command line
    return round(positive_float(width, "width multiplier"), 6)


def check_resolution(resolution: Any) -> int:
    """An input size in pixels, an integer >= 1 (or its text)."""
    if isinstance(resolution, str) and resolution.strip().lstrip("+").isdigit():
        resolution = int(resolution)  # from the command line
    return positive_int(resolution, "resolution")


def check_subset(subset: Any) -> int | tuple[int | None, int | None] | None:
    """None (all images), n images per class in both splits, or (train, val) per class, either None for all
    (JSON's list as a tuple)."""
    if subset is None:
        return None
    if isinstance(subset, (list, tuple)):
        if len(subset) != 2:
            raise ValueError(f"subset must be n or (train, val) images per class, got {subset!r}")
        train, val = (None if v is None else positive_int(v, "subset (images per class)") for v in subset)
        return train if train == val else (train, val)
    return positive_int(subset, "subset (images per class)")


def unique(items: Iterable, key: Callable[[Any], Any] | None = None) -> list:
    """`items` in order, each kept once (compared by ``key(item)`` when given)."""
    seen, out = set(), []
    for x in items:
        k = x if key is None else key(x)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: a model at one width and resolution, trained for ``epochs``.

    Checked and put in one form on construction: the model's canonical name, the width rounded,
    a (train, val) subset with equal halves as one number; bad values raise ValueError.
    """

    model: str
    width: float
    resolution: int
    epochs: int
    dataset: str
    subset: int | tuple[int, int] | None = None
    seed: int = 0
    augment: str = "course"
    lr: float = DEFAULT_LR
    optimizer: str = COURSE.optimizer
    schedule: str = COURSE.schedule
    warmup: float | None = None  # None: the schedule's own (0 for constant)
    weight_decay: float = COURSE.weight_decay
    label_smoothing: float = COURSE.label_smoothing
    momentum: float | None = None  # sgd only
    validation: str = "test"
    batch_size: int = DEFAULT_BATCH
    data_root: str | None = None  # None: the data set's own folder (datasets.canonical_root)

    def __post_init__(self) -> None:
        model = parse_model_name(self.model)[0]
        width = check_width(self.width)
        if not has_width(model) and width != 1.0:
            raise ValueError(f"{model} has no width multiplier: give width 1 for it, got {width:g}")
        if not isinstance(self.dataset, str) or not self.dataset:
            raise ValueError("dataset must be a non-empty name")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.data_root is not None and (not isinstance(self.data_root, str) or not self.data_root.strip()):
            raise ValueError(f"data_root must be a folder's path or None (the data set's own), got {self.data_root!r}")
        positive_int(self.batch_size, "batch size")
        for name, value in dict(model=model, width=width, resolution=check_resolution(self.resolution),
                                epochs=positive_int(self.epochs, "epochs"), subset=check_subset(self.subset),
                                augment=check_augment_name(self.augment),
                                lr=positive_float(self.lr, "learning rate"),
                                validation=check_validation(self.validation)).items():
            object.__setattr__(self, name, value)
        recipe = Recipe(**{f: getattr(self, f) for f in RECIPE_FIELDS})
        for name in RECIPE_FIELDS:
            object.__setattr__(self, name, getattr(recipe, name))

    @classmethod
    def from_record(cls, record: Mapping[str, Any], **changes: Any) -> Condition:
        """The condition a results record was trained at, with `changes`.

        The record needs every field of ``LEGACY_FIELDS``; a recipe or validation field it lacks (a record
        written before they were recorded) takes the course's value: Adam, constant, validated on the test split.
        """
        missing = [f for f in LEGACY_FIELDS if f not in record]
        if missing:
            raise ValueError(f"a result needs the fields {', '.join(LEGACY_FIELDS)}; missing {', '.join(missing)}")
        return cls(**{**{f: record[f] for f in KEY_FIELDS if f in record}, **changes})

    @property
    def recipe(self) -> Recipe:
        """The condition's training recipe (optimiser, learning rate, schedule, ...)."""
        return Recipe(**{f: getattr(self, f) for f in RECIPE_FIELDS})

    def _recipe_text(self) -> str:
        """"" for the course's recipe at the course's rate, " lr<rate>" for another rate, else the recipe."""
        if self.recipe == Recipe(lr=self.lr):
            return "" if self.lr == DEFAULT_LR else f" lr{self.lr:g}"
        return " " + self.recipe.describe()

    @property
    def key(self) -> tuple:
        """What makes two runs the same condition: its fields in ``KEY_FIELDS`` order."""
        return astuple(self)

    def label(self) -> str:
        """Short human-readable name, e.g. ``mobilenet_v2 w0.35 r96``."""
        extra = "" if (self.seed, self.augment) == (0, "course") else f" {self.augment} s{self.seed}"
        held = "" if self.validation == "test" else f" {self.validation}"
        return f"{self.model} w{self.width:g} r{self.resolution}{extra}{self._recipe_text()}{held}"

    def slug(self) -> str:
        """File-name-safe name of the condition (for its checkpoint): every field of its key.

        A batch size other than the course's 192 and a data root of its own are added to
        :meth:`legacy_slug`, the name checkpoints had before they were part of the key.
        """
        batch = "" if self.batch_size == DEFAULT_BATCH else f"_b{self.batch_size}"
        root = "" if self.data_root is None else "_d" + hashlib.sha256(self.data_root.encode()).hexdigest()[:8]
        return self.legacy_slug() + batch + root

    def legacy_slug(self) -> str:
        """The checkpoint name without the batch size and data root (what a checkpoint was named before)."""
        subset = (self.subset, self.subset) if isinstance(self.subset, int) else self.subset
        sub = "all" if subset is None else "-".join("all" if n is None else str(n) for n in subset)
        recipe = self._recipe_text().replace(" ", "_")
        held = "" if self.validation == "test" else f"_{self.validation}"
        return (f"{self.model}_w{self.width:g}_r{self.resolution}_e{self.epochs}_{self.dataset}_n{sub}"
                f"_s{self.seed}_{self.augment}{recipe}{held}")


KEY_FIELDS = tuple(f.name for f in fields(Condition))
# the fields every record has, also those written before the recipe and the validation split were recorded
LEGACY_FIELDS = KEY_FIELDS[:KEY_FIELDS.index("lr") + 1]


def condition_key(record: Mapping[str, Any]) -> tuple:
    """The key of the condition a results record was trained at (``Condition.from_record(record).key``)."""
    return Condition.from_record(record).key


def expand_grid(models: Sequence[str], widths: Sequence[float], resolutions: Sequence[int], epochs: int,
                dataset: str, subset: int | tuple[int, int] | None = None, seed: int = 0, augment: str = "course",
                lr: float = DEFAULT_LR, recipe: Recipe | None = None, validation: str = "test",
                batch_size: int = DEFAULT_BATCH, data_root: str | None = None) -> list[Condition]:
    """All conditions, model-major then width then resolution (so a model's initial weights are reused).

    `recipe` (its learning rate included) replaces the course's Adam at `lr`. Names are canonicalised and
    duplicates dropped; bad values raise ValueError.
    """
    if not models or not widths or not resolutions:
        raise ValueError("models, widths and resolutions must each name at least one value")
    how = {f: getattr(recipe, f) for f in RECIPE_FIELDS} if recipe is not None else {"lr": lr}
    return unique(Condition(m, w, r, epochs, dataset, subset, seed, augment, validation=validation,
                            batch_size=batch_size, data_root=data_root, **how)
                  for m in models for w in widths for r in resolutions)
