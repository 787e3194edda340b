"""Shared test settings.

The tests' forward passes are small: one compute thread runs them as fast as two, and with
pytest-xdist's two workers on two cores it keeps them from fighting over the cores (which made
the model tests three times slower). `make test` also sets OMP_NUM_THREADS=1 for the notebooks.
"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_compute_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder on a read-only tmpfs: creating a file there fails even for root.

    Skips where no such mount can be made (not root, no mount permission in a container).
    """
    import shutil
    import subprocess

    target = tmp_path / "readonly"
    target.mkdir()
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount command here to make a read-only folder")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(target)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a read-only tmpfs here: {made.stderr.strip()}")
    try:
        try:
            (target / "probe").touch()
        except OSError:
            pass
        else:
            pytest.skip("the tmpfs mounted read-only still takes files")
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True)
