"""Test data shared by the pi06 tests."""

import math

import torch


def smooth_chunks(n: int, horizon: int, dims: int, seed: int) -> torch.Tensor:
    """Normalised-looking smooth trajectories: an offset plus a few low-frequency cosines plus a little noise."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, horizon)[None, :, None]
    out = torch.randn(n, 1, dims, generator=g)
    for k in (1, 2, 3):
        amp = torch.randn(n, 1, dims, generator=g) / k
        phase = torch.rand(n, 1, dims, generator=g) * 2 * math.pi
        out = out + amp * torch.cos(math.pi * k * t + phase)
    return out + 0.01 * torch.randn(n, horizon, dims, generator=g)
