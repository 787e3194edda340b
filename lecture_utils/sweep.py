"""The MobileNet width x resolution experiment (and any zoo network) as a resumable, shared sweep.

Each condition (model, width, resolution, epochs, data, subset, seed, augmentation, learning rate) is
trained with the course's protocol (Adam, batch 192, CrossEntropyLoss) and, once finished, appended to
a JSON Lines file as one line. A rerun with the same ``--out`` skips what is done; the condition in
progress keeps a per-epoch checkpoint, so a kill loses at most one epoch. Several workers may share
one ``--out``: each claims a condition with an OS file lock before training it (see ``run_sweep``).

Command line::

    python -m lecture_utils.sweep --models mobilenet_v1,mobilenet_v2,c_mobilenet_v2 \\
        --widths 1.0,0.75,0.5,0.35 --resolutions 224,192,160,128,96 --epochs 10 \\
        --dataset animals10 --out runs/sweep.jsonl [--shard 1/4 | --shard slurm]
    python -m lecture_utils.sweep merge runs/a.jsonl runs/b.jsonl --out runs/all.jsonl
    python -m lecture_utils.sweep plan lesson09 --out runs/09_sweep_full.jsonl

Model names: ``mobilenet_v1``, ``mobilenet_v2``, ``c_mobilenet_v2``; the ablations ``mobilenet_v2+leaky``
(LeakyReLU after the residual add only) and ``mobilenet_v2+proj`` (projection shortcut only;
``+leaky+proj`` is ``c_mobilenet_v2``); every other ``create_model`` name at width 1 (``alexnet``,
``resnet18``, ...), and ``wide_resnetD_K`` for WRN-D-K.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import os
import re
import sys
import time
import warnings
from dataclasses import asdict, astuple, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from lecture_utils import LectureWarning
from lecture_utils._util import (atomic_write, check_writable_file, cpu_name, git_commit, positive_float,
                                  positive_int, resolve_device, seed_everything, versions)

# The three networks of the source experiment, in the order the lesson shows them.
MODELS = ("mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2")
WIDTH_MODELS = ("mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2")  # the ones with a width multiplier
# Ablation switches: "+name" after mobilenet_v2 turns on one of C_MobileNetV2's two changes.
SWITCHES = {"leaky": "leaky_after_add", "proj": "projection_shortcut"}
ABLATION_VARIANTS = ("mobilenet_v2", "mobilenet_v2+leaky", "mobilenet_v2+proj", "c_mobilenet_v2")
DEFAULT_WIDTHS = (1.0, 0.75, 0.5, 0.35)
DEFAULT_RESOLUTIONS = (224, 192, 160, 128, 96)
MIN_RESOLUTION = 1  # the MobileNets pad every stride-2 conv: any input keeps a 1x1 map (prepare checks the model)
FORMAT_VERSION = 2  # 2: augment is part of a condition (version 1 files trained with the course's)
KEY_FIELDS = ("model", "width", "resolution", "epochs", "dataset", "subset", "seed", "augment", "lr")
DEFAULT_LR = 1e-3  # the course's Adam learning rate; records without "lr" trained with it
# The names of lecture_utils.data.AUGMENTATIONS, spelled out: importing the data module loads torch, which
# reading and merging results files does not need (a test keeps the two lists equal).
AUGMENT_NAMES = ("course", "light", "none")


class PartialLineWarning(LectureWarning):
    """A results file held a line that was not a whole JSON object (an interrupted write)."""


class DuplicateRecordWarning(LectureWarning):
    """A results file held a condition more than once; only the first record of it is kept."""


# --------------------------------------------------------------------------- names and checks


def parse_model_name(name: str) -> tuple[str, str, dict[str, Any]]:
    """Split a sweep model name into (canonical name, create_model name, keyword arguments).

    ``"mobilenet_v2+leaky"`` -> ``("mobilenet_v2+leaky", "c_mobilenet_v2",
    {"leaky_after_add": True, "projection_shortcut": False})``; ``"wide_resnet16_4"`` ->
    ``("wide_resnet16_4", "wide_resnet", {"depth": 16, "widen_factor": 4})``.
    """
    from lecture_utils.models import list_models

    zoo = [m for m in list_models() if m not in MODELS and m != "wide_resnet"]
    allowed = ", ".join(MODELS + tuple(f"mobilenet_v2+{s}" for s in SWITCHES) + tuple(zoo)
                        + ("wide_resnetD_K (e.g. wide_resnet16_4)",))
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model name must be a non-empty string; allowed: {allowed}")
    base, *parts = name.strip().split("+")
    if base in (*MODELS, *zoo) and not parts:
        return base, base, {}
    wrn = re.fullmatch(r"wide_resnet(\d+)_(\d+)", base)
    if wrn and not parts:
        depth, k = int(wrn.group(1)), int(wrn.group(2))
        if (depth - 4) % 6 or depth < 10 or k < 1:
            raise ValueError(f"{name!r}: a wide ResNet needs depth 6n + 4 >= 10 (10, 16, 22, 28, 40) and width "
                             f"k >= 1; allowed: {allowed}")
        return base, "wide_resnet", {"depth": depth, "widen_factor": k}
    if base not in MODELS:
        raise ValueError(f"unknown model {name!r}; allowed: {allowed}")
    if base != "mobilenet_v2":
        raise ValueError(f"switches (+{'/+'.join(SWITCHES)}) only apply to mobilenet_v2, got {name!r}; "
                         f"allowed: {allowed}")
    if any(p not in SWITCHES for p in parts) or len(set(parts)) != len(parts):
        raise ValueError(f"bad switches in {name!r}: each of +{', +'.join(SWITCHES)} at most once; allowed: {allowed}")
    on = {SWITCHES[s]: (s in parts) for s in SWITCHES}
    if all(on.values()):
        return "c_mobilenet_v2", "c_mobilenet_v2", {}
    return "+".join(["mobilenet_v2"] + [s for s in SWITCHES if s in parts]), "c_mobilenet_v2", on


def _family(model: str) -> str:
    """Initial weights are shared within a family: every MobileNetV2 variant starts from mobilenet_v2's."""
    return "mobilenet_v2" if model.split("+")[0] in ("mobilenet_v2", "c_mobilenet_v2") else model


