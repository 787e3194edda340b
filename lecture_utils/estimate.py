"""How long a training run takes on a GPU, estimated before it starts (and checked by ``bench gpu-check``).

The method: a roofline per kernel, summed over every kernel of a training step.

* **Every kernel.** :func:`training_cost` runs one training step (forward in train mode, so
  GoogLeNet's auxiliary heads run, cross-entropy, backward; its forward part is the evaluation's)
  on the ``meta`` device (shapes only) under a dispatch mode that sees every aten operation: convolutions
  and matrix products, but also batch norm, activations, pooling, residual additions and their
  backward kernels. For each it records the multiply-adds (torch's ``flop_counter`` formulas) and
  the tensor elements it reads and writes. Views make no kernel and are not counted.
* **Time of one kernel**: ``max(FLOPs / F, bytes / B)``, plus a launch gap of ``KERNEL_GAP_S``;
  activations are 2 bytes (mixed precision); batch norm's statistics pass reads its input once more
  forward and twice more backward (``BN_PASSES``). Kernels add up, so a network whose many small
  kernels are memory-bound (MobileNets) pays for each of them.
* **Parameters**: per parameter and step, ``PARAM_BYTES`` (the fused AdamW step reads and writes
  parameter, gradient and both moments, 28 bytes; autocast's fp16 copy of each weight and the
  gradient's cast back, 12; the GradScaler's unscale pass on fp16, 8).
* **The data path**: each batch is resized and normalised on the GPU (``DATA_BYTES_PER_PIXEL``).
* **The host**: a step is never shorter than its operations' dispatch on the CPU
  (``host_s_per_op`` each: 10 us on a Colab core, 5 on a server's).
* **Around the epochs**: the per-epoch checkpoint (model and AdamW's two moments, 12 bytes per
  parameter, written at the host's disk rate: 100 MB/s on Colab, 1 GB/s on a server), and
  start-up: building the model and moving it over, cuDNN's autotuning of every convolution for
  the 4 batch shapes of a run (full and last batch of training and of evaluation), and, for a
  lesson, the process's own start
  (``PROCESS_START_S``: CUDA's context, the data set's download and cache).

Calibration (measured numbers, all mixed precision, channels-last):

* ``F`` and ``B`` of an RTX 3090 are fitted to timm's training benchmark of nine networks at
  224 px (``results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv`` of
  github.com/huggingface/pytorch-image-models; :data:`TIMM_RTX3090_TRAIN`): F = 64 T FLOP/s (90 %
  of the card's 71 T), B = 812 GB/s (87 % of its 936 GB/s). The fit's root-mean-square error over
  the nine is 9 % (grouped ResNeXt-50 is slower than its count, MobileNetV2 0.5 faster).
* Other cards keep the 3090's fraction of their data-sheet bandwidth, and ``F`` is solved from one
  measured number each, NVIDIA's ResNet-50 v1.5 tables for PyTorch (github.com/NVIDIA/
  DeepLearningExamples, PyTorch/Classification/ConvNets/resnet50v1.5/README.md):
  T4: inference 1,198 images/s (mixed precision, batch 256, its only published T4 number), so
  F = 21 T (32 % of its 65 T: a 70 W card runs below its boost clock) and its training rate is
  predicted by the method, not measured; A100 80 GB: training 2,470 images/s, F = 123 T.
  H100-class cards are counted at the A100's rates (a lower bound).
* The same inference-to-training step on the V100 of the same tables (inference 3,382 images/s,
  training 1,200) predicts :data:`V100_TRAINING_PREDICTED` images/s of training: that error (-4 %)
  is what the T4's training rate may carry.
* :func:`calibration` redoes all of it (about 10 s); ``tests/test_estimate.py`` checks the constants
  against it.

Uncertainty: per network about +-25 % on a T4 (the 3090 fit's 9 % spread, the inference-to-training
step's 4 %, the T4's clock under its 70 W limit, which the inference anchor measured at one load,
and small images: 32-96 px instead of the anchors' 224 px, with smaller, less efficient kernels);
the host, start-up and checkpoint terms are allowances (a Colab disk writes at 50-200 MB/s,
Drive's sync is slower); ``python -m lecture_utils.experiment.bench gpu-check`` measures each lesson and prints
its error beside the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["GPU", "GPUS", "TrainingCost", "Kernel", "meta_model", "training_cost", "step_seconds",
           "estimate_seconds", "lesson_seconds", "format_minutes", "TIMM_RTX3090_TRAIN"]

# --- the cards ------------------------------------------------------------------------------------
KERNEL_GAP_S = 3e-6      # between two kernels on the GPU (launch latency; an allowance, F and B fitted with it)
BN_PASSES = {"native_batch_norm": 1.5, "native_batch_norm_backward": 5 / 3,  # statistics pass(es)
             "cudnn_batch_norm": 1.5, "cudnn_batch_norm_backward": 5 / 3}
ACTIVATION_BYTES = 2     # fp16 / bf16 activations under autocast
PARAM_BYTES = 48         # per parameter and step: fused AdamW 28, autocast's weight copy and grad cast 12, unscale 8
# per output pixel and channel: uint8 read, float, resize, normalise, channels-last copy, fp16 cast
DATA_BYTES_PER_PIXEL = 30
DATA_KERNELS = 12        # per batch, for the above
HOST_S_PER_OP = 10e-6    # a Colab core's dispatch of one operation (Python, autocast, autograd): the floor of a step
SERVER_S_PER_OP = 5e-6   # a server core's
# --- around the epochs ----------------------------------------------------------------------------
CHECKPOINT_BYTES_PER_S = 100e6  # a Colab runtime's disk (an allowance: 50-200 MB/s; Drive slower)
SERVER_DISK_BYTES_PER_S = 1e9   # a server's local NVMe disk
CHECKPOINT_BYTES_PER_PARAM = 12  # fp32 parameter and AdamW's two moments
# cudnn.benchmark times each convolution's algorithms once per batch shape: about 8 candidates for each of
# forward, backward-data and backward-filter, each run once at full size, plus a set-up per try (an allowance)
AUTOTUNE_TRIES = 8
AUTOTUNE_S_PER_TRY = 0.5e-3
RUN_SHAPES = 4           # training batch, its last partial batch, evaluation batch, its last partial batch
HOST_TO_DEVICE_BYTES_PER_S = 6e9  # the model's first copy over PCIe
PROCESS_START_S = 15.0   # CUDA context and cuDNN load, Fashion-MNIST's download (30 MB) and its cache
UNCERTAINTY = 0.25       # the estimate's relative uncertainty on a T4 (the module's docstring says why)


@dataclass(frozen=True)
class GPU:
    """One GPU: effective tensor-core FLOP/s of a convolution or matrix product, and effective bandwidth;
    and its host: seconds per dispatched operation, and how fast a checkpoint is written."""

    name: str
    flops_per_s: float
    bandwidth_bytes_per_s: float
    host_s_per_op: float = 10e-6
    disk_bytes_per_s: float = 100e6


# the RTX 3090's fit to timm's training benchmark (the module's docstring); its bandwidth fraction
RTX3090 = GPU("RTX 3090 (calibration)", 64.0e12, 811.5e9)
BANDWIDTH_FRACTION = 811.5e9 / 936e9
GPUS: dict[str, GPU] = {
    # F solved so that ResNet-50's inference at batch 256 runs at NVIDIA's measured 1,198 images/s
    "t4": GPU("Tesla T4 (Colab)", 21.0e12, 320e9 * BANDWIDTH_FRACTION),
    # F solved so that ResNet-50's training at batch 256 runs at NVIDIA's measured 2,470 images/s (A100 80 GB)
    # a server's host: a faster core per operation, a local NVMe disk (an allowance, not a measurement)
    "a100": GPU("A100", 123e12, 2.039e12 * BANDWIDTH_FRACTION, SERVER_S_PER_OP, SERVER_DISK_BYTES_PER_S),
    "h100": GPU("H100-class (counted at the A100's rates)", 123e12, 2.039e12 * BANDWIDTH_FRACTION,
                SERVER_S_PER_OP, SERVER_DISK_BYTES_PER_S),
}
# timm's RTX 3090 training benchmark (AMP, NHWC, PyTorch 1.12): network -> (images/s, batch), 224 px
TIMM_RTX3090_TRAIN = {"resnet18": (3481.78, 512), "resnet34": (2036.51, 512), "resnet50": (1218.01, 512),
                      "resnext50_32x4d": (1001.03, 384), "wide_resnet50_2": (668.78, 384), "vgg16": (546.06, 384),
                      "vgg16_bn": (470.3, 256), "mobilenetv2_100": (2313.1, 512), "mobilenetv2_050": (4051.14, 512)}
V100_TRAINING_PREDICTED = 1151  # images/s, by the method from the V100's inference (NVIDIA measured 1,200)


@dataclass(frozen=True)
class Kernel:
    """One kernel of a step: multiply-adds and elements read or written per image, elements that do not grow with it."""

    name: str
    macs: float
    elements: float
    fixed_elements: float


@dataclass(frozen=True)
class TrainingCost:
    """What a network at one resolution costs: the kernels of a training step and of an evaluation forward.

    ``macs`` (forward multiply-adds per image, conv and linear), ``params`` and ``convs`` are kept for
    reports and start-up; ``ops`` counts every dispatched operation of a step (views too) for the host.
    """

    macs: int
    params: int
    convs: int
    resolution: int
    train: tuple[Kernel, ...]
    evaluate: tuple[Kernel, ...]
    train_ops: int
    eval_ops: int

    @property
    def layers(self) -> int:
        """Convolutions and linear layers (kept for reports)."""
        return self.convs


def meta_model(build: Any, *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)`` made on the ``meta`` device: shapes only, no memory and no initialisation
    arithmetic (VGG16's 138 M parameters cost milliseconds instead of seconds), for :func:`training_cost`."""
    import torch

    with torch.device("meta"):
        return build(*args, **kwargs)


