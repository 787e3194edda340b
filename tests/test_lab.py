"""Facts about `make lab`: the command it runs, and that this command serves the lessons (as root too)."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment running the tests: `make lab` uses the same one
NO_DISPLAY = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def lab_command(env: dict | None = None, **make_vars: str) -> list[str]:
    """The command `make lab` runs, from `make lab-command` (which installs nothing)."""
    args = ["make", "-s", "--no-print-directory", "lab-command", f"BIN={BIN}"]
    args += [f"{k}={v}" for k, v in make_vars.items()]
    done = subprocess.run(args, cwd=ROOT, env=NO_DISPLAY if env is None else env,
                          capture_output=True, text=True, timeout=30, check=True)
    return shlex.split(done.stdout)


@needs_make
def test_lab_passes_allow_root_only_to_root():
    assert "--allow-root" in lab_command(LAB_UID="0")
    assert "--allow-root" not in lab_command(LAB_UID="1000")


@needs_make
def test_lab_opens_no_browser_without_a_display_except_on_macos():
    assert "--no-browser" in lab_command(LAB_OS="Linux")
    assert "--no-browser" not in lab_command(env={**NO_DISPLAY, "DISPLAY": ":0"}, LAB_OS="Linux")
    assert "--no-browser" not in lab_command(env={**NO_DISPLAY, "WAYLAND_DISPLAY": "wayland-0"}, LAB_OS="Linux")
    assert "--no-browser" not in lab_command(LAB_OS="Darwin")


@needs_make
def test_lab_command_is_jupyter_lab_on_the_notebooks():
    cmd = lab_command()
    assert cmd[:2] == [str(BIN / "jupyter"), "lab"] and cmd[-1] == "notebooks/"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


@needs_make
def test_make_lab_command_serves_the_lessons_and_this_checkouts_kernel(tmp_path):
    pytest.importorskip("jupyterlab", reason="jupyter lab is not installed")
    if not (BIN / "jupyter-lab").exists():
        pytest.skip(f"jupyter lab is not installed in {BIN}")
    port, token = _free_port(), secrets.token_hex(16)
    # a throw-away config and runtime dir: the test leaves no server files, settings or workspaces behind
    env = {**NO_DISPLAY, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    cmd = lab_command(env) + [f"--port={port}", "--port-retries=0", "--ServerApp.ip=127.0.0.1",
                              f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False"]
    log = tmp_path / "lab.log"
    base = f"http://127.0.0.1:{port}"
    with open(log, "wb") as sink:
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 45
        while True:
            assert server.poll() is None, f"the server stopped:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer in 45 s:\n{log.read_text()[-3000:]}"
            try:
                status, specs = _get(f"{base}/api/kernelspecs", token)
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
        # one kernel, this checkout's own: the lab's default python3 runs the environment's Python (no kernel
        # registered in the user's folder, which a second clone would overwrite), and the notebooks ask for it
        assert status == 200 and specs["default"] == "python3"
        argv0 = Path(specs["kernelspecs"]["python3"]["spec"]["argv"][0])
        # "python" is the server's own interpreter (jupyter_client substitutes sys.executable); an absolute path
        # must be this checkout's: a kernel of another checkout's environment fails here
        assert str(argv0) in ("python", "python3") or argv0.resolve() == (BIN / "python").resolve(), argv0
        assert json.loads((ROOT / "notebooks" / "01_AlexNet.ipynb").read_text())["metadata"]["kernelspec"]["name"] == "python3"
        status, listing = _get(f"{base}/api/contents/", token)  # the server's root is notebooks/
        names = {item["name"] for item in listing["content"]}
        assert status == 200 and "01_AlexNet.ipynb" in names and "09b_MobileNetV2_vs_C_MobileNetV2.ipynb" in names
        # the URL to open (a token passed in is masked; the one `make lab` generates is printed in full)
        assert f"{base}/lab?token=" in log.read_text()
        with pytest.raises(urllib.error.HTTPError, match="403"):  # and it asks for the token
            _get(f"{base}/api/contents/", "wrong-token")
        shutdown = urllib.request.Request(f"{base}/api/shutdown", method="POST",
                                          headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(shutdown, timeout=5).close()
        assert server.wait(timeout=15) == 0
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
