"""Fetch raw dataset files atomically: download into a temporary folder, then move complete files in place.

A failed or interrupted download therefore never leaves a half-written file where the readers look; the
temporary folder is removed on every exit path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from heterofl.data.readers import CIFAR100_FILES, CIFAR_TEST_BATCH, CIFAR_TRAIN_BATCHES, MNIST_FILES, WIKITEXT_FILES
from heterofl.errors import HeteroFLError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
# URL and archive MD5 as torchvision's datasets/cifar.py (class CIFAR100: url, tgz_md5) has them
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
WIKITEXT2_URL = "https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-v1.zip"
WIKITEXT2_MD5 = "542ccefacc6c27f945fb54453812b3cd"

MNIST_NAMES = MNIST_FILES[True] + MNIST_FILES[False]
CIFAR10_NAMES = CIFAR_TRAIN_BATCHES + (CIFAR_TEST_BATCH,)
CIFAR100_NAMES = (CIFAR100_FILES[True], CIFAR100_FILES[False])
WIKITEXT2_NAMES = tuple(WIKITEXT_FILES.values())


def mnist_dir(root: Path) -> Path:
    return root / "MNIST" / "raw"


def cifar10_dir(root: Path) -> Path:
    return root / "CIFAR10" / "raw" / "cifar-10-batches-py"


def cifar100_dir(root: Path) -> Path:
    return root / "CIFAR100" / "raw" / "cifar-100-python"


def wikitext2_dir(root: Path) -> Path:
    return root / "WikiText2" / "raw"


def _fetch_mnist(tmp: Path) -> Path:
    from torchvision.datasets import MNIST

    MNIST(str(tmp), train=True, download=True)
    return tmp / "MNIST" / "raw"


def _fetch_cifar10(tmp: Path) -> Path:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(CIFAR10_URL, download_root=str(tmp), md5=CIFAR10_MD5)
    return tmp / "cifar-10-batches-py"


def _fetch_cifar100(tmp: Path) -> Path:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(CIFAR100_URL, download_root=str(tmp), md5=CIFAR100_MD5)
    return tmp / "cifar-100-python"


def _fetch_wikitext2(tmp: Path) -> Path:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(WIKITEXT2_URL, download_root=str(tmp), md5=WIKITEXT2_MD5)
    return tmp / "wikitext-2"


FETCHERS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], Path], Sequence[str], str]] = {
    "MNIST": (_fetch_mnist, mnist_dir, MNIST_NAMES, "the four uncompressed IDX files"),
    "CIFAR10": (
        _fetch_cifar10,
        cifar10_dir,
        CIFAR10_NAMES,
        "the python-pickle batches of cifar-10-python.tar.gz",
    ),
    "CIFAR100": (
        _fetch_cifar100,
        cifar100_dir,
        CIFAR100_NAMES,
        "the python-pickle files of cifar-100-python.tar.gz",
    ),
    "WikiText2": (_fetch_wikitext2, wikitext2_dir, WIKITEXT2_NAMES, "the token files of wikitext-2-v1.zip"),
}


def ensure_raw_files(name: str, root: Path, download: bool) -> Path:
    """Return the folder holding ``name``'s raw files, downloading the missing ones if allowed."""
    fetch, folder_of, names, what = FETCHERS[name]
    folder = folder_of(root)
    missing = [n for n in names if not (folder / n).is_file()]
    if not missing:
        return folder
    where = f"put {what} ({', '.join(names)}) in {folder}"
    if not download:
        raise HeteroFLError("dataset", f"{name} files are missing ({', '.join(missing)}) and download is off", where)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".download-{name}-", dir=root))
    try:
        try:
            source = fetch(tmp)
        except Exception as exc:  # network, checksum and archive errors all mean the same to the user
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise HeteroFLError("dataset", f"{name} could not be downloaded ({reason})", where) from None
        absent = [n for n in missing if not (source / n).is_file()]
        if absent:
            raise HeteroFLError("dataset", f"the {name} download lacks {', '.join(absent)}", where)
        folder.mkdir(parents=True, exist_ok=True)
        for n in missing:
            os.replace(source / n, folder / n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
