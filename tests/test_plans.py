"""Lesson 09's full plan in parts that fit a Colab session, each resumed from the results file."""

from __future__ import annotations

import pytest

from lecture_utils.experiment import plans, sweep
from lecture_utils.experiment.conditions import expand_grid
from lecture_utils.settings import dataset_sizes
from test_sweep import fake_runner


def test_parts_are_cut_in_order_within_the_hours_given():
    conditions = expand_grid(["mobilenet_v2"], [1.0, 0.35], [224, 96], 10, "fashion_mnist")
    seconds = [plans.condition_seconds(c) for c in conditions]
    hours = (seconds[0] + seconds[1]) / 3600  # room for the first two conditions exactly
    parts = plans.session_parts(conditions, hours=hours)
    assert [c for part, _ in parts for c in part] == conditions  # every condition once, in order
    assert all(total <= hours * 3600 + 1e-6 for _, total in parts)
    assert [total for _, total in parts] == pytest.approx(
        [sum(seconds[i] for i, c in enumerate(conditions) if c in part) for part, _ in parts])


def test_a_condition_longer_than_a_session_gets_a_part_of_its_own():
    conditions = expand_grid(["mobilenet_v2"], [1.0], [224, 96], 10, "fashion_mnist")
    parts = plans.session_parts(conditions, hours=1e-6)
    assert [len(part) for part, _ in parts] == [1, 1]


def test_full_lesson09_plan_fits_colab_sessions():
    conditions = plans.lesson09_conditions("full")
    parts = plans.session_parts(conditions)
    # grid 60; ablation 5 variants x 2 widths x 2 resolutions x 3 seeds, less the grid's 8; augmentation
    # 2 models x 3 augmentations x 3 seeds, less the 2 light seed-0 ones of the grid and 4 of the ablation
    assert sum(len(part) for part, _ in parts) == 60 + (60 - 8) + (18 - 6) == 124
    assert {(c.recipe, c.validation) for c in conditions} == {(plans.RECOMMENDED, "heldout")}
    assert all(total <= plans.SESSION_HOURS * 3600 for _, total in parts)


def test_subsets_count_ten_classes():
    assert dataset_sizes("fashion_mnist") == (60000, 10000)
    assert dataset_sizes("fashion_mnist", (100, 20)) == (1000, 200)
    assert dataset_sizes("fashion_mnist", 10_000) == (60000, 10000)  # never more than there is
    with pytest.raises(ValueError, match="allowed: sample, fashion_mnist"):
        dataset_sizes("mnist")


def test_each_run_trains_the_next_unfinished_part_and_says_what_is_left(tmp_path):
    conditions = expand_grid(["mobilenet_v2"], [1.0, 0.35], [96], 1, "fashion_mnist")
    hours = plans.condition_seconds(conditions[0]) / 3600 * 1.01  # one condition per part
    out, said, calls = tmp_path / "full.jsonl", [], []
    records, complete = sweep.run_session_part(out, conditions, hours=hours, say=said.append,
                                               runner=fake_runner(calls), progress=False)
    assert (len(records), complete, calls) == (1, False, conditions[:1])
    assert said[0].startswith("part 1 of 2: 1 conditions") and said[0].endswith("0 done <- this run")
    assert "Run again" in said[-1]
    said.clear()
    records, complete = sweep.run_session_part(out, conditions, hours=hours, say=said.append,
                                               runner=fake_runner(calls), progress=False)
    assert (len(records), complete, calls) == (2, True, conditions)
    assert said[0].endswith("1 done") and said[1].endswith("0 done <- this run")


def test_recipe_choice_pairs_each_recipe_on_the_same_networks_seeds_and_held_out_split():
    from lecture_utils.recipe import RECIPES

    conditions = plans.recipe_choice_plan()
    assert len(conditions) == 2 * 3 * len(RECIPES)
    assert {c.validation for c in conditions} == {"heldout"}
    assert {c.recipe for c in conditions} == set(RECIPES.values())
    # every (network, seed) is trained once with each recipe, everything else equal
    cells = {}
    for c in conditions:
        cells.setdefault((c.model, c.width, c.seed, c.resolution, c.epochs, c.subset, c.augment), []).append(c.recipe)
    assert len(cells) == 6 and all(sorted(map(str, r)) == sorted(map(str, RECIPES.values())) for r in cells.values())


