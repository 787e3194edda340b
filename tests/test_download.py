"""Fashion-MNIST arrives without a code edit: found where it is, else downloaded once through
torchvision, here from a local HTTP server standing in for its mirror (no network needed)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import socket
import struct
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from torchvision import datasets as tv_datasets

from lecture_utils import datasets

FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 20),
         "val": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10)}


def _idx(array: np.ndarray) -> bytes:
    code = {1: 0x801, 3: 0x803}[array.ndim]
    return struct.pack(f">I{array.ndim}I", code, *array.shape) + array.astype(np.uint8).tobytes()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror of tiny Fashion-MNIST files; torchvision is pointed at it, the system copy hidden."""
    served = tmp_path / "mirror"
    served.mkdir()
    rng = np.random.default_rng(0)
    resources = []
    for images_name, labels_name, n in FILES.values():
        for name, array in ((images_name, rng.integers(0, 256, (n, 28, 28))), (labels_name, np.arange(n) % 10)):
            data = gzip.compress(_idx(array))
            (served / f"{name}.gz").write_bytes(data)
            resources.append((f"{name}.gz", hashlib.md5(data).hexdigest()))
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(tv_datasets.FashionMNIST, "mirrors", [f"http://127.0.0.1:{server.server_address[1]}/"])
    monkeypatch.setattr(tv_datasets.FashionMNIST, "resources", resources)
    monkeypatch.setattr(datasets, "SYSTEM_FASHION_MNIST_DIRS", [])
    yield served
    server.shutdown()
    server.server_close()


def test_download_fetches_fashion_mnist_once_and_says_so(mirror, tmp_path, capsys):
    root = tmp_path / "data"
    train = datasets.get_dataset("fashion_mnist", "train", root=root, download=True)
    val = datasets.get_dataset("fashion_mnist", "val", root=root, download=True)
    assert (len(train), len(val)) == (20, 10)
    assert datasets.dataset_targets(train)[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    out = capsys.readouterr().out
    assert out.count("downloading it once") == 1 and len(out.splitlines()) == 1
    for path in mirror.iterdir():  # the server's files are gone: the second call reads the local copy
        path.unlink()
    assert len(datasets.get_dataset("fashion_mnist", "train", root=root, download=True)) == 20


def test_without_download_nothing_is_fetched(mirror, tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        datasets.get_dataset("fashion_mnist", "train", root=tmp_path / "data")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_failed_download_says_what_to_do(mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(tv_datasets.FashionMNIST, "mirrors", [f"http://127.0.0.1:{_closed_port()}/"])
    with pytest.raises(FileNotFoundError, match=r"download failed .*copy the four raw files.*apt-get install"):
        datasets.get_dataset("fashion_mnist", "train", root=tmp_path / "data", download=True)


def test_make_loaders_downloads_when_asked(mirror, tmp_path):
    from lecture_utils.data import make_loaders

    loaders = make_loaders("fashion_mnist", [28], batch_size=5, root=tmp_path / "data", download=True, augment=False)
    x, y = next(iter(loaders["train"]["R28"]))
    assert tuple(x.shape) == (5, 3, 28, 28) and len(loaders["test"]["R28"].dataset) == 10


def test_a_mirror_of_ones_own_is_used_when_named(mirror, tmp_path, monkeypatch):
    # e.g. a classroom server; torchvision's own mirror list is not tried
    own = tv_datasets.FashionMNIST.mirrors[0]
    monkeypatch.setattr(tv_datasets.FashionMNIST, "mirrors", [f"http://127.0.0.1:{_closed_port()}/"])
    monkeypatch.setenv("LECTURE_FASHION_MNIST_MIRROR", own)
    assert len(datasets.get_dataset("fashion_mnist", "val", root=tmp_path / "data", download=True)) == 10