def _check_width(width: Any) -> float:
    with contextlib.suppress(TypeError, ValueError):
        width = float(width) if isinstance(width, str) else width  # from the command line
    return round(positive_float(width, "width multiplier"), 6)


def _check_resolution(resolution: Any) -> int:
    if isinstance(resolution, str) and resolution.strip().lstrip("+").isdigit():
        resolution = int(resolution)  # from the command line
    return positive_int(resolution, "resolution", MIN_RESOLUTION)


def _check_subset(subset: Any) -> int | tuple[int, int] | None:
    """None (all images), n images per class in both splits, or (train, val) per class (JSON's list as a tuple)."""
    if subset is None:
        return None
    if isinstance(subset, (list, tuple)):
        if len(subset) != 2:
            raise ValueError(f"subset must be n or (train, val) images per class, got {subset!r}")
        train, val = (positive_int(v, "subset (images per class)") for v in subset)
        return train if train == val else (train, val)
    return positive_int(subset, "subset (images per class)")


def _check_augment(augment: Any) -> str:
    """An augmentation name; results written before it was recorded (True/False) read as course/none."""
    if isinstance(augment, bool):
        return "course" if augment else "none"
    if augment not in AUGMENT_NAMES:
        raise ValueError(f"augment must be one of {', '.join(AUGMENT_NAMES)}, got {augment!r}")
    return augment


def _unique(items: Iterable, key: Callable[[Any], Any] | None = None) -> list:
    """`items` in order, each kept once (compared by ``key(item)`` when given)."""
    seen, out = set(), []
    for x in items:
        k = x if key is None else key(x)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


# --------------------------------------------------------------------------- conditions and plans


@dataclass(frozen=True)
class Condition:
    """One cell of the grid: a model at one width and resolution, trained for ``epochs``."""

    model: str
    width: float
    resolution: int
    epochs: int
    dataset: str
    subset: int | tuple[int, int] | None = None
    seed: int = 0
    augment: str = "course"
    lr: float = DEFAULT_LR

    @classmethod
    def from_record(cls, record: Mapping[str, Any], **changes: Any) -> Condition:
        """The condition a results record was trained at, with `changes`; records of older formats lack
        seed, augment (or hold True/False) and lr, which read as 0, course/none and ``DEFAULT_LR``."""
        fields = dict(model=str(record["model"]), width=round(float(record["width"]), 6),
                      resolution=int(record["resolution"]), epochs=int(record["epochs"]),
                      dataset=str(record["dataset"]), subset=_check_subset(record.get("subset")),
                      seed=int(record.get("seed", 0)), augment=_check_augment(record.get("augment", "course")),
                      lr=float(record.get("lr", DEFAULT_LR)))
        return cls(**{**fields, **changes})

    @property
    def key(self) -> tuple:
        """What makes two runs the same condition (see ``KEY_FIELDS``)."""
        return condition_key(asdict(self))

    def label(self) -> str:
        """Short human-readable name, e.g. ``mobilenet_v2 w0.35 r96``."""
        extra = "" if (self.seed, self.augment) == (0, "course") else f" {self.augment} s{self.seed}"
        lr = "" if self.lr == DEFAULT_LR else f" lr{self.lr:g}"
        return f"{self.model} w{self.width:g} r{self.resolution}{extra}{lr}"

    def slug(self) -> str:
        """File-name-safe name of the condition (for its checkpoint)."""
        subset = (self.subset, self.subset) if isinstance(self.subset, int) else self.subset
        sub = "all" if subset is None else "-".join(map(str, subset))
        lr = "" if self.lr == DEFAULT_LR else f"_lr{self.lr:g}"
        return (f"{self.model}_w{self.width:g}_r{self.resolution}_e{self.epochs}_{self.dataset}_n{sub}"
                f"_s{self.seed}_{self.augment}{lr}")


def expand_grid(models: Sequence[str], widths: Sequence[float], resolutions: Sequence[int], epochs: int,
                dataset: str, subset: int | None = None, seed: int = 0, augment: str = "course",
                lr: float = DEFAULT_LR) -> list[Condition]:
    """All conditions, model-major then width then resolution (so a model's initial weights are reused).

    Names are canonicalised and duplicates dropped; bad values raise ValueError.
    """
    names = _unique(parse_model_name(m)[0] for m in models)
    ws = _unique(_check_width(w) for w in widths)
    rs = _unique(_check_resolution(r) for r in resolutions)
    if not names or not ws or not rs:
        raise ValueError("models, widths and resolutions must each name at least one value")
    epochs, subset = positive_int(epochs, "epochs"), _check_subset(subset)
    if not isinstance(dataset, str) or not dataset:
        raise ValueError("dataset must be a non-empty name")
    augment, lr = _check_augment(augment), positive_float(lr, "learning rate")
    for m in names:
        if m.split("+")[0] not in WIDTH_MODELS and ws != [1.0]:
            raise ValueError(f"{m} has no width multiplier: give width 1 for it, got {ws}")
    return [Condition(m, w, r, epochs, dataset, subset, int(seed), augment, lr)
            for m in names for w in ws for r in rs]


