"""The GPU time estimate: its counts against outside references, its calibration against published
throughputs, and what it adds around the epochs."""

from __future__ import annotations

import pytest
import torchvision

from lecture_utils import estimate
from lecture_utils.estimate import (GPUS, RTX3090, TIMM_RTX3090_TRAIN, estimate_seconds, format_minutes, meta_model,
                                    step_seconds, training_cost)
from lecture_utils.models import create_model
from lecture_utils.settings import LESSONS, lesson_settings

BENCHMARK = dict(param_bytes=estimate.BENCHMARK_PARAM_BYTES, data=False, host=False)  # how the anchors ran


def _cost(build, resolution=224, **kwargs):
    return training_cost(meta_model(build, **kwargs), resolution)


def test_resnet50_costs_its_published_4_1_gmacs():
    # torchvision's ResNet-50 at 224 px: 4.09 G multiply-adds (its model card lists 4.09 GFLOPS as MACs)
    cost = _cost(torchvision.models.resnet50)
    assert cost.macs == pytest.approx(4.09e9, rel=0.01)
    assert cost.convs == 53 and cost.params == 25_557_032


def test_every_kernel_of_a_step_is_counted_not_only_conv_and_linear():
    # MobileNetV2: 52 convolutions and a classifier, each with batch norm and activation, forward and backward
    cost = _cost(torchvision.models.mobilenet_v2)
    names = [k.name for k in cost.train]
    assert names.count("convolution") == 52 and names.count("convolution_backward") == 52
    assert names.count("native_batch_norm_backward") == 52 and names.count("hardtanh_backward") == 35
    assert len(cost.train) > 400


def test_googlenet_trains_its_auxiliary_heads():
    cost = _cost(create_model, 96, name="googlenet", num_classes=10)
    forward_macs = sum(k.macs for k in cost.train if k.name in ("convolution", "addmm", "mm"))
    assert forward_macs > cost.macs  # the two auxiliary classifiers run in training only
    assert len([k for k in cost.train if k.name == "_log_softmax"]) == 3  # main and two auxiliary losses


@pytest.mark.parametrize("name", sorted(TIMM_RTX3090_TRAIN))
def test_the_rtx3090_rates_reproduce_timms_training_benchmark(name):
    # timm results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv: train_samples_per_sec at train_batch_size
    rate, batch = TIMM_RTX3090_TRAIN[name]
    build = {"mobilenetv2_100": torchvision.models.mobilenet_v2,
             "mobilenetv2_050": lambda: torchvision.models.mobilenet_v2(width_mult=0.5)}.get(name) \
        or getattr(torchvision.models, name)
    predicted = batch / step_seconds(_cost(build), batch, RTX3090, **BENCHMARK)
    assert predicted == pytest.approx(rate, rel=0.2)


def test_the_t4_runs_resnet50_inference_at_nvidias_measured_rate():
    # NVIDIA DeepLearningExamples, PyTorch ResNet-50 v1.5, "Inference performance: NVIDIA T4", mixed precision,
    # batch 256: 1,198 images/s
    cost = _cost(torchvision.models.resnet50)
    assert 256 / step_seconds(cost, 256, "t4", train=False, **BENCHMARK) == pytest.approx(1198, rel=0.03)


def test_the_a100_trains_resnet50_at_nvidias_measured_rate():
    # the same README, "Training performance: NVIDIA DGX A100 (8x A100 80GB)", 1 GPU, mixed precision: 2,470 images/s
    cost = _cost(torchvision.models.resnet50)
    assert 256 / step_seconds(cost, 256, "a100", **BENCHMARK) == pytest.approx(2470, rel=0.03)