COUNT_BATCH = 3  # the counting step's batch: a size no parameter's first dimension has in these networks


def _count(model: Any, resolution: int, in_chans: int, train: bool) -> tuple[list[Kernel], int, int, int]:
    """Every kernel of one step at :data:`COUNT_BATCH` images (per image), the ops dispatched, where backward starts.

    A tensor shaped like one of the model's parameters (a weight, its gradient, its fp16 copy) does not
    grow with the batch: it is counted as fixed; every other tensor, per image.
    """
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten
    from torch.utils.flop_counter import flop_registry

    no_kernel = {"detach", "empty", "empty_like", "new_empty", "empty_strided", "alias", "lift_fresh",
                 "_local_scalar_dense", "_to_copy"}  # _to_copy: the meta run's dtype casts (counted in PARAM_BYTES)
    shapes = {tuple(p.shape) for p in model.parameters()}
    shapes |= {shape[::-1] for shape in shapes if len(shape) == 2}  # a linear layer's weight enters addmm transposed
    batch = COUNT_BATCH

    class Counter(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.kernels: list[Kernel] = []
            self.ops = 0

        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            self.ops += 1
            packet = func.overloadpacket
            if func.is_view or packet.__name__ in no_kernel:
                return out
            flops = flop_registry[packet](*args, **kwargs, out_val=out) if packet in flop_registry else 0
            per_image = fixed = 0
            for t in tree_flatten((args, kwargs, out))[0]:
                if isinstance(t, torch.Tensor):
                    if tuple(t.shape) in shapes:
                        fixed += t.numel()
                    else:
                        per_image += t.numel()
            self.kernels.append(Kernel(packet.__name__, flops / 2 / batch, per_image / batch, fixed))
            return out

    model.train(train)
    for p in model.parameters():  # a gradient left from an earlier count would add an accumulation kernel
        p.grad = None
    x = torch.empty(batch, in_chans, resolution, resolution, device="meta")
    y = torch.zeros(batch, dtype=torch.long, device="meta")
    with Counter() as counter:
        if train:
            out = model(x)
            outputs = list(out) if isinstance(out, (tuple, list)) else [out]
            # GoogLeNet: main loss + 0.3 x each auxiliary loss, as ModelTrainer(aux=True) trains it
            loss = sum(torch.nn.functional.cross_entropy(o, y) for o in outputs)
            forward, forward_ops = len(counter.kernels), counter.ops
            loss.backward()
        else:
            with torch.no_grad():
                outputs = [model(x)]
            forward, forward_ops = len(counter.kernels), counter.ops
    return counter.kernels, counter.ops, forward if len(outputs) == 1 else -1, forward_ops


def training_cost(model: Any, resolution: int, in_chans: int = 3) -> TrainingCost:
    """Every kernel of a training step (train mode: auxiliary heads run) and of an evaluation forward of `model`.

    Runs on a ``meta`` copy (shapes only, no arithmetic): one training step; the evaluation is its
    forward part (batch norm then reads its input once), or, for a network with auxiliary heads, a
    forward of its own in eval mode. About half a second for a 224-px ResNet-50.
    """
    import copy

    from torch import nn

    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, got {resolution!r}")
    meta = copy.deepcopy(model).to("meta")
    train, train_ops, forward, forward_ops = _count(meta, resolution, in_chans, True)
    if forward >= 0:
        evaluate, eval_ops = tuple(train[:forward]), forward_ops
    else:  # auxiliary heads run in training only
        kernels, eval_ops, _, _ = _count(meta, resolution, in_chans, False)
        evaluate = tuple(kernels)
    convs = sum(isinstance(m, nn.modules.conv._ConvNd) for m in meta.modules())
    params = sum(p.numel() for p in meta.parameters() if p.requires_grad)
    macs = sum(k.macs for k in evaluate)  # conv and linear (torch's flop formulas), as profile.conv_linear_macs
    return TrainingCost(int(round(macs)), int(params), int(convs), int(resolution), tuple(train), evaluate,
                        int(train_ops), int(eval_ops))


def step_seconds(cost: TrainingCost, batch: int, gpu: str | GPU = "t4", train: bool = True, *,
                 param_bytes: float = PARAM_BYTES, data: bool = True, host: bool = True) -> float:
    """Seconds of one step of `batch` images (training: forward, backward, optimiser; else a forward).

    `param_bytes` per parameter and step, the data path (`data`) and the host's floor (`host`) can be
    set for a benchmark that ran otherwise (the calibration's: synthetic data, SGD).
    """
    spec = _gpu(gpu)
    device = 0.0
    for k in cost.train if train else cost.evaluate:
        passes = BN_PASSES.get(k.name, 1.0) if train else 1.0  # evaluation's batch norm: one pass
        moved = (k.elements * batch + k.fixed_elements) * ACTIVATION_BYTES * passes
        device += max(2 * k.macs * batch / spec.flops_per_s, moved / spec.bandwidth_bytes_per_s) + KERNEL_GAP_S
    if data:
        pixels = batch * 3 * cost.resolution ** 2
        device += pixels * DATA_BYTES_PER_PIXEL / spec.bandwidth_bytes_per_s + DATA_KERNELS * KERNEL_GAP_S
    if train:
        device += cost.params * param_bytes / spec.bandwidth_bytes_per_s
    floor = (cost.train_ops if train else cost.eval_ops) * spec.host_s_per_op if host else 0.0
    return max(device, floor)  # the GPU runs behind the host: the slower of the two sets the pace


def _gpu(gpu: str | GPU) -> GPU:
    if isinstance(gpu, GPU):
        return gpu
    if gpu not in GPUS:
        raise ValueError(f"unknown gpu {gpu!r}; allowed: {', '.join(GPUS)}")
    return GPUS[gpu]


def _phase_seconds(cost: TrainingCost, images: int, batch: int, gpu: str | GPU, train: bool) -> float:
    full, last = divmod(images, batch)
    return full * step_seconds(cost, batch, gpu, train) + (step_seconds(cost, last, gpu, train) if last else 0.0)


def estimate_seconds(cost: TrainingCost, train_images: int, val_images: int, epochs: int,
                     batch_size: int, gpu: str = "t4", *, checkpoint_every: int | None | str = "time") -> float:
    """Estimated wall time (s) on `gpu` of `epochs` epochs of training plus one evaluation each.

    A run that trains (`train_images` > 0) also pays its start-up (the model built and moved over,
    cuDNN's autotuning) and its checkpoints: ``"time"`` (the default) as ``ModelTrainer.fit`` writes them,
    after an epoch once ``CHECKPOINT_INTERVAL_S`` have passed since the last and after the last epoch; an
    integer: every that many epochs; None: none. The process's own start is :data:`PROCESS_START_S` (see
    :func:`lesson_seconds`).
    """
    _gpu(gpu)
    for value, what in ((epochs, "epochs"), (batch_size, "batch_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if what == "epochs" else 1):
            raise ValueError(f"{what} must be an integer >= {0 if what == 'epochs' else 1}, got {value!r}")
    per_epoch = (_phase_seconds(cost, train_images, batch_size, gpu, True)
                 + _phase_seconds(cost, val_images, batch_size, gpu, False))
    seconds = epochs * per_epoch
    if train_images > 0:
        seconds += run_start_seconds(cost, batch_size, gpu)
        if checkpoint_every == "time":
            seconds += _timed_checkpoints(epochs, per_epoch) * checkpoint_seconds(cost, gpu)
        elif checkpoint_every:
            seconds += (epochs // checkpoint_every) * checkpoint_seconds(cost, gpu)
    return seconds


def _timed_checkpoints(epochs: int, per_epoch: float) -> int:
    """How many checkpoints ``ModelTrainer.fit`` writes over `epochs` epochs of `per_epoch` seconds each."""
    from lecture_utils._util import CHECKPOINT_INTERVAL_S

    count, since = 0, 0.0
    for epoch in range(1, epochs + 1):
        since += per_epoch
        if since >= CHECKPOINT_INTERVAL_S or epoch == epochs:
            count, since = count + 1, 0.0
    return count


def checkpoint_seconds(cost: TrainingCost, gpu: str | GPU = "t4") -> float:
    """One checkpoint: the parameters and AdamW's two moments, written to the disk of `gpu`'s host."""
    return cost.params * CHECKPOINT_BYTES_PER_PARAM / _gpu(gpu).disk_bytes_per_s


def run_start_seconds(cost: TrainingCost, batch: int = 128, gpu: str | GPU = "t4") -> float:
    """A run's start: the model built on the host (its initialisation), moved over, every convolution autotuned
    for each of the run's :data:`RUN_SHAPES` batch shapes (timed here at the full batch)."""
    spec = _gpu(gpu)
    build = cost.params * 4 / 1e9  # initialisation writes about a GB/s on a host core
    tune = 0.0
    for k in cost.train:
        if k.name in ("convolution", "convolution_backward"):
            directions = 2 if k.name == "convolution_backward" else 1  # data and filter gradients
            moved = (k.elements * batch + k.fixed_elements) * ACTIVATION_BYTES
            run = max(2 * k.macs * batch / spec.flops_per_s, moved / spec.bandwidth_bytes_per_s) / directions
            tune += directions * AUTOTUNE_TRIES * (run + AUTOTUNE_S_PER_TRY)
    return build + cost.params * 4 / HOST_TO_DEVICE_BYTES_PER_S + RUN_SHAPES * tune


def lesson_seconds(settings: Any, gpu: str = "t4") -> float:
    """A lesson's full-profile training on `gpu` from the process's start: its estimate + :data:`PROCESS_START_S`."""
    return settings.estimate_seconds(gpu) + PROCESS_START_S


# the benchmarks' own step: SGD with momentum, not fused (read and write of parameter, gradient and
# momentum, 20 bytes, the unscale pass 8, autocast's copies 12, the for-loop's extra reads about 20)
BENCHMARK_PARAM_BYTES = 60


def calibration() -> dict[str, float]:
    """The fitted and solved rates from the published numbers (see the module's docstring); about 20 s.

    Returns F and B of the RTX 3090 (least squares on the logarithm over :data:`TIMM_RTX3090_TRAIN`),
    its root-mean-square error, F of the T4 and the A100 solved from NVIDIA's ResNet-50 numbers, and the
    V100's training rate predicted from its inference.
    """
    import torchvision

    from lecture_utils.models import create_model

    builders = {"mobilenetv2_100": lambda: torchvision.models.mobilenet_v2(),
                "mobilenetv2_050": lambda: torchvision.models.mobilenet_v2(width_mult=0.5)}
    costs = {name: training_cost(meta_model(builders.get(name) or getattr(torchvision.models, name)), 224)
             for name in TIMM_RTX3090_TRAIN}

    def error(spec: GPU) -> list[float]:
        return [math.log(batch / step_seconds(costs[name], batch, spec, param_bytes=BENCHMARK_PARAM_BYTES,
                                              data=False, host=False) / rate)
                for name, (rate, batch) in TIMM_RTX3090_TRAIN.items()]

    best = min(((sum(e * e for e in error(GPU("", f * 1e12, b * 1e9))), f, b)
                for f in range(30, 91, 2) for b in range(500, 937, 16)))
    f_fit, b_fit = _refine(lambda f, b: sum(e * e for e in error(GPU("", f, b))), best[1] * 1e12, best[2] * 1e9)
    fraction = b_fit / 936e9
    resnet50 = costs["resnet50"]

    def solve(rate: float, bandwidth: float, train: bool) -> float:
        low, high = 1e12, 2e15
        for _ in range(80):  # images/s grows with F: bisect on the logarithm
            mid = math.sqrt(low * high)
            got = 256 / step_seconds(resnet50, 256, GPU("", mid, bandwidth), train,
                                     param_bytes=BENCHMARK_PARAM_BYTES, data=False, host=False)
            low, high = (low, mid) if got > rate else (mid, high)
        return mid

    v100 = GPU("", solve(3382, 900e9 * fraction, False), 900e9 * fraction)
    del create_model
    return {"rtx3090_flops": f_fit, "rtx3090_bandwidth": b_fit,
            "rtx3090_rms": math.sqrt(sum(e * e for e in error(GPU("", f_fit, b_fit))) / len(TIMM_RTX3090_TRAIN)),
            "t4_flops": solve(1198, 320e9 * fraction, False),
            "a100_flops": solve(2470, 2.039e12 * fraction, True),
            "v100_training_predicted": 256 / step_seconds(resnet50, 256, v100, True,
                                                          param_bytes=BENCHMARK_PARAM_BYTES, data=False, host=False)}


def _refine(loss: Any, f: float, b: float) -> tuple[float, float]:
    """A finer search around the grid's best (F, B): steps of 1 %, halved until 0.1 %."""
    step = 0.05
    while step > 0.001:
        moved = True
        while moved:
            moved = False
            for df, db in ((1 + step, 1), (1 - step, 1), (1, 1 + step), (1, 1 - step)):
                if loss(f * df, b * db) < loss(f, b):
                    f, b, moved = f * df, b * db, True
        step /= 2
    return f, b


def format_minutes(seconds: float) -> str:
    """``"4.2 min"`` or ``"3.1 h"``."""
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.1f} min"