def lesson09_plan(resolutions: Sequence[int], epochs: int, dataset: str, subset: int | tuple[int, int] | None = None,
                  seeds: Sequence[int] = (0, 1, 2)) -> dict[str, list[Condition]]:
    """Lesson 09's experiment: ``{"grid": ..., "ablation": ..., "augment": ...}`` conditions.

    grid: the 3 models x 4 widths x 5 `resolutions`, seed 0, light augmentation. ablation: the four
    MobileNetV2 variants at widths 1.0 and 0.35, the middle and the smallest resolution, every seed.
    augment: MobileNetV2 and C_MobileNetV2 at width 0.35 and the smallest resolution, every seed, with
    each of the course's, the light and no augmentation. The three lists share conditions (light ones).
    """
    if len(resolutions) < 3:
        raise ValueError(f"lesson09_plan needs at least 3 resolutions, got {list(resolutions)}")
    pair = (sorted(resolutions)[len(resolutions) // 2], min(resolutions))
    args = dict(epochs=epochs, dataset=dataset, subset=subset)
    return {
        "grid": expand_grid(MODELS, DEFAULT_WIDTHS, resolutions, seed=0, augment="light", **args),
        "ablation": [c for s in seeds
                     for c in expand_grid(ABLATION_VARIANTS, (1.0, 0.35), pair, seed=s, augment="light", **args)],
        "augment": [c for a in AUGMENT_NAMES for s in seeds
                    for c in expand_grid(("mobilenet_v2", "c_mobilenet_v2"), (0.35,), pair[1:], seed=s, augment=a,
                                         **args)],
    }


def lesson09_profile_plan(profile: str) -> dict[str, list[Condition]]:
    """``lesson09_plan`` of `profile`: ``reference`` (the stored CPU run) or ``full`` (the full profile's settings)."""
    from lecture_utils.settings import REFERENCE_09_RESOLUTIONS, lesson_settings

    if profile == "reference":
        return lesson09_plan(REFERENCE_09_RESOLUTIONS, 10, "fashion_mnist", subset=1000)
    if profile == "full":
        cfg = lesson_settings("09", "full")
        return lesson09_plan(cfg.resolutions, cfg.epochs, cfg.dataset)
    raise ValueError(f"unknown plan profile {profile!r}; allowed: reference, full")


def lesson09_conditions(profile: str) -> list[Condition]:
    """Every condition of lesson 09 in `profile` (reference or full), each once."""
    plan = lesson09_profile_plan(profile)
    return _unique((c for part in plan.values() for c in part), key=lambda c: c.key)


# Lessons 01-08's reference runs (data/reference/lessons.jsonl): the network each lesson trains, at the
# lesson's quick resolution, on Fashion-MNIST (all 10,000 test images for validation), batch 192.
# Measured cost of one training step of 64 images on one core: VGG16 3.7 s, AlexNet (64 px) 0.90 s,
# ResNeXt-50 0.78 s, WRN-16-2 0.47 s, GoogLeNet / ResNet-18 0.23 s, MobileNet v1 / v2 at width 0.5
# 0.05 / 0.07 s. Each lesson's first entry is its reference; the others are the measurements beside
# it: the light augmentation (flips, jitter, small affine) left every network below the linear
# baseline in these few epochs (training accuracy under validation accuracy: the augmented images
# are the harder task), so the references train without augmentation; VGG16 without batch norm is
# the paper's problem, measured on the same data as VGG16_bn. Heaviest first, so that two workers
# sharing the file finish together.
#   lesson: [(model, width, train images per class, epochs, Adam learning rate, augmentation), ...]
LESSON_REFERENCE = {
    "02": [("vgg16_bn", 1.0, 500, 3, 1e-4, "light"), ("vgg16", 1.0, 500, 3, 1e-4, "light")],  # 1e-3: chance
    "01": [("alexnet", 1.0, 3000, 5, 1e-4, "none"), ("alexnet", 1.0, 2000, 4, 1e-4, "light")],  # no BN: 1e-4
    "05": [("resnext50_32x4d", 1.0, 2000, 6, 1e-3, "none"), ("resnext50_32x4d", 1.0, 2000, 4, 1e-3, "none"),
           ("resnext50_32x4d", 1.0, 2000, 4, 1e-3, "light")],  # 4 epochs: 0.847, still rising: 6
    "06": [("wide_resnet16_2", 1.0, 2000, 4, 1e-3, "none"), ("wide_resnet16_2", 1.0, 2000, 4, 1e-3, "light")],
    "08": [("mobilenet_v2", 0.5, 6000, 8, 1e-3, "none"), ("mobilenet_v2", 0.5, 6000, 8, 1e-3, "light")],
    "03": [("googlenet", 1.0, 2000, 5, 1e-3, "none"), ("googlenet", 1.0, 2000, 5, 1e-3, "light")],
    "04": [("resnet18", 1.0, 2000, 5, 1e-3, "none"), ("resnet18", 1.0, 2000, 5, 1e-3, "light")],
    "07": [("mobilenet_v1", 0.5, 6000, 8, 1e-3, "none"), ("mobilenet_v1", 0.5, 6000, 8, 1e-3, "light")],
}


def lessons_reference_plan() -> dict[str, list[Condition]]:
    """The reference conditions of lessons 01-08, ``{"01": [reference, other...], ...}`` (see ``LESSON_REFERENCE``)."""
    from lecture_utils.settings import lesson_settings

    plan = {}
    for lesson, runs in LESSON_REFERENCE.items():
        resolution = lesson_settings(lesson, "quick").resolution
        plan[lesson] = [c for model, width, n, epochs, lr, augment in runs
                        for c in expand_grid([model], [width], [resolution], epochs, "fashion_mnist",
                                             subset=(n, 1000), seed=0, augment=augment, lr=lr)]
    return plan


def run_plan(out: str | os.PathLike, conditions: Sequence[Condition], progress: bool = True,
             **runner_kwargs: Any) -> list[dict]:
    """``run_sweep`` over conditions that differ in seed, augmentation, data set or subset (one runner each)."""
    groups: dict[tuple, list[Condition]] = {}
    for cond in _unique(conditions, key=lambda c: c.key):
        groups.setdefault((cond.dataset, cond.subset, cond.seed, cond.augment), []).append(cond)
    for group in groups.values():
        run_sweep(out, group, progress=progress, **runner_kwargs)
    wanted = {c.key for c in conditions}
    return [r for r in load_results(out) if condition_key(r) in wanted]


# --------------------------------------------------------------------------- shards


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``"i/N"`` (1-based: ``1/4`` .. ``4/4``) into ``(i, N)``; ``"slurm"`` reads it from a SLURM array job."""
    if str(text).strip().lower() == "slurm":
        return slurm_shard()
    try:
        i, n = (int(p) for p in str(text).split("/"))
    except ValueError:
        raise ValueError(f"shard must look like i/N with 1 <= i <= N (e.g. 1/4), or slurm, got {text!r}") from None
    if n < 1 or not 1 <= i <= n:
        hint = " (shards are numbered from 1)" if i == 0 else ""
        raise ValueError(f"shard must be i/N with 1 <= i <= N, got {text!r}{hint}")
    return i, n


def slurm_shard(environ: Mapping[str, str] | None = None) -> tuple[int, int]:
    """This task's ``(i, N)`` in a SLURM array job (``sbatch --array=0-3`` gives 1/4 .. 4/4).

    Read from SLURM_ARRAY_TASK_ID, _MIN, _MAX and, where set, _STEP and _COUNT; the array's ids
    must be evenly spaced (``0-3``, ``1-8``, ``0-15:4``), so that every task maps to one shard.
    """
    env = os.environ if environ is None else environ
    names = [f"SLURM_ARRAY_TASK_{k}" for k in ("ID", "MIN", "MAX", "STEP", "COUNT")]
    missing = [n for n in names[:3] if not env.get(n, "").strip()]
    if missing:
        raise ValueError(
            f"--shard slurm needs the variables of a SLURM array job ({', '.join(missing)} not set): "
            "submit with sbatch --array=0-N (e.g. --array=0-3 for 4 shards), or give --shard i/N")
    try:
        task, low, high, step, count = (int(env.get(n) or 0) for n in names)  # 0: step or count not set
    except ValueError:
        shown = {n: env.get(n) for n in names}
        raise ValueError(f"--shard slurm: SLURM_ARRAY_TASK_* must be integers, got {shown}") from None
    if step < 1:  # no step given: the ids are evenly spaced from min to max
        step = (high - low) // (count - 1) if count > 1 and (high - low) % (count - 1) == 0 else 1
    if count < 1:
        count = (high - low) // step + 1
    if not (high >= low and high == low + (count - 1) * step and (task - low) % step == 0 and low <= task <= high):
        raise ValueError(
            f"--shard slurm needs evenly spaced array ids (e.g. --array=0-3, 1-8 or 0-15:4); this task has "
            f"id {task} of {count} between {low} and {high} (step {step}); use --shard i/N instead")
    return (task - low) // step + 1, count


def shard_grid(conditions: Sequence[Condition], index: int, count: int) -> list[Condition]:
    """Shard ``index`` of ``count`` (1-based): every count-th condition, starting at index - 1.

    Round robin mixes cheap and expensive resolutions, so the shards take about the same time;
    together the shards hold every condition exactly once.
    """
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard must satisfy 1 <= index <= count, got {index}/{count}")
    return list(conditions[index - 1 :: count])


# --------------------------------------------------------------------------- results files


def condition_key(record: dict) -> tuple:
    """The identity of a result: model, width, resolution, epochs, dataset, subset, seed, augment, lr."""
    try:
        return astuple(Condition.from_record(record))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a result needs the fields {', '.join(KEY_FIELDS)}: {exc}") from None


def append_record(path: str | os.PathLike, record: dict) -> None:
    """Append ``record`` to a JSON Lines file as one whole line (one write on an O_APPEND fd, then fsync)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, allow_nan=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            # An interrupted writer may have left a partial last line: start ours on a fresh one.
            with open(path, "rb") as f:
                f.seek(size - 1)
                if f.read(1) != b"\n":
                    line = b"\n" + line
        view = memoryview(line)
        while view:  # a regular file takes the whole line in one write; loop only for safety
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _record_key(record: dict) -> Any:
    """``condition_key`` of a record; a record without the key fields is its own key (so kept)."""
    try:
        return condition_key(record)
    except ValueError:
        return id(record)


def load_results(path: str | os.PathLike) -> list[dict]:
    """Read a JSON Lines results file; a missing file is empty; broken lines are skipped with a warning.

    A condition written more than once is read once (its first record), with a ``DuplicateRecordWarning``.
    """
    path = Path(path)
    if not path.exists():
        return []
    if path.is_dir():
        raise ValueError(f"the results file {path} is a directory; give a file path, e.g. {path / 'results.jsonl'}")
    lines = path.read_bytes().split(b"\n")
    records = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            rec = None
        if not isinstance(rec, dict):
            # the last line has no newline after it: its writer may have been stopped
            what = "a partial last line" if number == len(lines) else f"unreadable line {number}"
            warnings.warn(f"{path.name}: ignoring {what} ({len(raw)} bytes); an interrupted run leaves one, "
                          "and a rerun redoes that condition", PartialLineWarning, stacklevel=2)
            continue
        records.append(rec)
    kept = _unique(records, key=_record_key)
    if len(kept) < len(records):
        warnings.warn(f"{path.name}: dropped {len(records) - len(kept)} duplicate record(s) of conditions written "
                      "more than once (kept the first record of each); rewrite the file with "
                      "`python -m lecture_utils.sweep merge`", DuplicateRecordWarning, stacklevel=2)
    return kept


def merge_results(paths: Iterable[str | os.PathLike]) -> list[dict]:
    """Results of several files in one list, each condition once (the first file that has it wins)."""
    merged: dict[tuple, dict] = {}
    for p in paths:
        if not Path(p).exists():
            raise ValueError(f"results file not found: {p}")
        for rec in load_results(p):
            merged.setdefault(condition_key(rec), rec)
    return list(merged.values())


def write_results(records: Iterable[dict], path: str | os.PathLike) -> None:
    """Write records as a JSON Lines file, replacing it atomically (temp file, fsync, rename)."""

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(rec, sort_keys=True) + "\n" for rec in records)
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)