def test_the_constants_are_the_calibrations_and_the_v100_check_holds():
    fitted = estimate.calibration()
    assert fitted["rtx3090_flops"] == pytest.approx(RTX3090.flops_per_s, rel=0.02)
    assert fitted["rtx3090_bandwidth"] == pytest.approx(RTX3090.bandwidth_bytes_per_s, rel=0.02)
    assert fitted["rtx3090_rms"] < 0.1
    assert fitted["t4_flops"] == pytest.approx(GPUS["t4"].flops_per_s, rel=0.02)
    assert fitted["a100_flops"] == pytest.approx(GPUS["a100"].flops_per_s, rel=0.02)
    # NVIDIA's V100 (DGX-1 16GB, 1 GPU, mixed precision) trains ResNet-50 at 1,200 images/s; the method,
    # from the V100's inference (3,382 images/s), predicts it within 10 %
    assert fitted["v100_training_predicted"] == pytest.approx(1200, rel=0.1)
    assert fitted["v100_training_predicted"] == pytest.approx(estimate.V100_TRAINING_PREDICTED, rel=0.01)


def test_the_optimisers_parameter_traffic_is_in_a_step():
    # AlexNet's 57 M parameters: the fused AdamW step alone moves 28 bytes each (1.6 GB) per step
    cost = _cost(create_model, 96, name="alexnet", num_classes=10)
    with_params = step_seconds(cost, 128, "t4")
    without = step_seconds(cost, 128, "t4", param_bytes=0)
    assert cost.params > 57e6
    assert with_params - without >= cost.params * 28 / 320e9


def test_checkpoints_and_start_up_are_in_the_estimate():
    cost = _cost(create_model, 96, name="alexnet", num_classes=10)
    plain = estimate_seconds(cost, 60000, 10000, 10, 128, checkpoint_every=None)
    # ten checkpoints of parameters and AdamW's two moments (12 bytes a parameter) at 100 MB/s
    every = estimate_seconds(cost, 60000, 10000, 10, 128, checkpoint_every=1)
    assert every - plain == pytest.approx(10 * cost.params * 12 / 100e6)
    assert estimate_seconds(cost, 60000, 10000, 10, 128, checkpoint_every=5) < every
    # the default, as fit writes them: after an epoch once 120 s have passed, and after the last one. An
    # AlexNet epoch at 96 px on a T4 is well under 120 s, so fewer than ten and at least one
    timed = estimate_seconds(cost, 60000, 10000, 10, 128) - plain
    one_checkpoint = cost.params * 12 / 100e6
    assert one_checkpoint <= timed < 10 * one_checkpoint
    assert (timed / one_checkpoint) == pytest.approx(round(timed / one_checkpoint))
    # start-up: paid once by a run that trains, not by an evaluation alone
    one, two = (estimate_seconds(cost, 60000, 10000, e, 128, checkpoint_every=None) for e in (1, 2))
    assert one > two - one
    # 10,000 images at batch 128: 78 full batches and one of 16
    assert estimate_seconds(cost, 0, 10000, 1, 128) == pytest.approx(
        78 * step_seconds(cost, 128, "t4", False) + step_seconds(cost, 16, "t4", False))


@pytest.mark.parametrize("lesson", [k for k in LESSONS if k != "09"])
def test_each_lessons_full_profile_fits_ten_minutes_on_a_t4_with_its_uncertainty(lesson, monkeypatch):
    monkeypatch.delenv("LECTURE_FULL_SHRINK", raising=False)
    assert estimate.lesson_seconds(lesson_settings(lesson, "full"), "t4") * (1 + estimate.UNCERTAINTY) <= 600


def test_unknown_gpu_lists_the_known_ones():
    cost = _cost(create_model, 32, name="resnet18", num_classes=10)
    with pytest.raises(ValueError, match="t4, a100, h100"):
        estimate_seconds(cost, 1, 1, 1, 1, "k80")


def test_bad_resolution_is_refused():
    with pytest.raises(ValueError, match="positive integer"):
        training_cost(create_model("resnet18", num_classes=10), 0)


def test_minutes_and_hours():
    assert format_minutes(150) == "2.5 min"
    assert format_minutes(3 * 3600) == "3.0 h"
