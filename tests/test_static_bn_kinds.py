"""Static BN covers every BatchNorm kind: an MLP's BatchNorm1d gets training-set statistics, not test-batch ones.

The expected statistics are computed independently in float64: the cumulative average (``momentum=None``)
of each training batch's mean and unbiased variance of the pre-norm activations.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from heterofl.static_bn import batch_norms, fit_static_bn

BATCH = 7


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 8),
        nn.BatchNorm1d(8, momentum=None, track_running_stats=False),
        nn.ReLU(),
        nn.Linear(8, 3),
    )


def _cumulative_moments(batches: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over batches of each batch's per-feature mean and unbiased variance, rows = samples."""
    means, variances = [], []
    for h in batches:
        n = h.shape[0]
        mean = h.sum(0) / n
        means.append(mean)
        variances.append(((h - mean) ** 2).sum(0) / (n - 1))
    return torch.stack(means).mean(0), torch.stack(variances).mean(0)


def _double(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.float64)


def test_batch_norms_finds_every_kind():
    model = nn.Sequential(nn.BatchNorm1d(2), nn.BatchNorm2d(3), nn.BatchNorm3d(4), nn.GroupNorm(1, 4))
    kinds = [type(m) for m in batch_norms(model)]
    assert kinds == [nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d]


def test_mlp_batchnorm1d_gets_static_statistics_and_eval_uses_them():
    model = _mlp()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(23, 5, generator=g) * 2 + 1  # batches of 7, 7, 7, 2
    linear1, norm, _, linear2 = model
    fit_static_bn(model, x, batch_size=BATCH)
    assert not model.training

    w1, b1 = _double(linear1.weight), _double(linear1.bias)
    pre = [_double(batch) @ w1.T + b1 for batch in x.split(BATCH)]
    mean, var = _cumulative_moments(pre)
    assert norm.track_running_stats and int(norm.num_batches_tracked) == 4
    torch.testing.assert_close(_double(norm.running_mean), mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(_double(norm.running_var), var, rtol=1e-5, atol=1e-6)

    test_x = torch.randn(4, 5, generator=g) * 3 - 2  # statistics far from the training set's
    with torch.no_grad():
        out = model(test_x)
    h = _double(test_x) @ w1.T + b1
    gamma, beta = _double(norm.weight), _double(norm.bias)
    w2, b2 = _double(linear2.weight), _double(linear2.bias)
    expected = torch.relu((h - mean) / torch.sqrt(var + norm.eps) * gamma + beta) @ w2.T + b2
    torch.testing.assert_close(_double(out), expected, rtol=1e-4, atol=1e-5)

    batch_mean, batch_var = h.mean(0), h.var(0, unbiased=False)
    with_batch_stats = torch.relu((h - batch_mean) / torch.sqrt(batch_var + norm.eps) * gamma + beta) @ w2.T + b2
    assert not torch.allclose(_double(out), with_batch_stats, rtol=1e-2, atol=1e-2)


class _ConvThenMLP(nn.Module):
    """A conv model with a BatchNorm1d head: on the CPU the conv part takes the channels-last path."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.norm2d = nn.BatchNorm2d(3, momentum=None, track_running_stats=False)
        self.linear = nn.Linear(3 * 4 * 4, 6)
        self.norm1d = nn.BatchNorm1d(6, momentum=None, track_running_stats=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.norm2d(self.conv(x)))
        return self.norm1d(self.linear(x.flatten(1)))


def test_batchnorm1d_behind_a_conv_gets_its_own_statistics():
    torch.manual_seed(0)
    model = _ConvThenMLP()
    x = torch.randn(17, 2, 4, 4, generator=torch.Generator().manual_seed(2))
    fit_static_bn(model, x, batch_size=BATCH)  # batches of 7, 7, 3

    w, b = _double(model.conv.weight), _double(model.conv.bias)
    gamma2, beta2 = _double(model.norm2d.weight), _double(model.norm2d.bias)
    lw, lb = _double(model.linear.weight), _double(model.linear.bias)
    pre2d, pre1d = [], []
    for batch in x.split(BATCH):
        c = F.conv2d(_double(batch), w, b, padding=1)
        pre2d.append(c.permute(0, 2, 3, 1).reshape(-1, 3))
        mean, var = c.mean((0, 2, 3), keepdim=True), c.var((0, 2, 3), unbiased=False, keepdim=True)
        y = (c - mean) / torch.sqrt(var + model.norm2d.eps) * gamma2.view(1, -1, 1, 1) + beta2.view(1, -1, 1, 1)
        pre1d.append(torch.relu(y).flatten(1) @ lw.T + lb)
    for norm, pre in ((model.norm2d, pre2d), (model.norm1d, pre1d)):
        mean, var = _cumulative_moments(pre)
        torch.testing.assert_close(_double(norm.running_mean), mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(_double(norm.running_var), var, rtol=1e-5, atol=1e-6)
