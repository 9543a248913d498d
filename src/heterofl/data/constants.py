"""Normalisation statistics per image dataset, shared by the loaders and the training augmentation."""

# MNIST and CIFAR10: the reference's transforms (HeteroFL's code, the values it passes to Normalize).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
# CIFAR-100: its own per-channel mean and standard deviation over the 50,000 training images, as rounded in
# the widely copied CIFAR-100 training scripts (e.g. weiaicunzai/pytorch-cifar100 ``CIFAR100_TRAIN_MEAN`` /
# ``CIFAR100_TRAIN_STD``); HeteroFL's reference has no CIFAR-100 transform to copy.
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
NORMALIZATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "MNIST": ((MNIST_MEAN,), (MNIST_STD,)),
    "MNIST5k": ((MNIST_MEAN,), (MNIST_STD,)),
    "CIFAR10": (CIFAR_MEAN, CIFAR_STD),
    "CIFAR100": (CIFAR100_MEAN, CIFAR100_STD),
}
"""Per image dataset: the (mean, std) per channel its loader normalises with and its augmentation pads with."""
WIKITEXT_ROWS = {"train": 100, "valid": 10, "test": 10}
