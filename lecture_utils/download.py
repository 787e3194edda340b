"""Fashion-MNIST's download: the four raw ``.gz`` files, each checked against the MD5 sum torchvision publishes
for it and renamed into place only when it matches, so that no cut-off or damaged file stays (it is fetched
again instead). :func:`lecture_utils.datasets.get_dataset` calls it with ``download=True``.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from torchvision import datasets as tv_datasets

from lecture_utils._util import atomic_write

__all__ = ["download_dir", "download_fashion_mnist"]


def download_dir(root: Path) -> Path:
    """Where a download puts the raw files: torchvision's layout under `root`."""
    return root / "FashionMNIST" / "raw"


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_fashion_mnist(root: Path, tries: int = 2) -> None:
    """Fetch the four raw ``.gz`` files (30 MB) into ``root/FashionMNIST/raw``, saying so in one line.

    Each file is checked against the MD5 sum torchvision publishes for it (``FashionMNIST.resources``) and
    renamed into place only when it matches, so a cut-off or damaged download never stays: a file already
    there that fails its sum is replaced, a failed fetch is tried again (`tries` times per mirror).
    ``$LECTURE_FASHION_MNIST_MIRROR`` (a URL holding the four ``.gz`` files) replaces torchvision's mirrors.
    """
    folder = download_dir(root)
    source = tv_datasets.FashionMNIST
    mirror = os.environ.get("LECTURE_FASHION_MNIST_MIRROR", "").strip()
    if mirror and not mirror.startswith(("http://", "https://", "file://")):
        raise ValueError(f"LECTURE_FASHION_MNIST_MIRROR must be a URL (http://, https:// or file://) of a folder "
                         f"holding the four .gz files, got {mirror!r}")
    mirrors = [mirror.rstrip("/") + "/"] if mirror else list(source.mirrors)
    todo = [(name, md5) for name, md5 in source.resources
            if not ((folder / name).is_file() and _md5(folder / name) == md5)]
    if not todo:
        return
    print(f"fashion_mnist: not found here; downloading it once (30 MB) into {folder}")
    for name, md5 in todo:
        errors = []
        for url in (m + name for m in mirrors for _ in range(tries)):
            def fetch(tmp: Path, url: str = url, md5: str = md5) -> None:
                digest = hashlib.md5()
                request = urllib.request.Request(url, headers={"User-Agent": "lecture_utils"})
                with urllib.request.urlopen(request, timeout=60) as response, open(tmp, "wb") as f:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        digest.update(block)
                        f.write(block)
                if digest.hexdigest() != md5:
                    raise _ChecksumError(f"{url}: MD5 {digest.hexdigest()}, expected {md5} (cut off or damaged)")

            try:
                atomic_write(folder / name, fetch, kept="nothing was kept")
                break
            except (_ChecksumError, urllib.error.URLError, OSError, ValueError) as exc:
                errors.append(" ".join(str(exc).split()) or type(exc).__name__)
        else:
            raise FileNotFoundError(
                f"fashion_mnist: the download failed ({errors[-1]}). Without a network, copy the four raw files "
                f"({', '.join(name[: -len('.gz')] for name, _ in source.resources)}, .gz or not) into {root}, "
                "or on Debian/Ubuntu run `apt-get install dataset-fashion-mnist`.")


class _ChecksumError(Exception):
    """A downloaded file whose MD5 sum is not the published one."""
