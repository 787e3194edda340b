"""Measured costs of a network: parameters, multiply-adds, per-layer table, torchinfo summary.

What this project reports
-------------------------
Costs are multiply-adds (MACs), the quantity the papers call "Mult-Adds" (MobileNet v1: 569M,
MobileNetV2: 300M at 224 x 224); one multiplication plus one addition counts once, and
FLOPs = 2 x MACs. The headline number counts convolutions (grouped and depthwise included)
and fully connected layers, without their biases: this is what the closed forms in
:mod:`lecture_utils.costs` and :func:`conv_linear_macs` compute, and what the papers' tables count.
The other counters differ only by what they add on top:

* ``flop_counter_macs`` (torch's ``FlopCounterMode``, FLOPs / 2): the same conv and linear
  multiply-adds, no biases; equal to :func:`conv_linear_macs`.
* ``ptflops_macs(backend="aten")`` (ptflops): + 1 per output element of every conv/linear bias.
* ``ptflops_macs(backend="pytorch")`` (ptflops, ``count_functional=False``): + biases as above,
  + batch norm (2 per element with affine, else 1), + ``nn.ReLU``/``ReLU6``/``LeakyReLU``/...
  modules (1 per output element), + ``nn`` pooling modules (1 per input element).
  Residual additions, concatenations, ``torch.flatten`` and functional calls are not counted
  (``count_functional=True``, ptflops' default, would count ``F.relu`` and pooling a second time
  when an ``nn`` module calls them).
* torchinfo's "Total mult-adds" in :func:`summary`: conv and linear with biases, + 2 per
  channel of every batch norm.

Every counter runs one image (batch 1) with the model in eval mode and restores each module's
train/eval flag afterwards (GoogLeNet, for example, returns a tuple in train mode).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import nn

__all__ = [
    "LayerRow",
    "count_params",
    "ptflops_macs",
    "flop_counter_macs",
    "layer_table",
    "format_layer_table",
    "conv_linear_macs",
    "summary",
]

Resolution = int | tuple[int, int]
PTFLOPS_BACKENDS = ("pytorch", "aten")


class LayerRow(NamedTuple):
    """One call of a leaf module: its dotted name, class name, output shape, parameters, MACs."""

    name: str
    type: str
    out_shape: tuple[int, ...]
    params: int
    macs: int


# --------------------------------------------------------------------------- helpers
def _hw(resolution: Resolution) -> tuple[int, int]:
    if isinstance(resolution, int) and not isinstance(resolution, bool) and resolution > 0:
        return resolution, resolution
    if (
        isinstance(resolution, (tuple, list))
        and len(resolution) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resolution)
    ):
        return int(resolution[0]), int(resolution[1])
    raise ValueError(f"resolution must be a positive int or a (height, width) pair, got {resolution!r}")


def _check_model(model: nn.Module, in_chans: int) -> None:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive int, got {in_chans!r}")


def _dummy_input(model: nn.Module, resolution: Resolution, in_chans: int) -> torch.Tensor:
    """A zero image of batch 1 on the model's device and in its dtype."""
    h, w = _hw(resolution)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    return torch.zeros(1, in_chans, h, w, device=device, dtype=dtype)


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    """Run in eval mode; afterwards give every module back its own train/eval flag."""
    flags = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


def _first_tensor(output: object) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            found = _first_tensor(item)
            if found is not None:
                return found
    if isinstance(output, dict):
        return _first_tensor(list(output.values()))
    return None


def _layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-adds of one call: conv H_out W_out C_out (C_in/g) k^2, linear N_out N_in; else 0."""
    batch = output.shape[0] if output.dim() > 1 else 1
    if isinstance(module, nn.modules.conv._ConvNd) and not module.transposed:
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() // batch * per_output
    if isinstance(module, nn.Linear):
        return output.numel() // batch * module.in_features
    return 0


# --------------------------------------------------------------------------- counters
def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors once); only those with requires_grad if asked."""
    _check_model(model, 3)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def layer_table(model: nn.Module, resolution: Resolution = 224, in_chans: int = 3) -> list[LayerRow]:
    """Per-layer rows from forward hooks on every leaf module, in call order.

    MACs are counted for conv (groups included) and linear layers only, without bias; a module
    called twice gives two rows, and its parameters are listed on the first.
    """
    _check_model(model, in_chans)
    x = _dummy_input(model, resolution, in_chans)
    names = {module: name for name, module in model.named_modules()}
    rows: list[LayerRow] = []
    seen: set[nn.Module] = set()

    def hook(module: nn.Module, _inputs: object, output: object) -> None:
        tensor = _first_tensor(output)
        shape = tuple(tensor.shape) if tensor is not None else ()
        params = 0 if module in seen else sum(p.numel() for p in module.parameters())
        seen.add(module)
        macs = _layer_macs(module, tensor) if tensor is not None else 0
        rows.append(LayerRow(names[module] or type(module).__name__, type(module).__name__, shape, params, macs))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        with _eval_mode(model), torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return rows


def conv_linear_macs(model: nn.Module, resolution: Resolution = 224, in_chans: int = 3) -> int:
    """Total conv + linear multiply-adds from :func:`layer_table` (the project's headline count)."""
    return sum(row.macs for row in layer_table(model, resolution, in_chans))


