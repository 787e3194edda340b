"""The training recipe: what it builds, how the trainer steps its schedule, and how it is part of a condition."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import pytest
import torch
from torch import nn

from lecture_utils.experiment import sweep
from lecture_utils.experiment.conditions import Condition, condition_key
from lecture_utils.recipe import COURSE, RECOMMENDED, Recipe
from lecture_utils.trainer import ModelTrainer, seed_everything
from test_trainer import SmallCNN, toy_loaders


def _fit(recipe: Recipe | None, epochs: int = 2, checkpoint=None, scheduler_per: str = "batch"):
    seed_everything(0)
    model = SmallCNN()
    train_loader, val_loader = toy_loaders()
    if recipe is None:  # the course's own lines
        optimizer, scheduler, criterion = torch.optim.Adam(model.parameters(), lr=1e-3), None, nn.CrossEntropyLoss()
    else:
        (optimizer, scheduler), criterion = recipe.build(model, len(train_loader), epochs), recipe.criterion()
    history = ModelTrainer(epoch_step=0, device="cpu").fit(
        model, train_loader, val_loader, criterion, optimizer, epochs, checkpoint=checkpoint, progress=False,
        scheduler=scheduler, scheduler_per=scheduler_per)
    return history, optimizer, scheduler


def test_the_course_recipe_trains_the_same_floats_as_the_course_lines():
    assert COURSE == Recipe("adam", 1e-3, "constant", weight_decay=0.0, label_smoothing=0.0)
    assert _fit(COURSE)[0] == _fit(None)[0]


def test_the_course_recipe_builds_plain_adam_and_no_scheduler():
    optimizer, scheduler = COURSE.build(SmallCNN(), 5, 2)
    assert type(optimizer) is torch.optim.Adam and scheduler is None
    assert len(optimizer.param_groups) == 1 and optimizer.param_groups[0]["weight_decay"] == 0
    assert COURSE.criterion().label_smoothing == 0.0


def test_onecycle_steps_once_per_batch_and_ends_annealed():
    history, optimizer, scheduler = _fit(Recipe("adamw", 1e-2, "onecycle", weight_decay=0.05), epochs=3)
    steps = 3 * math.ceil(36 / 8)  # 36 training images in batches of 8
    assert scheduler.last_epoch == steps and history.epochs == 3
    # the rate each batch trains at; torch's OneCycleLR starts at max_lr / 25 and ends at that / 1e4
    optimizer, scheduler = Recipe("adamw", 1e-2, "onecycle").build(SmallCNN(), 5, 4)  # peak at step 0.3 x 20 - 1
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(1e-2 / 25) and max(rates) == pytest.approx(1e-2)
    assert rates[-1] == pytest.approx(1e-2 / 25 / 1e4)


def test_cosine_warms_up_linearly_then_falls_to_zero():
    model = SmallCNN()
    optimizer, scheduler = Recipe("sgd", 0.1, "cosine", warmup=0.2).build(model, 5, 2)  # 10 steps, 2 of warm-up
    rates = []
    for _ in range(10):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[:3] == pytest.approx([0.05, 0.1, 0.1])  # 1/2, 2/2, then the top of the cosine
    assert rates[2 + 4] == pytest.approx(0.05)  # half way down the 8 cosine steps: cos(pi/2)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_weight_decay_spares_biases_and_normalisation_weights():
    model = SmallCNN()
    optimizer, _ = Recipe("adamw", 1e-3, weight_decay=0.05).build(model, 1, 1)
    decayed, spared = optimizer.param_groups
    assert decayed["weight_decay"] == 0.05 and spared["weight_decay"] == 0.0
    assert {p.ndim for p in decayed["params"]} == {4, 2}  # the conv and linear weights
    assert sum(p.numel() for p in spared["params"]) == 8 + 8 + 8 + 3  # conv bias, BN weight and bias, fc bias


def test_sgd_is_nesterov_with_momentum_0_9_and_label_smoothing_reaches_the_loss():
    optimizer, _ = Recipe("sgd", 0.1).build(SmallCNN(), 1, 1)
    assert optimizer.param_groups[0]["momentum"] == 0.9 and optimizer.param_groups[0]["nesterov"]
    assert Recipe(label_smoothing=0.1).criterion().label_smoothing == 0.1


@pytest.mark.parametrize("kwargs, match", [
    (dict(optimizer="adagrad"), "optimizer must be one of adam, adamw, sgd"),
    (dict(schedule="step"), "schedule must be one of constant, onecycle, cosine"),
    (dict(warmup=0.1), "warmup applies to the onecycle and cosine schedules only"),
    (dict(schedule="onecycle", warmup=0.0), "must be > 0 for onecycle"),
    (dict(momentum=0.9), "momentum applies to sgd only"),
    (dict(label_smoothing=1.0), "label_smoothing must be a number with 0 <= label_smoothing < 1"),
    (dict(weight_decay=-1e-4), "weight_decay must be a number"),
    (dict(lr=0), "learning rate must be a number > 0"),
])
def test_a_bad_recipe_is_refused_naming_what_is_allowed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Recipe(**kwargs)


def test_a_resumed_run_with_a_per_batch_schedule_repeats_the_uninterrupted_one(tmp_path):
    recipe = Recipe("adamw", 1e-2, "cosine", weight_decay=0.01)
    whole = _fit(recipe, epochs=3)[0]
    # the schedule is built for 3 epochs both times; the first run stops after 2
    seed_everything(0)
    model = SmallCNN()
    train_loader, val_loader = toy_loaders()
    optimizer, scheduler = recipe.build(model, len(train_loader), 3)
    trainer = ModelTrainer(epoch_step=0, device="cpu")
    trainer.fit(model, train_loader, val_loader, recipe.criterion(), optimizer, 2, checkpoint=tmp_path / "c.pt",
                progress=False, scheduler=scheduler, scheduler_per="batch")
    model = SmallCNN()
    optimizer, scheduler = recipe.build(model, len(train_loader), 3)
    resumed = trainer.fit(model, train_loader, val_loader, recipe.criterion(), optimizer, 3,
                          checkpoint=tmp_path / "c.pt", progress=False, scheduler=scheduler, scheduler_per="batch")
    assert resumed == whole


def test_fit_refuses_an_unknown_scheduler_step():
    model = SmallCNN()
    train_loader, val_loader = toy_loaders()
    with pytest.raises(ValueError, match="scheduler_per must be 'epoch' or 'batch'"):
        ModelTrainer(device="cpu").fit(model, train_loader, val_loader, None, torch.optim.Adam(model.parameters()), 1,
                                       progress=False, scheduler_per="step")


def test_the_validation_loss_uses_eval_criterion():
    seed_everything(0)
    model = SmallCNN()
    train_loader, val_loader = toy_loaders()
    history = ModelTrainer(epoch_step=0, device="cpu").fit(
        model, train_loader, val_loader, nn.CrossEntropyLoss(label_smoothing=0.5), torch.optim.Adam(model.parameters()),
        1, progress=False, eval_criterion=nn.CrossEntropyLoss())
    plain, _ = ModelTrainer(epoch_step=0, device="cpu").model_evaluate(model, val_loader, nn.CrossEntropyLoss(), 0)
    assert history["val_loss"] == [pytest.approx(plain)]


# ----------------------------------------------------------------- the recipe in a condition

OLD_RECORD = {"model": "mobilenet_v2", "width": 0.5, "resolution": 32, "epochs": 8, "dataset": "fashion_mnist",
              "subset": [6000, 1000], "seed": 0, "augment": "none", "lr": 0.001, "optimizer": "Adam"}


def test_a_record_without_recipe_fields_reads_as_the_courses_constant_adam_on_the_test_split():
    cond = Condition.from_record(OLD_RECORD)
    assert cond.recipe == COURSE and cond.validation == "test"
    assert condition_key(OLD_RECORD) == Condition("mobilenet_v2", 0.5, 32, 8, "fashion_mnist", (6000, 1000),
                                                  augment="none").key
    assert cond.label() == "mobilenet_v2 w0.5 r32 none s0"  # as before the recipe was recorded


@pytest.mark.parametrize("change", [dict(optimizer="adamw"), dict(schedule="cosine"), dict(weight_decay=1e-4),
                                    dict(label_smoothing=0.1), dict(validation="heldout"),
                                    dict(optimizer="sgd", momentum=0.8), dict(schedule="onecycle", warmup=0.1)])
def test_each_recipe_field_and_the_validation_split_is_part_of_a_conditions_identity(change):
    base = Condition.from_record(OLD_RECORD)
    other = Condition.from_record(OLD_RECORD, **change)
    assert other.key != base.key and other.slug() != base.slug() and other.label() != base.label()


def test_a_recommended_held_out_condition_reads_back_from_its_json_record():
    cond = Condition.from_record(OLD_RECORD, validation="heldout", **asdict(RECOMMENDED))
    assert Condition.from_record(json.loads(json.dumps(asdict(cond)))) == cond
    assert cond.recipe == RECOMMENDED


def test_the_command_line_sets_the_recipe_and_a_single_flag_keeps_the_plans_rate(tmp_path, capsys):
    out = str(tmp_path / "r.jsonl")
    args = ["--models", "resnet18", "--widths", "1", "--resolutions", "32", "--epochs", "1", "--dataset", "sample",
            "--out", out, "--dry-run"]
    assert sweep.main([*args, "--recipe", "recommended", "--validation", "heldout"]) == 0
    assert sweep.main([*args, "--optimizer", "sgd", "--schedule", "cosine", "--lr", "0.05"]) == 0
    assert sweep.main(["plan", "lessons", "--profile", "reference", "--out", out, "--dry-run",
                       "--schedule", "onecycle"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("todo")]  # not the data lines
    assert lines[0] == "todo  resnet18 w1 r32 none s0 adamw 0.002 onecycle wd0.05 ls0.1 heldout"
    # flags change the run's default recipe, the recommended one (its decay, smoothing and unaugmented images)
    assert lines[1] == "todo  resnet18 w1 r32 none s0 sgd 0.05 cosine wd0.05 ls0.1"
    assert lines[2] == "todo  vgg16_bn w1 r32 light s0 adam 0.0001 onecycle"  # the plan's own rate for VGG


def test_a_bad_recipe_on_the_command_line_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        sweep.main(["--schedule", "constant", "--warmup", "0.1", "--out", str(tmp_path / "r.jsonl"), "--dry-run"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "warmup applies to the onecycle and cosine schedules only" in err and "Traceback" not in err


def test_networks_without_batch_norm_take_a_tenth_of_the_peak_rate():
    from lecture_utils.recipe import RECOMMENDED, recipe_for
    from lecture_utils.settings import lesson_settings

    assert recipe_for("alexnet").lr == pytest.approx(RECOMMENDED.lr / 10)
    assert recipe_for("vgg16").lr == pytest.approx(2e-4) and recipe_for("vgg16").optimizer == "adamw"
    assert recipe_for("vgg16_bn") is RECOMMENDED and recipe_for("resnet18") is RECOMMENDED
    assert lesson_settings("01", "quick").recipe.lr == pytest.approx(2e-4)
    assert lesson_settings("04", "full").recipe == RECOMMENDED


# --------------------------------------------------------------------------- the optimiser's kernels on CUDA


class _FakeCudaModel:
    """Parameters that report a device (no CUDA here): enough for Recipe.build to choose the optimiser's kernels."""

    def __init__(self, device: str = "cpu") -> None:
        self.params = [torch.nn.Parameter(torch.zeros(3, 3)), torch.nn.Parameter(torch.zeros(3))]
        self.device, self.events = torch.device(device), []

    def parameters(self):
        for p in self.params:
            yield type("P", (), {"device": self.device, "requires_grad": True, "ndim": p.ndim})()

    def to(self, device):
        self.events.append("to")
        self.device = torch.device(device)
        return self