def test_stored_recipe_choice_holds_its_plan_and_the_readme_quotes_it(capsys):
    from pathlib import Path

    from lecture_utils.experiment import results
    from lecture_utils.experiment.conditions import condition_key

    records = results.load_reference("recipe-choice")
    assert sorted(condition_key(r) for r in records) == sorted(c.key for c in plans.recipe_choice_plan())
    assert all(r["heldout"] and 0 < r["test_acc"] < 1 and r["commit"] and r["command"] for r in records)
    assert results.main(["recipe-choice"]) == 0
    printed = capsys.readouterr().out
    readme = (Path(results.REFERENCE_DIR) / "README.md").read_text()
    assert printed.strip() in readme


def test_lesson09_reference_plan_is_the_recipe_on_the_held_out_split_with_the_new_variant():
    plan = plans.lesson09_profile_plan("reference")
    conditions = plans.lesson09_conditions("reference")
    assert {(c.recipe, c.validation, c.epochs, c.subset) for c in conditions} == {
        (plans.RECOMMENDED, "heldout", plans.REFERENCE_09_EPOCHS, (500, None))}
    assert {c.model for c in plan["ablation"]} == {"mobilenet_v2", "mobilenet_v2+leaky", "mobilenet_v2+branch",
                                                   "mobilenet_v2+proj", "c_mobilenet_v2"}
    assert {c.seed for c in plan["ablation"]} == {0, 1, 2, 3, 4}  # 3 seeds need t > 4.30 for 95 %, 5 need 2.78
    assert {c.seed for c in plan["augment"]} == {0, 1, 2}
    baseline = [c for c in plan["grid"] if c.model == "small_cnn"]
    assert [(c.resolution, c.seed) for c in baseline] == [(28, 0), (28, 1), (28, 2)]
    assert plans.plan_batch_size("lesson09", "reference") == 64 and plans.plan_batch_size("zoo") == 192


def test_zoo_plan_gives_every_network_the_same_budget_and_three_seeds_to_the_cheap_ones():
    from lecture_utils.experiment.conditions import build_model
    from lecture_utils.profile import conv_linear_macs
    from lecture_utils.recipe import recipe_for

    entries = plans.zoo_plan()
    assert {lesson for lesson, _ in entries} == {"01", "03", "04", "05", "06", "07", "08", "--"}  # not VGG16
    seeds: dict[tuple, set] = {}
    for lesson, c in entries:
        assert (c.recipe, c.validation, c.epochs, c.augment) == (recipe_for(c.model), "heldout", 5, "none")
        seeds.setdefault((lesson, c.model, c.width, c.resolution, c.subset), set()).add(c.seed)
    assert all(key[4] == (1000, None) for key in seeds)
    for (_, model, width, resolution, _), s in seeds.items():  # three seeds for every network under 10 M MACs
        if conv_linear_macs(build_model(model, width, 10), resolution) < 10e6:
            assert s == {0, 1, 2}, (model, width, resolution)


def test_grid_scale_plan_trains_what_the_zoo_has_not_on_the_zoo_protocol():
    from lecture_utils.experiment.plans import grid_scale_conditions, grid_scale_plan, plan_batch_size, zoo_plan

    every = grid_scale_conditions()
    assert len(every) == 3 * 4 * 3  # models x widths x 64/48/32 px
    zoo = {c.key for _, c in zoo_plan("zoo-scale")}
    shared = [c for c in every if c.key in zoo]
    # the zoo trained MobileNet v1 0.5 at 64 px and MobileNetV2 0.5 at 64 and 32 px with the same protocol
    assert sorted((c.model, c.width, c.resolution) for c in shared) == [
        ("mobilenet_v1", 0.5, 64), ("mobilenet_v2", 0.5, 32), ("mobilenet_v2", 0.5, 64)]
    todo = grid_scale_plan()
    first = [c for c in todo if c.seed == 0]
    assert len(first) == len(every) - 3 and not {c.key for c in todo} & zoo
    assert {c.key for c in first} | {c.key for c in shared} == {c.key for c in every}
    # then seeds 1 and 2 of the three models at width 0.35 and 32 px, last
    again = todo[len(first):]
    assert [(c.model, c.width, c.resolution, c.seed) for c in again] == [
        (m, 0.35, 32, s) for s in (1, 2) for m in ("mobilenet_v1", "mobilenet_v2", "c_mobilenet_v2")]
    assert [(c.model, c.width, c.resolution) for c in todo[:2]] == [("c_mobilenet_v2", 0.5, 64),
                                                                      ("c_mobilenet_v2", 0.5, 32)]
    assert {(c.epochs, c.subset, c.augment, c.validation) for c in every} == {(3, None, "none", "heldout")}
    assert plan_batch_size("grid-scale") == plan_batch_size("zoo-scale") == 128
