"""Tests of lecture_utils._util: the place a run will write to is tried out before it starts."""

from __future__ import annotations

import os

import pytest

from lecture_utils._util import check_writable_file


def test_writable_path_passes_and_leaves_only_its_folder(tmp_path):
    path = tmp_path / "runs" / "a.pt"
    assert check_writable_file(path, "checkpoint") == path
    assert (tmp_path / "runs").is_dir() and list((tmp_path / "runs").iterdir()) == []


def test_path_below_a_regular_file_is_refused_even_for_root(tmp_path):
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    with pytest.raises(ValueError, match=r"notes.txt is a file, not a folder"):
        check_writable_file(tmp_path / "notes.txt" / "runs" / "a.pt", "checkpoint")


def test_a_directory_is_refused_as_a_file(tmp_path):
    with pytest.raises(ValueError, match=r"results file .* is a directory; give a file path, e.g. .*results.jsonl"):
        check_writable_file(tmp_path, "results file")


def test_read_only_mount_is_refused(readonly_dir):
    with pytest.raises(ValueError, match=r"cannot write the checkpoint .*Read-only file system"):
        check_writable_file(readonly_dir / "a.pt", "checkpoint")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="permission bits do not stop root")
def test_folder_without_write_permission_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ValueError, match=r"Permission denied"):
            check_writable_file(locked / "a.pt", "checkpoint")
    finally:
        locked.chmod(0o700)