def _recording_optimizers(monkeypatch, events):
    made = {}
    for name in ("Adam", "AdamW", "SGD"):
        real = getattr(torch.optim, name)

        def make(params, _real=real, _name=name, **kwargs):
            events.append("optimizer")
            made[_name] = kwargs
            return _real([torch.nn.Parameter(torch.zeros(1))], lr=kwargs["lr"])  # a real one, for the scheduler

        monkeypatch.setattr(torch.optim, name, make)
    return made


@pytest.mark.parametrize("recipe", [COURSE, RECOMMENDED, Recipe("sgd", 0.1, "cosine")])
def test_the_optimiser_is_fused_when_the_parameters_are_on_cuda(monkeypatch, recipe):
    model = _FakeCudaModel("cuda")
    made = _recording_optimizers(monkeypatch, model.events)
    recipe.build(model, 5, 2)
    assert [kwargs["fused"] for kwargs in made.values()] == [True]


def test_the_model_moves_to_the_device_before_the_optimiser_is_built(monkeypatch):
    # lessons 04-08 create the model on the CPU: build(..., device) moves it first, so the fused kernels are chosen
    model = _FakeCudaModel("cpu")
    made = _recording_optimizers(monkeypatch, model.events)
    RECOMMENDED.build(model, 5, 2, device="cuda")
    assert model.events == ["to", "optimizer"] and made["AdamW"]["fused"] is True


