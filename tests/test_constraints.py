import pytest
import torch
from torch import nn

import ganzoo


def test_clip_clamps_every_parameter_including_late_ones():
    clip = ganzoo.create_constraint("clip", c=0.05)
    module = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(1))
    module(torch.randn(2, 1, 5, 5))  # materialise the lazy layer
    module.register_parameter("late", nn.Parameter(torch.full((3,), -5.0)))  # after the constraint exists
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-1, 1)
        module.late.fill_(-5.0)

    clip.after_critic_step(module)

    for name, p in module.named_parameters():
        assert p.abs().max() <= 0.05, name
    assert (module.late == -0.05).all()


def test_clip_leaves_values_inside_the_bound_and_buffers_alone():
    clip = ganzoo.create_constraint("clip", c=0.5)
    module = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    with torch.no_grad():
        module[0].weight.copy_(torch.linspace(-0.5, 0.5, 9).view(3, 3))
        module[1].running_var.fill_(4.0)  # statistics are not weights
    before = module[0].weight.detach().clone()

    clip.after_critic_step(module)

    assert torch.equal(module[0].weight, before)
    assert (module[1].running_var == 4.0).all()


def test_clip_defaults_and_unused_hooks():
    clip = ganzoo.create_constraint("clip")
    critic = nn.Linear(2, 1)
    assert clip.config.c == 0.01
    assert clip.attach(critic) is critic
    assert clip.penalty(critic, torch.zeros(1, 2), torch.zeros(1, 2)) is None


@pytest.mark.parametrize("c", [0, -0.01, "wide"])
def test_clip_bound_must_be_positive(c):
    with pytest.raises(ganzoo.ConfigError, match=r"constraint 'clip': option 'c'"):
        ganzoo.create_constraint("clip", c=c)
