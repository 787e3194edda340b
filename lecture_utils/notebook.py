"""What every lesson notebook calls first, and how it shows code to the reader.

``setup("04")`` silences library warnings (so that nbval compares only the lesson's own output),
seeds every random generator, and prints which run profile the lesson uses and how to change it.
``show_source(obj)`` puts the source of a class or function from this package into the notebook,
so students read the code where they learn it.
"""

from __future__ import annotations

import inspect
import os
import random
import sys
import warnings
from typing import Any

__all__ = ["setup", "show_source", "StopLesson", "stop_here", "in_colab", "quiet_warnings", "REPO_URL", "colab_cell", "colab_badge_url"]

# The repository, named once: every notebook's first cell and Colab badge are made from it
# (tests/test_colab.py checks that they are).
REPO_URL = "https://github.com/cnn-lectures/cnn-lectures"
COLAB_DIR = "/content/cnn-lectures"


def colab_cell() -> str:
    """The source of every notebook's first code cell: in Colab, clone (or update) and install; locally, nothing.

    A failed clone or install stops the cell with the command's own error (its stderr), not a later
    ImportError. A clone from an earlier session is updated with ``git pull --ff-only``; when that
    cannot be done (local edits, no network) the cell says so in one line and runs the copy it has.
    Keeping runs on Google Drive is one switch, set before anything reads the settings.
    """
    return f'''# Colab: fetch the course (or update it) and install lecture_utils; locally this cell does nothing.
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    REPO, DEST = "{REPO_URL}", "{COLAB_DIR}"
    # True: checkpoints and results go to Google Drive and survive a lost runtime (Drive asks for access once)
    KEEP_RUNS_ON_DRIVE = False
    if KEEP_RUNS_ON_DRIVE:
        from google.colab import drive
        drive.mount("/content/drive")
        os.environ["LECTURE_RUNS_DIR"] = "/content/drive/MyDrive/cnn-lectures-runs"

    def run(*command):  # stop here, with the command's own error, if a step fails
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{{' '.join(command)}} failed:\\n{{done.stderr or done.stdout}}")

    if not os.path.isdir(DEST):
        run("git", "clone", "--depth", "1", REPO, DEST)
    else:  # a clone from an earlier session: bring it up to date, so that fixes reach this lesson
        pulled = subprocess.run(["git", "-C", DEST, "pull", "--ff-only", "-q"], capture_output=True, text=True)
        if pulled.returncode != 0:
            why = " ".join((pulled.stderr or pulled.stdout).split())  # git's message, on one line
            print(f"Could not update {{DEST}} (git pull --ff-only: {{why}}); running the copy as it is. "
                  f"For a fresh one, run !rm -rf {{DEST}} and this cell again.")
    run(sys.executable, "-m", "pip", "install", "-q", "-e", DEST)
    sys.path.insert(0, DEST)'''


def colab_badge_url(notebook: str) -> str:
    """The "Open in Colab" link of `notebook` (a file name in notebooks/)."""
    path = REPO_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{path}/blob/main/notebooks/{notebook}"


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules


def quiet_warnings() -> None:
    """Hide other libraries' warnings (deprecations...) so checked cells stay stable; keep this package's own.

    A student must still see what ``lecture_utils`` warns about (an unreadable image, a validation split
    without some class, a cut-off results line): every :class:`lecture_utils.LectureWarning` is shown.
    """
    from lecture_utils import LectureWarning

    warnings.filterwarnings("ignore")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # also for subprocesses and DataLoader workers
    warnings.filterwarnings("default", category=LectureWarning)