def test_the_optimiser_keeps_torchs_default_kernels_on_the_cpu():
    for recipe in (COURSE, RECOMMENDED, Recipe("sgd", 0.1)):
        assert recipe.build(SmallCNN(), 5, 2)[0].defaults["fused"] is None
        assert recipe.build(SmallCNN(), 5, 2, device="cpu")[0].defaults["fused"] is None


def test_a_fused_optimiser_lets_the_grad_scaler_step_without_reading_the_gpu(monkeypatch):
    # GradScaler.step reads its inf flag with .item() (a host sync on CUDA) unless the optimiser takes the
    # scale itself, as torch's fused ones do; torch's CPU scaler runs the same code, so it is checked here
    reads = []
    real_item = torch.Tensor.item

    def steps(fused):
        seed_everything(0)
        model = nn.Linear(4, 2)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=fused)
        scaler = torch.amp.GradScaler("cpu")
        reads.clear()
        monkeypatch.setattr(torch.Tensor, "item", lambda self: reads.append(1) or real_item(self))
        for _ in range(3):
            optimizer.zero_grad()
            scaler.scale(model(torch.randn(8, 4)).sum()).backward()
            scaler.step(optimizer)
            scaler.update()
        monkeypatch.setattr(torch.Tensor, "item", real_item)
        return len(reads)

    assert steps(fused=None) >= 3  # the multi-tensor step: at least one read per step
    assert steps(fused=True) == 0
