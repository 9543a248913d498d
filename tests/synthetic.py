"""Small synthetic image datasets of the real shapes, shared by the tests (no download, deterministic)."""

from __future__ import annotations

import torch

from heterofl.data import Dataset


def image_dataset(
    name: str = "MNIST5k",
    shape: tuple[int, ...] = (1, 28, 28),
    n_train: int = 200,
    n_test: int = 60,
    augment: bool = False,
    cyclic_labels: bool = False,
    seed: int = 0,
) -> Dataset:
    """Gaussian images; labels drawn at random, or 0, 1, ..., 9, 0, ... (every class equally often)."""
    g = torch.Generator().manual_seed(seed)
    train_x = torch.randn(n_train, *shape, generator=g)
    train_y = torch.arange(n_train) % 10 if cyclic_labels else torch.randint(0, 10, (n_train,), generator=g)
    test_x = torch.randn(n_test, *shape, generator=g)
    test_y = torch.arange(n_test) % 10 if cyclic_labels else torch.randint(0, 10, (n_test,), generator=g)
    return Dataset(name, train_x, train_y, test_x, test_y, 10, augment)
