"""Training one sweep condition with the course's protocol and measuring what its record holds.

:class:`TorchRunner` is ``run_sweep``'s default runner: the condition's recipe (the course's: Adam at
a constant 1e-3, CrossEntropyLoss), the course's batch of 192, :func:`lecture_utils.trainer.train` with a
checkpoint. Loaders are built once per resolution; initial weights once per (model, width),
seeded by :func:`init_seed`. A condition validated on the held-out split (``validation="heldout"``)
is evaluated once more at the end, on the official test split (``test_loss``, ``test_acc``).
"""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from lecture_utils import data, datasets
from lecture_utils._util import (check_writable_file, cpu_name, git_commit, positive_int, resolve_device,
                                 seed_everything)
from lecture_utils.augment import check_augment_name
from lecture_utils.holdout import check_validation
from lecture_utils.recipe import RECIPE_FIELDS
from lecture_utils.experiment.conditions import (Condition, build_model, check_subset, check_width, parse_model_name,
                                      unique)
from lecture_utils.profile import conv_linear_macs, count_params
from lecture_utils.trainer import evaluate, train

__all__ = ["Runner", "TorchRunner", "init_seed"]


def _family(model: str) -> str:
    """Initial weights are shared within a family: every MobileNetV2 variant starts from mobilenet_v2's."""
    return "mobilenet_v2" if model.split("+")[0] in ("mobilenet_v2", "c_mobilenet_v2") else model


def init_seed(model: str, width: float, seed: int = 0) -> int:
    """Seed of the initial weights of (model family, width): a stable hash, the same on every machine."""
    text = f"{_family(parse_model_name(model)[0])}|{check_width(width):g}|{int(seed)}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") & 0x7FFFFFFF


Runner = Callable[[Condition, Path], dict]


