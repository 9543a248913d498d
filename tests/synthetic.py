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


class TinyImageTask:
    """A task over ``n`` Gaussian images of ``shape`` with random labels, batches in index order: enough for
    :func:`heterofl.local_training.train_one_client` without a dataset."""

    num_classes = 10

    def __init__(self, n: int = 32, shape: tuple[int, ...] = (1, 12, 12), seed: int = 9) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(n, *shape, generator=generator)
        self.y = torch.randint(0, 10, (n,), generator=generator)

    def local_steps(self, indices, epochs, batch_size, generator):
        from heterofl.tasks import Step

        return [Step(rows) for _ in range(epochs) for rows in indices.split(batch_size)]

    def batch(self, step, generator):
        return self.x[step.rows], self.y[step.rows]

    def loss(self, logits, targets, label_mask, reduction="mean"):
        return torch.nn.functional.cross_entropy(logits, targets, reduction=reduction)
