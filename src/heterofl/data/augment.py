"""CIFAR training augmentation as one batched tensor operation, so the trainer never touches PIL images.

``RandomCrop(32, padding=4)`` then ``RandomHorizontalFlip`` on the raw image, followed by ``Normalize``,
equals cropping/flipping the normalised image padded with the normalised value of a black pixel. That
value depends on the dataset's statistics (CIFAR10's by default; CIFAR100 passes its own).
"""

from __future__ import annotations

import torch

from heterofl.data.constants import CIFAR_MEAN, CIFAR_STD

PAD = 4


def black_pixel(
    dtype: torch.dtype = torch.float32,
    mean: tuple[float, ...] = CIFAR_MEAN,
    std: tuple[float, ...] = CIFAR_STD,
) -> torch.Tensor:
    """Normalised value of a zero pixel per channel, computed in the order torchvision's Normalize uses."""
    mean_t = torch.tensor(mean, dtype=dtype)
    std_t = torch.tensor(std, dtype=dtype)
    return torch.zeros(len(mean), dtype=dtype).sub(mean_t).div(std_t)


def crop_flip(
    x: torch.Tensor,
    offsets: torch.Tensor,
    flips: torch.Tensor,
    mean: tuple[float, ...] = CIFAR_MEAN,
    std: tuple[float, ...] = CIFAR_STD,
) -> torch.Tensor:
    """Pad by 4 with the black pixel of ``mean``/``std``, crop 32x32 at ``offsets`` (B,2: top, left in 0..8),
    then mirror where ``flips`` (B,) is True. One gather, so it runs on any device."""
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a (B,3,H,W) batch, got {tuple(x.shape)}")
    batch, _, height, width = x.shape
    fill = black_pixel(x.dtype, mean, std).to(x.device)
    padded = fill.view(1, 3, 1, 1).expand(batch, 3, height + 2 * PAD, width + 2 * PAD).clone()
    padded[:, :, PAD : PAD + height, PAD : PAD + width] = x
    offsets = offsets.to(device=x.device, dtype=torch.long)
    flips = flips.to(device=x.device, dtype=torch.bool)
    rows = offsets[:, :1] + torch.arange(height, device=x.device)
    steps = torch.arange(width, device=x.device)
    steps = torch.where(flips[:, None], width - 1 - steps, steps)
    cols = offsets[:, 1:] + steps
    out = padded[torch.arange(batch, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def augment_batch(
    x: torch.Tensor,
    generator: torch.Generator,
    mean: tuple[float, ...] = CIFAR_MEAN,
    std: tuple[float, ...] = CIFAR_STD,
) -> torch.Tensor:
    """Random crop (pad 4) and horizontal flip of a (B,3,32,32) batch normalised with ``mean``/``std``,
    reproducible from ``generator``; the draws happen on the generator's device and are then moved to
    ``x``'s. The statistics only set the padding's value, so they never change the draws."""
    batch = x.shape[0]
    offsets = torch.randint(0, 2 * PAD + 1, (batch, 2), generator=generator, device=generator.device)
    flips = torch.rand(batch, generator=generator, device=generator.device) < 0.5
    return crop_flip(x, offsets, flips, mean, std)
