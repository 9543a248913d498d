"""Readers for the raw files of each dataset, turning any corrupt file into a one-line HeteroFLError.

Each reader returns raw values (uint8 pixels, int64 labels, token ids); normalisation lives in
``datasets.py`` so the readers stay format-only.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from heterofl.errors import HeteroFLError

MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_SHAPE = (28, 28)
CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_BATCH = "test_batch"
# CIFAR-100's python version (cifar-100-python.tar.gz, https://www.cs.toronto.edu/~kriz/cifar.html): one
# pickled dict per split, labels under b"fine_labels" (100 classes) beside b"coarse_labels" (20 superclasses)
CIFAR100_FILES = {True: "train", False: "test"}
CIFAR100_LABELS = b"fine_labels"
WIKITEXT_FILES = {"train": "wiki.train.tokens", "valid": "wiki.valid.tokens", "test": "wiki.test.tokens"}
UNKNOWN, EOS = "<ukn>", "<eos>"
UNKNOWN_WORDS = frozenset({UNKNOWN, "<unk>"})  # ours, and the one the WikiText files themselves use


def _corrupt(path: Path, why: object) -> HeteroFLError:
    text = str(why) or type(why).__name__
    why = " ".join(text.split())[:200]
    return HeteroFLError("data file", f"{path} is corrupt or unreadable ({why})", "delete it and download again")


def read_mnist(root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Read the uncompressed IDX files in ``root/MNIST/raw`` via torchvision: uint8 (N,28,28), int64 (N,)."""
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    image_path, label_path = (raw / name for name in MNIST_FILES[train])
    for path, magic, kind in ((image_path, 2051, "image"), (label_path, 2049, "label")):
        try:
            with open(path, "rb") as handle:
                head = handle.read(4)
        except OSError as exc:
            raise _corrupt(path, exc) from None
        if int.from_bytes(head, "big") != magic:
            raise _corrupt(path, f"magic number {int.from_bytes(head, 'big')} is not {magic} of an IDX {kind} file")
    try:
        data = MNIST(str(root), train=train, download=False)
        images, labels = data.data, data.targets
    except Exception as exc:  # torchvision raises assorted errors (assert, view) on truncated files
        raise _corrupt(_bad_idx_file(image_path, label_path), exc) from None
    if images.dim() != 3 or images.dtype != torch.uint8:
        raise _corrupt(image_path, f"expected a uint8 image tensor of 3 dims, got {images.dtype} {tuple(images.shape)}")
    if tuple(images.shape[1:]) != MNIST_SHAPE:  # the conv model and the normalisation are MNIST's 28x28
        raise _corrupt(
            image_path, f"images are {images.shape[1]}x{images.shape[2]}, MNIST's are {MNIST_SHAPE[0]}x{MNIST_SHAPE[1]}"
        )
    if images.shape[0] == 0:
        raise _corrupt(image_path, "the file holds no images")
    if labels.dim() != 1 or labels.numel() != images.shape[0]:
        raise _corrupt(label_path, f"{labels.numel()} labels for {images.shape[0]} images")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise _corrupt(label_path, "labels outside 0..9")
    return images, labels.long()


def _bad_idx_file(image_path: Path, label_path: Path) -> Path:
    """Which of the two IDX files torchvision choked on, so the error can name it."""
    from torchvision.datasets.mnist import read_image_file

    try:
        read_image_file(str(image_path))
    except Exception:
        return image_path
    return label_path


class _ArrayUnpickler(pickle.Unpickler):
    """Only the numpy constructors a CIFAR batch needs, so a hostile pickle cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"forbidden global {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path, label_key: bytes = b"labels", num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read one python-pickle CIFAR file: uint8 (N,3,32,32) and int64 (N,) labels from ``label_key``.

    CIFAR-10's batches hold ``b"labels"`` (0..9), CIFAR-100's two files ``b"fine_labels"`` (0..99); the
    layout of ``b"data"`` is the same (N rows of 3072 bytes: the R, G and B planes, each row-major 32x32).
    """
    try:
        with open(path, "rb") as handle:
            batch = _ArrayUnpickler(handle, encoding="bytes").load()
    except FileNotFoundError:
        raise
    except Exception as exc:
        raise _corrupt(path, exc) from None
    name = label_key.decode()
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise _corrupt(path, f"not a dict with b'data' and b'{name}'")
    data, labels = batch[b"data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise _corrupt(path, "b'data' is not a uint8 array of shape (N, 3072)")
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise _corrupt(path, f"b'{name}' does not hold {len(data)} integers")
    if len(labels) and (labels.min() < 0 or labels.max() > num_classes - 1):
        raise _corrupt(path, f"labels outside 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate the train batches (or read the test batch) of ``cifar-10-batches-py``."""
    names = CIFAR_TRAIN_BATCHES if train else (CIFAR_TEST_BATCH,)
    parts = [read_cifar_batch(folder / name) for name in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


def read_cifar100(folder: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``train`` or ``test`` of ``cifar-100-python``: its images and fine (100-class) labels."""
    images, labels = read_cifar_batch(folder / CIFAR100_FILES[train], CIFAR100_LABELS, 100)
    return torch.from_numpy(images), torch.from_numpy(labels)


def _lines(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise _corrupt(path, exc) from None
    if not text.strip():
        raise _corrupt(path, "the file is empty")
    lines = [line.split() + [EOS] for line in text.splitlines()]
    if all(word in UNKNOWN_WORDS for line in lines for word in line[:-1]):
        raise _corrupt(path, f"the file holds no word other than {' and '.join(sorted(UNKNOWN_WORDS))}")
    return lines


def build_vocab(train_path: Path) -> dict[str, int]:
    """The reference's vocabulary: ``<ukn>``=0, ``<eos>``=1, then train word types by first appearance."""
    vocab = {UNKNOWN: 0, EOS: 1}
    for line in _lines(train_path):
        for word in line:
            if word not in vocab:
                vocab[word] = len(vocab)
    return vocab


def tokenize(path: Path, vocab: dict[str, int]) -> torch.Tensor:
    """Token ids of a file, one ``<eos>`` per line, out-of-vocabulary words mapped to ``<ukn>``."""
    ids = [vocab.get(word, 0) for line in _lines(path) for word in line]
    if all(i in (vocab[UNKNOWN], vocab[EOS]) for i in ids):
        raise _corrupt(path, f"no word of the file is in the vocabulary of the training file ({len(vocab)} types)")
    return torch.tensor(ids, dtype=torch.int64)


def batchify(tokens: torch.Tensor, rows: int, path: Path | None = None) -> torch.Tensor:
    """Reference ``batchify``: drop the tail that does not fill ``rows`` rows, then reshape row-major."""
    length = tokens.numel() // rows
    if length == 0:
        raise _corrupt(path or Path("tokens"), f"{tokens.numel()} tokens cannot fill {rows} rows")
    return tokens[: rows * length].reshape(rows, length)