def _seed(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy comes with torch
        pass
    import torch

    torch.manual_seed(seed)


def setup(lesson: str, seed: int = 0, profile: str | None = None) -> Any:
    """Prepare a lesson: quiet warnings, seed everything, print and return its run settings.

    ``lesson`` is the two-digit lesson number ("01" ... "09"); ``profile`` overrides
    ``LECTURE_PROFILE`` ("quick" or "full").
    """
    quiet_warnings()
    from lecture_utils.settings import lesson_settings

    cfg = lesson_settings(lesson, profile=profile)
    _seed(seed)
    try:  # inline figures at a readable size, if matplotlib is there
        import matplotlib

        matplotlib.rcParams["figure.dpi"] = 100
    except ImportError:  # pragma: no cover
        pass
    res = (
        f"{cfg.resolution} px"
        if len(cfg.resolutions) <= 1
        else "{" + ", ".join(str(r) for r in cfg.resolutions) + "} px"
    )
    from lecture_utils.device import choose_precision

    if cfg.lesson == "09" and cfg.profile == "quick":  # it reads a stored run and retrains one of its conditions
        print(f"Lesson 09: profile 'quick' on {cfg.device}: {_stored_09_line()}, {choose_precision(cfg.device)}.")
    else:
        print(
            f"Lesson {cfg.lesson}: profile '{cfg.profile}' on {cfg.device}: data '{cfg.dataset}', {res}, "
            f"{cfg.epochs} epoch(s), batch {cfg.batch_size}, {choose_precision(cfg.device)}."
        )
    other = "full" if cfg.profile == "quick" else "quick"
    print(
        f"To change it, set LECTURE_PROFILE={other} before starting Jupyter "
        f"(or run os.environ['LECTURE_PROFILE'] = '{other}' before this cell)."
    )
    for line in _full_profile_lines(cfg):
        print(line)
    return cfg


def _stored_09_line() -> str:
    """What lesson 09's quick profile reads: its stored reference run, and the condition it retrains live."""
    from lecture_utils.experiment.plans import lesson09_profile_plan, plan_batch_size

    plan = lesson09_profile_plan("reference")
    grid = plan["grid"]
    resolutions = ", ".join(str(r) for r in dict.fromkeys(c.resolution for c in grid))
    return (f"reads the stored reference run ('{grid[0].dataset}', {{{resolutions}}} px, {grid[0].epochs} epoch(s), "
            f"batch {plan_batch_size('lesson09', 'reference')}) and retrains its cheapest condition live")


def _full_profile_lines(cfg: Any) -> list[str]:
    """What the full profile trains and how long it should take on a GPU; where its checkpoints go.

    Lesson 09's full profile trains its whole plan (hours); on a GPU its first line says what "Run all" starts.
    """
    from lecture_utils.estimate import UNCERTAINTY, format_minutes, lesson_seconds
    from lecture_utils.settings import lesson_settings, runs_dir

    if cfg.profile == "full":
        full = cfg
    else:
        try:
            full = lesson_settings(cfg.lesson, "full")
        except ValueError as exc:  # a bad LECTURE_FULL_SHRINK concerns the full profile only: say so, go on
            return [f"Full profile: not estimated: {exc} (it only applies to the full profile)."]
    lines = []
    how = (f"estimated, +-{UNCERTAINTY:.0%}, with a checkpoint per epoch and the start-up; "
           "lecture_utils.estimate says how")
    if full.model:
        t4, h100 = lesson_seconds(full, "t4"), lesson_seconds(full, "h100")
        data = (f"all of {full.dataset}" if full.train_subset is None
                else f"{full.train_subset} images per class of {full.dataset} (LECTURE_FULL_SHRINK)")
        lines.append(f"Full profile: {full.model} on {data}, {full.resolution} px, {full.epochs} "
                     f"epoch{'s' * (full.epochs != 1)}: about {format_minutes(t4)} on a Colab T4, "
                     f"{format_minutes(h100)} on an H100-class GPU ({how}).")
    elif cfg.lesson == "09":
        lines += _plan09_lines(cfg, full, how)
    if cfg.profile == "full":
        where = runs_dir()
        lines.append(f"Checkpoints after every epoch go to {where} (LECTURE_RUNS_DIR); rerunning resumes from them.")
        if in_colab() and not str(where).startswith("/content/drive"):
            lines.append("In Colab that folder is lost with the runtime: to keep it, set KEEP_RUNS_ON_DRIVE = True in "
                         "the first cell and run it again (it runs drive.mount('/content/drive') and sets "
                         "LECTURE_RUNS_DIR=/content/drive/MyDrive/cnn-lectures-runs), then this cell.")
    return lines


def _plan09_lines(cfg: Any, full: Any, how: str) -> list[str]:
    """Lesson 09's full plan: its conditions and estimated time, and, on the full profile, what "Run all" does."""
    from lecture_utils.experiment import plans
    from lecture_utils.estimate import format_minutes

    conditions = plans.lesson09_conditions("full")
    parts = plans.session_parts(conditions)
    total = sum(seconds for _, seconds in parts)
    res = ", ".join(str(r) for r in full.resolutions)
    lines = [f"Full profile: lesson 09's plan, {len(conditions)} conditions on {conditions[0].dataset} at {{{res}}} px: about "
             f"{format_minutes(total)} on a Colab T4 in {len(parts)} part{'s' * (len(parts) != 1)} of at most "
             f"{plans.SESSION_HOURS:g} h ({how})."]
    if cfg.profile == "full":
        first, seconds = parts[0]
        lines.insert(0, f"'Run all' on this GPU trains part 1 of lesson 09's plan: {len(first)} conditions, about "
                        f"{format_minutes(seconds)} on a Colab T4, before the lesson's results appear; it resumes "
                        "where it stopped when rerun. To read the stored reference run instead, set "
                        "LECTURE_PROFILE=quick.")
    return lines


class StopLesson(Exception):
    """Ends a "Run all" at this cell with a message, shown without a traceback in Jupyter."""

    def _render_traceback_(self) -> list[str]:  # IPython shows these lines instead of a traceback
        return [str(self)]


def stop_here(message: str) -> None:
    """Stop the notebook at this cell with `message` (e.g. a long run continues in the next session)."""
    raise StopLesson(message)


def show_source(obj: Any) -> None:
    """Show the source code of a class or function as a highlighted block in the notebook."""
    try:
        src = inspect.getsource(obj)
    except (TypeError, OSError) as exc:
        raise ValueError(
            f"cannot show the source of {obj!r}: only classes and functions defined in Python files are allowed"
        ) from exc
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        display(Markdown(f"```python\n{src}```"))
    else:  # a plain Python session: print the text
        print(src)