def check_out_writable(out: str | os.PathLike) -> Path:
    """Check, before any training, that ``out`` and its checkpoint folder ``<out>.ckpt/`` can be written.

    Raises ValueError naming what is wrong (a directory, a read-only folder, ...).
    """
    out = check_writable_file(out, "results file", append=True)
    ckpt_dir = out.with_name(out.name + ".ckpt")
    if ckpt_dir.exists() and not ckpt_dir.is_dir():
        raise ValueError(f"{ckpt_dir} (where the sweep keeps its checkpoints) is a file; remove it "
                         "or choose another --out")
    return out


# --------------------------------------------------------------------------- training


def init_seed(model: str, width: float, seed: int = 0) -> int:
    """Seed of the initial weights of (model family, width): a stable hash, the same on every machine."""
    text = f"{_family(parse_model_name(model)[0])}|{_check_width(width):g}|{int(seed)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


Runner = Callable[[Condition, Path], dict]


class TorchRunner:
    """Trains one condition with the course's protocol; ``run_sweep`` calls it once per condition.

    Loaders are built once per resolution; initial weights once per (model, width), seeded by
    ``init_seed`` so that every resolution, rerun and shard starts from the same weights. The
    MobileNetV2 variants start from mobilenet_v2's weights wherever their tensors agree.
    """

    def __init__(self, dataset: str, data_root: str | None = None, batch_size: int = 192, device: str | None = None,
                 subset: int | tuple[int, int] | None = None, fast: bool = True, num_workers: int | None = None,
                 seed: int = 0, progress: bool = False, cache_dir: str | None = None, threads: int | None = None,
                 augment: str = "course", command: str | None = None) -> None:
        self.dataset, self.data_root, self.device, self.fast = dataset, data_root, device, fast
        self.subset, self.seed, self.augment = _check_subset(subset), int(seed), _check_augment(augment)
        self.batch_size = positive_int(batch_size, "batch size")
        self.num_workers, self.progress, self.cache_dir, self.command = num_workers, progress, cache_dir, command
        # CPU threads for training: 1 avoids oversubscription when several runs share few cores
        self.threads = None if threads is None else positive_int(threads, "threads")
        # the code that trains is the code imported now: read its commit once, not when a condition ends
        self.commit = git_commit()
        self.num_classes: int | None = None
        self._loaders: dict[str, dict[str, Any]] = {"train": {}, "val": {}}
        self._init: dict[tuple[str, float], dict] = {}

    def prepare(self, conditions: Sequence[Condition]) -> None:
        """Check the data set is there and build the loaders the conditions need (once per resolution)."""
        from lecture_utils import data, datasets

        self.device = resolve_device(self.device)
        try:
            train = datasets.get_dataset(self.dataset, "train", root=self.data_root)
        except (FileNotFoundError, RuntimeError, OSError) as exc:
            where = f"--data-root {self.data_root}" if self.data_root else "default folder"
            text = f"data set {self.dataset!r} is not there ({where}): {exc}"
            if "layout" not in text:
                text += ("; expected an ImageFolder layout <root>/train/<class>/*.png and <root>/val/<class>/*.png "
                         "(see data/README.md)")
            raise ValueError(text) from None
        self.num_classes = len(getattr(train, "classes", None) or {int(y) for y in getattr(train, "targets", [])})
        if not self.num_classes:
            raise ValueError(f"data set {self.dataset!r} has no classes")
        need = sorted({c.resolution for c in conditions if f"R{c.resolution}" not in self._loaders["train"]},
                      reverse=True)
        if need:
            workers = self.num_workers
            if workers is None:  # DataLoader processes for the plain path on a GPU; else one decode thread per core
                workers = min(4, os.cpu_count() or 1) if self.device.type == "cuda" and not self.fast else 0
            loaders = data.make_loaders(self.dataset, need, batch_size=self.batch_size, augment=self.augment,
                                        root=self.data_root, subset=self.subset, seed=self.seed, num_workers=workers,
                                        cached=self.fast, device=self.device, cache_dir=self.cache_dir)
            for split in ("train", "val"):
                self._loaders[split].update(loaders[split])
        for model, resolution in _unique((c.model, c.resolution) for c in conditions):
            self._check_fits(model, resolution)

    def _check_fits(self, model: str, resolution: int) -> None:
        """Fail before any training if `model` gives no output at `resolution` px."""
        import torch

        net = self._build(model, 1.0).eval()
        try:
            with torch.no_grad():
                net(torch.zeros(1, 3, resolution, resolution))
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{model} gives no output at {resolution} px ({str(exc).splitlines()[0]}); "
                             "choose a larger resolution") from None

    def _build(self, model: str, width: float):
        from lecture_utils.models import create_model

        _, factory, kwargs = parse_model_name(model)
        if factory in WIDTH_MODELS:
            kwargs = {**kwargs, "width_multiplier": width}
        return create_model(factory, num_classes=self.num_classes, **kwargs)

    def initial_state(self, model: str, width: float) -> dict:
        """The initial state_dict of (model, width): seeded, cached, identical across resolutions."""
        import torch

        model = parse_model_name(model)[0]
        key = (model, width)
        if key not in self._init:
            torch.manual_seed(init_seed(model, width, self.seed))
            state = copy.deepcopy(self._build(model, width).state_dict())
            base = _family(model)
            if base != model:  # start the variant from the plain network's weights where they agree
                for name, tensor in self.initial_state(base, width).items():
                    if name in state and state[name].shape == tensor.shape:
                        state[name] = tensor.clone()
            self._init[key] = state
        return self._init[key]

    def __call__(self, cond: Condition, checkpoint: Path) -> dict:
        import torch

        if self.threads is None:
            return self._run(cond, checkpoint)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._run(cond, checkpoint)
        finally:
            torch.set_num_threads(before)

    def _run(self, cond: Condition, checkpoint: Path) -> dict:
        import torch
        from torch import nn

        from lecture_utils.profile import conv_linear_macs, count_params, ptflops_macs
        from lecture_utils.trainer import ModelTrainer

        mine = (self.dataset, self.subset, self.seed, self.augment)
        theirs = (cond.dataset, cond.subset, cond.seed, cond.augment)
        if theirs != mine:
            raise ValueError(f"this runner serves dataset, subset, seed, augment = {mine}; "
                             f"got a condition with {theirs}")
        if self.num_classes is None or f"R{cond.resolution}" not in self._loaders["train"]:
            self.prepare([cond])
        net = self._build(cond.model, cond.width)
        net.load_state_dict(self.initial_state(cond.model, cond.width))
        params = count_params(net)
        macs = conv_linear_macs(net, cond.resolution)  # conv + FC multiply-adds: what the papers' tables count
        macs_ptflops = ptflops_macs(net, cond.resolution, backend="pytorch")  # + BN, activations, biases
        seed_everything(cond.seed)
        # the trainer sets each loader's epoch, so every condition (in any order, on any shard, after any
        # resume) sees the data order and augmentation draws of its own epochs
        train_loader, val_loader = (self._loaders[split][f"R{cond.resolution}"] for split in ("train", "val"))
        net = net.to(self.device)
        # GoogLeNet trains with its two auxiliary classifiers (loss = main + 0.3 x each), as in lesson 03;
        # epoch_step=epochs: the trainer prints the first and the last epoch of each condition
        trainer = ModelTrainer(epoch_step=cond.epochs, device=self.device,
                               aux=parse_model_name(cond.model)[1] == "googlenet")
        history = trainer.fit(net, train_loader, val_loader, nn.CrossEntropyLoss(),
                              torch.optim.Adam(net.parameters(), lr=cond.lr), cond.epochs,
                              checkpoint=str(checkpoint), live_plot=False, progress=self.progress)
        val_acc_augmented = None
        if hasattr(val_loader, "with_augment") and self.augment != "none":
            # the validation images augmented as in training: what the training accuracy is measured on
            _, val_acc_augmented = trainer.model_evaluate(
                net, val_loader.with_augment(self.augment, seed=self.seed + 1), nn.CrossEntropyLoss(), cond.epochs)
        return {
            "params": int(params), "macs": int(macs), "macs_ptflops": int(macs_ptflops),
            **{k: [float(v) for v in history[k]] for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
            "num_classes": self.num_classes, "init_seed": init_seed(cond.model, cond.width, self.seed),
            "train_images": _dataset_size(train_loader), "val_images": _dataset_size(val_loader),
            "batch_size": self.batch_size, "optimizer": "Adam", "loss": "CrossEntropyLoss",
            "val_acc_augmented": None if val_acc_augmented is None else float(val_acc_augmented),
            # seconds of each training phase run by this process (an epoch resumed from a checkpoint has none)
            "train_seconds": [round(t, 3) for t in trainer.train_seconds], "amp_bf16": bool(trainer.amp),
            "fast_data": self.fast, "device": str(self.device), "cpu": cpu_name(),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "commit": self.commit, "command": self.command,
        }


def _dataset_size(loader: Any) -> int | None:
    try:
        return len(loader.dataset)
    except (AttributeError, TypeError):
        return None


# --------------------------------------------------------------------------- workers sharing one results file


APPEND_LOCK = "append.lock"


def _remove_finished_checkpoints(ckpt_dir: Path, conditions: Sequence[Condition], done: set) -> None:
    """Delete what a kill between "line written" and "checkpoint deleted" may have left behind,
    and the claim files of finished conditions (a worker that claims one of those finds it done)."""
    if not ckpt_dir.is_dir():
        return
    for cond in conditions:
        if cond.key in done:
            for leftover in [*ckpt_dir.glob(f"{cond.slug()}.pt"), *ckpt_dir.glob(f".{cond.slug()}.pt.*.tmp")]:
                leftover.unlink(missing_ok=True)
            _claim_path(ckpt_dir, cond).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # another worker may have put a file there meanwhile
        left = [p.name for p in ckpt_dir.iterdir()]
        if left == [APPEND_LOCK]:  # no claim left, so no worker is about to append
            (ckpt_dir / APPEND_LOCK).unlink()
            left = []
        if not left:
            ckpt_dir.rmdir()


def _claim_path(ckpt_dir: Path, cond: Condition) -> Path:
    return ckpt_dir / f"{cond.slug()}.lock"


def _claim(ckpt_dir: Path, cond: Condition) -> Any:
    """Take the condition's lock without waiting: the held ``filelock.FileLock``, or None if another worker holds it.

    An OS lock (flock): the kernel releases it when its holder dies, so a dead worker's claim expires by itself.
    """
    from filelock import FileLock, Timeout

    for _ in range(3):  # another worker may remove the empty folder between our mkdir and open
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(_claim_path(ckpt_dir, cond)), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return None
        except FileNotFoundError:
            continue
        return lock
    raise OSError(f"cannot create the claim file {_claim_path(ckpt_dir, cond)}")


def _is_done(out: Path, cond: Condition) -> bool:
    with warnings.catch_warnings():  # the first read of the file has already reported its broken lines
        warnings.simplefilter("ignore")
        return any(condition_key(r) == cond.key for r in load_results(out))


def run_sweep(out: str | os.PathLike, conditions: Sequence[Condition], runner: Runner | None = None,
              shard: tuple[int, int] | str | None = None, progress: bool = True, **runner_kwargs: Any) -> list[dict]:
    """Run every condition not yet in ``out`` (after sharding), appending one line per finished condition.

    ``runner(condition, checkpoint_path) -> dict`` trains one condition (default: ``TorchRunner``
    built from ``runner_kwargs``). Returns the records in ``out`` that belong to ``conditions``.
    Workers sharing ``out`` each claim a condition (a lock file in ``<out>.ckpt/``) before training it
    and skip those another worker holds; a dead worker's claim expires and a later worker resumes it.
    """
    from filelock import FileLock
    from tqdm.auto import tqdm
    from tqdm.contrib import DummyTqdmFile

    out = check_out_writable(out)
    if isinstance(shard, str):
        shard = parse_shard(shard)
    # each condition once, even where the list names it twice (before sharding, so no two shards share one)
    unique = _unique(conditions, key=lambda c: c.key)
    todo_grid = shard_grid(unique, *shard) if shard else unique
    done = {condition_key(r) for r in load_results(out)}
    todo = [c for c in todo_grid if c.key not in done]
    ckpt_dir = out.with_name(out.name + ".ckpt")
    if runner is None:
        for name, default in (("seed", 0), ("subset", None), ("dataset", "sample"), ("augment", "course")):
            runner_kwargs.setdefault(name, getattr(conditions[0], name) if conditions else default)
        runner = TorchRunner(**runner_kwargs)
        if todo:
            runner.prepare(todo)
    elif runner_kwargs:
        raise ValueError(f"runner options {sorted(runner_kwargs)} only apply to the default runner")
    bar = tqdm(total=len(todo_grid), initial=len(todo_grid) - len(todo), desc="sweep", unit="cond",
               disable=not progress, dynamic_ncols=True)
    pending = todo
    try:
        while pending:
            held_elsewhere = []
            for cond in pending:
                claim = _claim(ckpt_dir, cond)
                if claim is None:  # another worker is training it
                    held_elsewhere.append(cond)
                    continue
                try:
                    if _is_done(out, cond):  # another worker finished it since we read the file
                        bar.update(1)
                        continue
                    bar.set_postfix_str(cond.label())
                    checkpoint = ckpt_dir / f"{cond.slug()}.pt"
                    started = time.time()
                    # with a progress bar, the trainer's prints go above it instead of through it
                    with contextlib.redirect_stdout(DummyTqdmFile(sys.stdout) if progress else sys.stdout):
                        result = runner(cond, checkpoint)
                    record = {**result, **asdict(cond), "wall_time_s": round(time.time() - started, 3),
                              "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "versions": versions(), "format": FORMAT_VERSION}
                    # a lock shared by the workers: on NFS, O_APPEND writes of two machines can overwrite each other
                    with FileLock(str(ckpt_dir / APPEND_LOCK), timeout=120):
                        append_record(out, record)
                    checkpoint.unlink(missing_ok=True)
                    if progress and record.get("val_acc"):
                        bar.write(f"{cond.label()}: val acc {record['val_acc'][-1]:.3f} "
                                  f"({record['wall_time_s']:.1f} s)")
                    bar.update(1)
                finally:
                    claim.release()
            if len(held_elsewhere) == len(pending):
                break  # every one left is being trained by a live worker
            pending = held_elsewhere  # try those once more: a holder that died meanwhile has released its claim
    finally:
        bar.close()
    if pending:
        print(f"{len(pending)} condition(s) left to the workers training them now: "
              + ", ".join(c.label() for c in pending))
    _remove_finished_checkpoints(ckpt_dir, todo_grid, {condition_key(r) for r in load_results(out)})
    wanted = {c.key for c in conditions}
    return [r for r in load_results(out) if condition_key(r) in wanted]


# --------------------------------------------------------------------------- command line


def _csv(kind: Callable[[str], Any]) -> Callable[[str], list]:
    """An argparse type for a comma list; ArgumentTypeError, so that argparse shows the check's message."""

    def parse(text: str) -> list:
        try:
            items = [kind(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        if not items:
            raise argparse.ArgumentTypeError("give at least one value (comma-separated)")
        return items

    return parse


def _subset_from_text(text: str) -> int | tuple[int, int]:
    try:
        return _check_subset([int(t) for t in text.split(",")] if "," in text else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"subset must be N or TRAIN,VAL images per class (integers >= 1), got {text!r}") from None


def _add_shared_options(p: argparse.ArgumentParser, dry_run_help: str) -> argparse.ArgumentParser:
    """The options that running a grid and running a plan share."""
    p.add_argument("--out", required=True, help="results file (JSON Lines); rerun with the same file to resume")
    p.add_argument("--data-root", default=None, help="folder of the data set (default: the data set's own)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for training (default: torch's; 1 when several runs share a few cores)")
    p.add_argument("--dry-run", action="store_true", help=dry_run_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m lecture_utils.sweep",
        description="Train the MobileNet width x resolution grid; finished conditions go to --out "
        "(JSON Lines) and a rerun with the same --out resumes. "
        "Merge files with: python -m lecture_utils.sweep merge A.jsonl B.jsonl --out ALL.jsonl")
    p.add_argument("--models", type=_csv(lambda text: parse_model_name(text)[0]), default=list(MODELS),
                   help="comma list of " + ", ".join(MODELS) + ", or mobilenet_v2 with ablation switches "
                   "+leaky (LeakyReLU after the add) and/or +proj (projection shortcut), e.g. mobilenet_v2+leaky "
                   "(default: " + ",".join(MODELS) + ")")
    p.add_argument("--widths", type=_csv(_check_width), default=list(DEFAULT_WIDTHS),
                   help="comma list of width multipliers > 0 (default: 1.0,0.75,0.5,0.35)")
    p.add_argument("--resolutions", type=_csv(_check_resolution), default=list(DEFAULT_RESOLUTIONS),
                   help=f"comma list of input sizes in pixels, integers >= {MIN_RESOLUTION} "
                   "(default: 224,192,160,128,96)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per condition (default: %(default)s)")
    p.add_argument("--dataset", default="animals10",
                   help="sample, fashion_mnist, cifar10 or animals10 (default: %(default)s)")
    p.add_argument("--shard", default=None,
                   help="run shard i of N (1-based, e.g. 2/4): every N-th condition of the grid; "
                   "'slurm' takes i/N from a SLURM array job (sbatch --array=0-3 gives 4 shards). "
                   "Not needed for several workers on one --out with working file locks")
    p.add_argument("--batch-size", type=int, default=192, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help="Adam learning rate (default: %(default)s)")
    p.add_argument("--augment", choices=AUGMENT_NAMES, default="course",
                   help="training augmentation: course (the course's: turned 30-70 degrees, shrunk), light "
                   "(flips, mild jitter, small affine) or none (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of data order and initial weights (default: 0)")
    p.add_argument("--subset", type=_subset_from_text, default=None,
                   help="use N images per class of each split, or TRAIN,VAL per class (default: all)")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers for --no-fast")
    p.add_argument("--no-fast", action="store_true",
                   help="use the plain DataLoader path instead of the device-resident cache")
    p.add_argument("--cache-dir", default=None, help="keep the decoded images here between runs (fast path only)")
    return _add_shared_options(p, "list this shard's conditions and which are done")


def _merge_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lecture_utils.sweep merge",
        description="Merge results files (e.g. one per shard) into one; each condition kept once.")
    parser.add_argument("inputs", nargs="+", help="results files (JSON Lines)")
    parser.add_argument("--out", required=True, help="merged results file (replaced atomically)")
    args = parser.parse_args(argv)
    try:
        records = merge_results(args.inputs)
        check_out_writable(args.out)
    except ValueError as exc:
        parser.error(str(exc))
    write_results(records, args.out)
    print(f"merged {len(records)} conditions from {len(args.inputs)} file(s) into {args.out}")
    return 0


def _plan_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="python -m lecture_utils.sweep plan",
        description="Run every condition of lesson 09 (grid, ablation, augmentation comparison) into one "
        "file, resumably: the file lesson 09 reads (runs/09_sweep_full.jsonl for the full profile); or, "
        "with 'lessons --profile reference', the reference runs of lessons 01-08.")
    p.add_argument("lesson", choices=["lesson09", "lessons"])
    p.add_argument("--profile", choices=["full", "reference"], default="full",
                   help="full: the course's resolutions on the full data set (GPU); reference: the stored "
                   "CPU run of data/reference/ (default: %(default)s)")
    args = _add_shared_options(p, "list the conditions and which are done").parse_args(argv)
    try:
        if args.lesson == "lessons":
            if args.profile != "reference":
                raise ValueError("lessons 01-08 have a reference plan only (--profile reference); their full "
                                 "profile is each notebook's own training cell")
            conditions = [c for part in lessons_reference_plan().values() for c in part]
        else:
            conditions = lesson09_conditions(args.profile)
        if args.dry_run:
            done = {condition_key(r) for r in load_results(args.out)}
            print(f"{sum(c.key in done for c in conditions)} of {len(conditions)} conditions done in {args.out}")
            return 0
        records = run_plan(args.out, conditions, progress=not args.no_progress, data_root=args.data_root,
                           device=args.device, threads=args.threads,
                           command=" ".join(["python -m lecture_utils.sweep plan", *argv]))
    except ValueError as exc:
        p.error(str(exc))
    print(f"{len(records)} of {len(conditions)} conditions of {args.lesson} ({args.profile}) in {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``[run] --models ... --out FILE``, ``merge FILES --out FILE`` or ``plan lesson09``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["merge"]:
        return _merge_main(argv[1:])
    if argv[:1] == ["plan"]:
        return _plan_main(argv[1:])
    if argv[:1] == ["run"]:
        argv = argv[1:]
    parser = _run_parser()
    args = parser.parse_args(argv)
    try:
        grid = expand_grid(args.models, args.widths, args.resolutions, args.epochs, args.dataset,
                           subset=args.subset, seed=args.seed, augment=args.augment, lr=args.lr)
        shard = parse_shard(args.shard) if args.shard else None
        if args.dry_run:
            mine = shard_grid(grid, *shard) if shard else grid
            done = {condition_key(r) for r in load_results(args.out)}
            for c in mine:
                print(f"{'done' if c.key in done else 'todo'}  {c.label()}")
            print(f"{sum(c.key in done for c in mine)} of {len(mine)} done")
            return 0
        records = run_sweep(args.out, grid, shard=shard, progress=not args.no_progress, data_root=args.data_root,
                            batch_size=args.batch_size, device=args.device, fast=not args.no_fast,
                            num_workers=args.num_workers, cache_dir=args.cache_dir, threads=args.threads,
                            augment=args.augment, command=" ".join(["python -m lecture_utils.sweep", *argv]))
    except ValueError as exc:
        parser.error(str(exc))
    print(f"{len(records)} conditions of this grid in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