class TorchRunner:
    """Trains one condition with the course's protocol; ``run_sweep`` calls it once per condition.

    Loaders are built once per resolution; initial weights once per (model, width), seeded by
    ``init_seed`` so that every resolution, rerun and shard starts from the same weights. The
    MobileNetV2 variants start from mobilenet_v2's weights wherever their tensors agree.
    """

    def __init__(self, dataset: str, data_root: str | None = None, batch_size: int = 192, device: str | None = None,
                 subset: int | tuple[int, int] | None = None, cached: bool = True, num_workers: int | None = None,
                 seed: int = 0, progress: bool = False, cache_dir: str | None = None, threads: int | None = None,
                 augment: str = "course", command: str | None = None, download: bool = False,
                 validation: str = "test") -> None:
        self.dataset, self.data_root, self.device, self.cached = dataset, data_root, device, cached
        self.validation = check_validation(validation)  # heldout: validate on the held-out split, test once at the end
        self.download = bool(download)  # fetch the data set once if it is missing (Fashion-MNIST)
        self.subset, self.seed, self.augment = check_subset(subset), int(seed), check_augment_name(augment)
        self.batch_size = positive_int(batch_size, "batch size")
        self.num_workers, self.progress, self.cache_dir, self.command = num_workers, progress, cache_dir, command
        # CPU threads for training: 1 avoids oversubscription when several runs share few cores
        self.threads = None if threads is None else positive_int(threads, "threads")
        # the code that trains is the code imported now: read its commit once, not when a condition ends
        self.commit = git_commit()
        self.num_classes: int | None = None
        self._loaders: dict[str, dict[str, Any]] = {"train": {}, "heldout": {}, "test": {}}
        self._init: dict[tuple[str, float], dict] = {}

    def prepare(self, conditions: Sequence[Condition]) -> None:
        """Check the data set is there and build the loaders the conditions need (once per resolution)."""
        self.device = resolve_device(self.device)
        if self.cached and self.cache_dir is not None:  # before the images are decoded, not after
            check_writable_file(Path(self.cache_dir) / "decoded.pt", "--cache-dir file")
        try:
            train = datasets.get_dataset(self.dataset, "train", root=self.data_root, download=self.download)
        except (FileNotFoundError, RuntimeError, OSError) as exc:
            where = f"--data-root {self.data_root}" if self.data_root else "default folder"
            raise ValueError(f"data set {self.dataset!r} is not there ({where}): {exc}") from None
        self.num_classes = len(getattr(train, "classes", None) or {int(y) for y in getattr(train, "targets", [])})
        if not self.num_classes:
            raise ValueError(f"data set {self.dataset!r} has no classes")
        need = sorted({c.resolution for c in conditions if f"R{c.resolution}" not in self._loaders["train"]},
                      reverse=True)
        if need:
            workers = self.num_workers
            if workers is None:  # DataLoader processes for the plain path on a GPU; else one decode thread per core
                workers = min(4, os.cpu_count() or 1) if self.device.type == "cuda" and not self.cached else 0
            try:
                loaders = data.make_loaders(self.dataset, need, batch_size=self.batch_size, augment=self.augment,
                                            root=self.data_root, subset=self.subset, seed=self.seed,
                                            num_workers=workers, cached=self.cached, device=self.device,
                                            cache_dir=self.cache_dir, download=self.download,
                                            holdout=self.validation == "heldout")
            except FileNotFoundError as exc:  # the training split is there, another is not (a train/ without val/)
                where = f"--data-root {self.data_root}" if self.data_root else "default folder"
                raise ValueError(f"data set {self.dataset!r} is incomplete ({where}): {exc}") from None
            for split, by_resolution in loaders.items():
                self._loaders[split].update(by_resolution)
        for model, resolution in unique((c.model, c.resolution) for c in conditions):
            self._check_fits(model, resolution)

    def _check_fits(self, model: str, resolution: int) -> None:
        """Fail before any training if `model` gives no output at `resolution` px."""
        net = self._build(model, 1.0).eval()
        try:
            with torch.no_grad():
                net(torch.zeros(1, 3, resolution, resolution))
        except (RuntimeError, ValueError) as exc:
            raise ValueError(f"{model} gives no output at {resolution} px ({str(exc).splitlines()[0]}); "
                             "choose a larger resolution") from None

    def _build(self, model: str, width: float) -> nn.Module:
        return build_model(model, width, self.num_classes)

    def initial_state(self, model: str, width: float) -> dict:
        """The initial state_dict of (model, width): seeded, cached, identical across resolutions."""
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

    def _evaluate_after(self, net: nn.Module, loader: Any, epochs: int, what: str) -> tuple[float, float]:
        """Evaluate `net` after its last epoch, printed as `what` (the trainer would number it as one epoch more).

        The loader is told epoch `epochs` as before, so its draws (the augmented validation's) stay the same.
        """
        loss, acc = evaluate(net, loader, self.device, epoch=epochs)
        print(f"after epoch {epochs:03d}, {what} [loss: {loss:.3f}, acc: {acc * 100:.2f}%]")
        return loss, acc

    def __call__(self, cond: Condition, checkpoint: Path) -> dict:
        """Train `cond` (resuming from `checkpoint` if it is there); returns the record's measurements."""
        if self.threads is None:
            return self._run(cond, checkpoint)
        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            return self._run(cond, checkpoint)
        finally:
            torch.set_num_threads(before)

    def _run(self, cond: Condition, checkpoint: Path) -> dict:
        # the record is the condition's: a runner of another batch size or data folder would record a run it did
        # not make
        mine = (self.dataset, self.subset, self.seed, self.augment, self.validation, self.batch_size,
                datasets.canonical_root(self.dataset, self.data_root))
        theirs = (cond.dataset, cond.subset, cond.seed, cond.augment, cond.validation, cond.batch_size, cond.data_root)
        if theirs != mine:
            raise ValueError(f"this runner serves dataset, subset, seed, augment, validation, batch size, data root = "
                             f"{mine}; got a condition with {theirs}")
        if self.num_classes is None or f"R{cond.resolution}" not in self._loaders["train"]:
            self.prepare([cond])
        net = self._build(cond.model, cond.width)
        net.load_state_dict(self.initial_state(cond.model, cond.width))
        params = count_params(net)
        macs = conv_linear_macs(net, cond.resolution)  # conv + FC multiply-adds: what the papers' tables count
        seed_everything(cond.seed)
        # the trainer sets each loader's epoch, so every condition (in any order, on any shard, after any
        # resume) sees the data order and augmentation draws of its own epochs
        # validated on the held-out split (the official test split then once, at the end) or, as the course, on the test split
        val_split = "heldout" if cond.validation == "heldout" else "test"
        train_loader, val_loader = (self._loaders[split][f"R{cond.resolution}"] for split in ("train", val_split))
        # the condition's recipe (its optimiser, per-batch schedule and training loss; validation and test losses
        # are plain cross-entropy); GoogLeNet with its two auxiliary classifiers (main + 0.3 x each), as in
        # lesson 03; epoch_step=epochs: the first and the last epoch of each condition are printed
        history = train(net, cond.recipe, train_loader, val_loader, cond.epochs, device=self.device,
                        checkpoint=checkpoint, progress=self.progress, epoch_step=cond.epochs)
        val_acc_augmented = None
        if hasattr(val_loader, "with_augment") and self.augment != "none":
            # the validation images augmented as in training: what the training accuracy is measured on
            _, val_acc_augmented = self._evaluate_after(
                net, val_loader.with_augment(self.augment, seed=self.seed + 1), cond.epochs, "augmented val")
        test = {}
        if cond.validation == "heldout":  # the official test split, once, after the last epoch: reported, never chosen on
            test_loader = self._loaders["test"][f"R{cond.resolution}"]
            test_loss, test_acc = self._evaluate_after(net, test_loader, cond.epochs, "test")
            test = {"test_loss": float(test_loss), "test_acc": float(test_acc), "test_images": len(test_loader.dataset)}
        return {
            "params": int(params), "macs": int(macs),
            **{k: [float(v) for v in history[k]] for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
            "num_classes": self.num_classes, "init_seed": init_seed(cond.model, cond.width, self.seed),
            "train_images": len(train_loader.dataset), "val_images": len(val_loader.dataset),
            "batch_size": self.batch_size, "loss": "CrossEntropyLoss",
            **{f: getattr(cond, f) for f in RECIPE_FIELDS}, "validation": cond.validation,
            "heldout": cond.validation == "heldout", **test,
            "val_acc_augmented": None if val_acc_augmented is None else float(val_acc_augmented),
            # seconds of each training phase run by this process (an epoch resumed from a checkpoint has none)
            "train_seconds": [round(t, 3) for t in history.seconds["train"]], "precision": history.precision,
            "cached_data": self.cached, "device": str(self.device), "cpu": cpu_name(),
            "device_name": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(), "commit": self.commit, "command": self.command,
        }
