"""The Colab path: every notebook starts with the same setup cell and badge, made from the one
repository URL, and that cell, run as Colab runs it, installs the course from a clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import pytest

from lecture_utils.notebook import COLAB_DIR, REPO_URL, colab_badge_url, colab_cell

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_starts_with_the_colab_cell(path):
    first_code = next(c for c in _cells(path) if c["cell_type"] == "code")
    assert "".join(first_code["source"]) == colab_cell()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_badge_opens_this_notebook(path):
    text = "".join("".join(c["source"]) for c in _cells(path) if c["cell_type"] == "markdown")
    links = [word for word in text.replace("(", " ").replace(")", " ").split()
             if word.startswith("https://colab.research.google.com/github/")]
    assert links == [colab_badge_url(path.name)]


def test_colab_cell_does_nothing_outside_colab():
    namespace: dict = {}
    before = list(sys.path)
    exec(colab_cell(), namespace)  # noqa: S102 - the notebooks' own first cell
    assert sys.path == before and "REPO" not in namespace


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_colab_cell_installs_the_course_from_a_clone(tmp_path):
    """A fresh environment, a fake google.colab module, the cell against a local clone (file URL)."""
    if _git("rev-parse", "--is-inside-work-tree", cwd=ROOT) != "true":
        pytest.skip("not a git checkout")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # torch & co. (gigabytes) come from this environment, as Colab has them preinstalled; pip itself too
    (site / "colab_preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    dest = tmp_path / "content" / "cnn-lectures"
    cell = colab_cell().replace(REPO_URL, (ROOT.as_uri())).replace(COLAB_DIR, str(dest))
    script = textwrap.dedent("""
        import sys, types
        sys.modules["google.colab"] = types.ModuleType("google.colab")  # what Colab's runtime has imported
        exec(open(sys.argv[1]).read())
        import lecture_utils
        from lecture_utils.settings import lesson_settings
        print(lecture_utils.__file__)
        print(lesson_settings("04", "quick").model)
        """)
    (tmp_path / "cell.py").write_text(cell)
    (tmp_path / "play_colab.py").write_text(script)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1")
    done = subprocess.run([str(python), str(tmp_path / "play_colab.py"), str(tmp_path / "cell.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    where, model = done.stdout.split()[-2:]
    assert Path(where).is_relative_to(dest) and model == "resnet18"
    assert _git("rev-parse", "HEAD", cwd=dest) == _git("rev-parse", "HEAD", cwd=ROOT)


def test_colab_cell_stops_with_the_clone_error(tmp_path):
    cell = colab_cell().replace(REPO_URL, (tmp_path / "no-such-repo").as_uri()).replace(COLAB_DIR, str(tmp_path / "d"))
    namespace = {}
    sys.modules["google.colab"] = type(sys)("google.colab")
    try:
        with pytest.raises(RuntimeError, match=r"(?s)git clone .* failed:\n.*(does not appear to be a git repository|Could not read)"):
            exec(cell, namespace)  # noqa: S102
    finally:
        del sys.modules["google.colab"]


def _run_cell_against(tmp_path: Path, origin: Path, dest: Path, monkeypatch, flag: bool = False) -> list:
    """Run the first cell as Colab would, against `origin`; pip is recorded, not run (the clone is no project)."""
    cell = colab_cell().replace(REPO_URL, origin.as_uri()).replace(COLAB_DIR, str(dest))
    if flag:
        cell = cell.replace("KEEP_RUNS_ON_DRIVE = False", "KEEP_RUNS_ON_DRIVE = True")
    real_run, pip = subprocess.run, []

    def run(command, *args, **kwargs):
        if "pip" in command:
            pip.append(command)
            return subprocess.CompletedProcess(command, 0, "", "")
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", run)
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(cell, {})  # noqa: S102 - the notebooks' own first cell
    return pip


def _origin_with_one_commit(tmp_path: Path) -> Path:
    origin = tmp_path / "origin"
    origin.mkdir()
    _git("init", "-q", "-b", "main", cwd=origin)
    (origin / "lesson.txt").write_text("first\n")
    _git("add", "lesson.txt", cwd=origin)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first", cwd=origin)
    return origin


def test_colab_cell_updates_a_clone_from_an_earlier_session(tmp_path, monkeypatch, capsys):
    origin = _origin_with_one_commit(tmp_path)
    dest = tmp_path / "content" / "cnn-lectures"
    _git("clone", "-q", origin.as_uri(), str(dest), cwd=tmp_path)
    (origin / "lesson.txt").write_text("fixed\n")  # a fix pushed after the student's first session
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "fix", cwd=origin)
    pip = _run_cell_against(tmp_path, origin, dest, monkeypatch)
    assert (dest / "lesson.txt").read_text() == "fixed\n"
    assert len(pip) == 1 and "Could not update" not in capsys.readouterr().out


def test_colab_cell_says_in_one_line_when_the_clone_cannot_be_updated(tmp_path, monkeypatch, capsys):
    origin = _origin_with_one_commit(tmp_path)
    dest = tmp_path / "content" / "cnn-lectures"
    _git("clone", "-q", origin.as_uri(), str(dest), cwd=tmp_path)
    for repo, text in ((origin, "upstream\n"), (dest, "student's edit\n")):  # the two histories diverge
        (repo / "lesson.txt").write_text(text)
        _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "edit", cwd=repo)
    pip = _run_cell_against(tmp_path, origin, dest, monkeypatch)
    out = capsys.readouterr().out
    assert out.startswith(f"Could not update {dest} (git pull --ff-only: ") and out.count("\n") == 1
    assert f"run !rm -rf {dest} and this cell again" in out
    assert (dest / "lesson.txt").read_text() == "student's edit\n" and len(pip) == 1  # the copy it has still runs


def test_colab_cell_keeps_runs_on_drive_when_asked_before_the_settings_are_read(tmp_path, monkeypatch):
    origin = _origin_with_one_commit(tmp_path)
    mounted = []
    drive = type(sys)("google.colab.drive")
    drive.mount = mounted.append
    monkeypatch.setitem(sys.modules, "google.colab.drive", drive)
    monkeypatch.delenv("LECTURE_RUNS_DIR", raising=False)
    _run_cell_against(tmp_path, origin, tmp_path / "content" / "cnn-lectures", monkeypatch, flag=True)
    assert mounted == ["/content/drive"]
    assert os.environ["LECTURE_RUNS_DIR"] == "/content/drive/MyDrive/cnn-lectures-runs"
    monkeypatch.delenv("LECTURE_RUNS_DIR")
    # the switch comes before the clone and the install, so a lesson's setup (the next cell) reads it
    cell = colab_cell()
    assert cell.index("KEEP_RUNS_ON_DRIVE = False") < cell.index("drive.mount") < cell.index('"git", "clone"')


def test_pyproject_asks_for_the_torch_that_kornia_needs():
    import tomllib
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.version import Version

    ours = next(Requirement(d) for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
                if Requirement(d).name == "torch")
    theirs = next(Requirement(d) for d in requires("kornia") if Requirement(d).name == "torch" and not Requirement(d).marker)
    lowest = lambda spec: min(Version(s.version) for s in spec if s.operator == ">=")  # noqa: E731
    assert lowest(ours.specifier) >= lowest(theirs.specifier)
