"""The prepared GPU check (scripts/device_check.sh, `make device-check`): one command that a GPU lent for a few
minutes runs from a copy of the working tree, with no network and no virtual environment; sized under 8 minutes."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "device_check.sh"
# what the lent machine's python lacks of this package's dependencies (its package list: docs/gpu.md)
ABSENT_THERE = ("kornia", "ptflops", "torchinfo", "nbval", "ipywidgets", "IPython", "jupyterlab", "nbconvert")
BLOCKER = f"""import sys
class _Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {set(ABSENT_THERE)!r}:
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, _Absent())
"""


def _check(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OUT": str(tmp_path / "out"), "CHECK_PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=full_env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_without_cuda_the_check_says_so_in_one_line_and_exits_0(tmp_path):
    done = _check(tmp_path)
    assert done.returncode == 0, done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "no CUDA device here" in lines[0]
    assert not (tmp_path / "out" / "gpu-check.json").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")
def test_asking_for_cuda_without_it_is_one_line_and_exit_2(tmp_path):
    done = _check(tmp_path, "--device", "cuda")
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "CUDA is not available" in lines[0]


def test_the_check_runs_without_the_packages_the_gpu_machine_lacks_and_writes_its_report_under_out(tmp_path):
    (tmp_path / "block").mkdir()
    (tmp_path / "block" / "sitecustomize.py").write_text(BLOCKER)
    done = _check(tmp_path, "--device", "cpu", "--steps", "1", "--lessons", "06", "--no-plan",
                  PYTHONPATH=str(tmp_path / "block"), OMP_NUM_THREADS="1")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "out" / "gpu-check.json").read_text())
    assert [row["lesson"] for row in report["lessons"]] == ["06"]
    assert "lesson 06" in (tmp_path / "out" / "gpu-check.log").read_text()


def test_a_python_without_torch_is_one_line_naming_what_it_lacks(tmp_path):
    python = tmp_path / "bare-python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")  # -S: no site-packages, so no torch
    python.chmod(0o755)
    done = _check(tmp_path, CHECK_PYTHON=str(python))
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "lacks torch" in done.stderr and not done.stdout


def test_make_device_check_installs_nothing():
    dry = subprocess.run(["make", "--no-print-directory", "-n", "device-check"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and dry.stdout.strip() == "bash scripts/device_check.sh"


def test_the_working_tree_and_the_carried_data_fit_the_64_mib_a_lent_machine_takes():
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, timeout=60)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    tree = sum((REPO / name).stat().st_size for name in listed.stdout.decode().split("\0")
               if name and (REPO / name).is_file())
    data = 30_000_000  # Fashion-MNIST's four .gz files (29.9 MB)
    assert tree + data < 64 * 2**20 - 8 * 2**20  # with 8 MiB to spare for what the tree grows by


def test_the_whole_check_is_estimated_under_8_minutes_on_one_h100():
    spec = importlib.util.spec_from_file_location("device_check_budget", REPO / "scripts" / "device_check_budget.py")
    budget = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(budget)
    seconds = budget.check_seconds()
    assert 60 < seconds < budget.LIMIT_S == 480