def pool_shapes(model: nn.Module, resolution: Resolution = 224, in_chans: int = 3) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(C, H, W) of the feature map entering ``model.avgpool`` and of what leaves it, for one image.

    Shows what the classifier sees at a small input: e.g. an ImageNet network's last maps at 32 px.
    """
    _check_model(model, in_chans)
    pool = getattr(model, "avgpool", None)
    if not isinstance(pool, nn.Module):
        raise ValueError(f"{type(model).__name__} has no `avgpool` module; pool_shapes needs a model of "
                         "the zoo with one (all except the manifold toys)")
    shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        shapes.append((tuple(inputs[0].shape[1:]), tuple(output.shape[1:])))

    handle = pool.register_forward_hook(hook)
    try:
        with _eval_mode(model), torch.no_grad():
            model(_dummy_input(model, resolution, in_chans))
    finally:
        handle.remove()
    return shapes[0]


def format_layer_table(rows: list[LayerRow], only_macs: bool = False) -> str:
    """The rows of :func:`layer_table` as fixed-width text with a total line.

    ``only_macs`` keeps only the rows that cost multiply-adds (conv and linear).
    """
    shown = [r for r in rows if r.macs or not only_macs]
    header = f"{'layer':<32} {'type':<18} {'output shape':<20} {'params':>12} {'MACs':>15}"
    lines = [header, "-" * len(header)]
    for r in shown:
        shape = "x".join(str(v) for v in r.out_shape[1:])
        lines.append(f"{r.name[:32]:<32} {r.type[:18]:<18} {shape:<20} {r.params:>12,} {r.macs:>15,}")
    lines.append("-" * len(header))
    total_params = sum(r.params for r in rows)
    total_macs = sum(r.macs for r in rows)
    lines.append(f"{'total':<72} {total_params:>12,} {total_macs:>15,}")
    return "\n".join(lines)


def flop_counter_macs(model: nn.Module, resolution: Resolution = 224, in_chans: int = 3) -> int:
    """Multiply-adds by torch's FlopCounterMode: its total FLOPs (2 per conv/matmul MAC) // 2."""
    from torch.utils.flop_counter import FlopCounterMode

    _check_model(model, in_chans)
    x = _dummy_input(model, resolution, in_chans)
    counter = FlopCounterMode(display=False)
    with _eval_mode(model), torch.no_grad(), counter:
        model(x)
    return counter.get_total_flops() // 2


@contextlib.contextmanager
def _ptflops_cleanup(model: nn.Module) -> Iterator[None]:
    """Undo what ptflops leaves behind: methods set on the model, hooks the aten backend adds."""
    attrs = set(model.__dict__)
    hooks = [(m, set(m._forward_pre_hooks), set(m._forward_hooks)) for m in model.modules()]
    try:
        yield
    finally:
        for key in set(model.__dict__) - attrs:
            del model.__dict__[key]
        for module, pre, post in hooks:
            for key in set(module._forward_pre_hooks) - pre:
                del module._forward_pre_hooks[key]
            for key in set(module._forward_hooks) - post:
                del module._forward_hooks[key]


def ptflops_macs(
    model: nn.Module, resolution: Resolution = 224, backend: str = "pytorch", in_chans: int = 3
) -> int:
    """Multiply-adds by ptflops with an explicit ``backend`` ("pytorch" or "aten"), quietly.

    The pytorch backend runs with count_functional=False; see the module docstring for what each
    backend adds to the conv + linear count.
    """
    from ptflops import get_model_complexity_info

    _check_model(model, in_chans)
    if backend not in PTFLOPS_BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(PTFLOPS_BACKENDS)}; got {backend!r}")
    h, w = _hw(resolution)
    config = {"count_functional": False} if backend == "pytorch" else {}
    log = io.StringIO()
    with (
        _eval_mode(model),
        _ptflops_cleanup(model),
        torch.no_grad(),
        contextlib.redirect_stdout(log),
        contextlib.redirect_stderr(log),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        macs, _params = get_model_complexity_info(
            model,
            (in_chans, h, w),
            print_per_layer_stat=False,
            as_strings=False,
            ost=log,
            verbose=False,
            backend=backend,
            backend_specific_config=config,
        )
    if macs is None:
        raise RuntimeError(f"ptflops could not count this model:\n{log.getvalue()}")
    return int(macs)


# --------------------------------------------------------------------------- torchinfo
_UNITS = re.compile(r"Units\.([A-Z]+)")


def _normalise_units(text: str) -> str:
    """torchinfo 1.8 on Python 3.11+ prints enum names ("Units.MEGABYTES"); print their values."""
    from torchinfo.enums import Units

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return Units[name].value if name in Units.__members__ else name

    return _UNITS.sub(value, text)


_SUMMARY_FIXED = ("input_size", "input_data", "device", "verbose", "mode", "batch_dim")


def summary(model: nn.Module, resolution: Resolution = 224, in_chans: int = 3, **kwargs: object) -> str:
    """torchinfo summary text for one ``in_chans x resolution`` image, run on the CPU in eval mode.

    Extra keywords (depth, col_names, ...) go to torchinfo.summary; "(Units.MEGABYTES)" reads "(M)".
    The model's train/eval flags and its device are restored afterwards.
    """
    import torchinfo

    _check_model(model, in_chans)
    fixed = sorted(set(kwargs) & set(_SUMMARY_FIXED))
    if fixed:
        raise ValueError(f"summary sets {', '.join(_SUMMARY_FIXED)} itself; got {', '.join(fixed)}")
    h, w = _hw(resolution)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        with _eval_mode(model):
            stats = torchinfo.summary(
                model, input_size=(1, in_chans, h, w), device="cpu", verbose=0, mode="eval", **kwargs
            )
    finally:
        if device.type != "cpu":
            model.to(device)
    return _normalise_units(str(stats))
