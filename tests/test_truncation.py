"""The truncation trick draws the truncated normal directly: a tiny psi (1e-6, 1e-300, the smallest
float) ended never when each coordinate was drawn again until it landed within +-psi."""

import math
import time

import pytest
import torch

import ganzoo
from ganzoo.cli import main


def truncated_std(psi: float) -> float:
    """The standard deviation of N(0, 1) truncated at +-psi."""
    density, mass = math.exp(-psi * psi / 2) / math.sqrt(2 * math.pi), math.erf(psi / math.sqrt(2))
    return math.sqrt(1 - 2 * psi * density / mass)


@pytest.mark.parametrize("psi", [1e-6, 1e-300, 5e-324, 0.5, 2.0, 40.0])
def test_any_positive_truncation_is_drawn_at_once_within_its_bound(psi):
    generator = ganzoo.create_generator("mlp", sample_shape=(2,))
    started = time.monotonic()
    z = generator.latent(100_000, torch.Generator().manual_seed(0), truncation=psi)
    assert time.monotonic() - started < 5 and z.shape == (100_000, generator.latent_dim)
    assert torch.isfinite(z).all() and z.abs().max() <= psi
    # a tiny psi's normal is flat on [-psi, psi] (std psi / sqrt 3); below float32's range, z is 0
    expected = truncated_std(psi) if psi >= 0.1 else psi / math.sqrt(3) if psi > 1e-38 else 0.0
    assert z.std().item() == pytest.approx(expected, rel=0.02, abs=0.0)
    assert abs(z.mean().item()) <= 0.02 * expected
    assert torch.equal(z, generator.latent(100_000, torch.Generator().manual_seed(0), truncation=psi))  # repeatable


def test_an_infinite_truncation_is_no_truncation():
    generator = ganzoo.create_generator("mlp", sample_shape=(2,))
    plain = generator.latent(8, torch.Generator().manual_seed(3))
    assert torch.equal(plain, generator.latent(8, torch.Generator().manual_seed(3), truncation=math.inf))


def test_the_sample_command_with_a_tiny_truncation_ends(tmp_path):
    started = time.monotonic()
    assert main(["sample", "nonsaturating-r1-digits", "--truncation", "1e-300", "--out", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").is_file() and time.monotonic() - started < 60
