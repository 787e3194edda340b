"""Headless Chromium from Python: a page's DOM after its scripts ran, a screenshot, a PDF.

Used by ``make handouts`` (the PDFs) and by the tests of the decks and handouts. Each call runs in a
profile of its own, so that several can run at once (pytest-xdist), with --no-sandbox as root, and
offline (no host name resolves): the pages are local files and must not need the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

def find_chromium() -> str | None:
    """Headless Chromium's command: $CHROMIUM, or chromium / chromium-browser / google-chrome on PATH."""
    names = [os.environ.get("CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]
    return next((shutil.which(n) for n in names if n and shutil.which(n)), None)


def run(args: Sequence[str], url: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Headless Chromium on `url` with `args`, in a profile of its own (so that several can run at once),
    offline: no host name resolves, so a page that needs a CDN shows it."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no headless Chromium: install it (Debian: apt-get install chromium)")
    root = getattr(os, "geteuid", lambda: 1)() == 0
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        cmd = [exe, "--headless", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
               "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
               *(["--no-sandbox"] if root else []), *args, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def pdf(page: Path, out: Path, budget_ms: int = 20000) -> Path:
    """Print `page` (a file) to `out` as Chromium prints it, without header or footer lines."""
    done = run(["--no-pdf-header-footer", f"--virtual-time-budget={budget_ms}",
                f"--print-to-pdf={out.resolve()}"], page.resolve().as_uri())
    if not out.exists() or out.stat().st_size == 0:
        raise RuntimeError(f"Chromium printed no {out}: {done.stderr[-2000:]}")
    return out


def screenshot(url: str, png: Path, size: tuple[int, int] = (1280, 800), budget_ms: int = 8000) -> Path:
    """A PNG of `url` in a window of `size` after `budget_ms` of virtual time (its scripts ran)."""
    run([f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={budget_ms}", f"--screenshot={png.resolve()}"],
        url)
    return png


def dump_dom(url: str, budget_ms: int = 8000) -> str:
    """The DOM of `url` after its scripts ran (`budget_ms` of virtual time)."""
    return run(["--dump-dom", f"--virtual-time-budget={budget_ms}"], url).stdout
