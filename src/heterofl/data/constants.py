"""Normalisation statistics of the reference's transforms (spec section 2)."""

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
WIKITEXT_ROWS = {"train": 100, "valid": 10, "test": 10}
