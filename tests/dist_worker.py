"""One process of a run shared by several: started by torchrun from tests/test_distributed.py.

It starts its own gloo process group (as a user would) and calls `ganzoo.train` for each run
named on the command line as JSON, while checking after every generator step that every
process holds the same generator, critic and optimizer state.

    torchrun --nproc-per-node 2 tests/dist_worker.py OUT '[{"loss": "wgan", ...}, ...]'
"""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

import ganzoo
import ganzoo.image_metrics
import ganzoo.step
from ganzoo.testing import channel_statistics_extractor

torch.set_num_threads(1)


def digest(step) -> torch.Tensor:
    """One number per tensor of the training state, cheap to compare across processes."""
    tensors, _ = step.state_tensors()
    return torch.stack([t.double().sum() for name, t in sorted(tensors.items()) if not name.startswith("rng.")])


def check_identical_after_every_step() -> None:
    original = ganzoo.step.GANStep.generator_step

    def checked(self, step, *args, **kwargs):
        out = original(self, step, *args, **kwargs)
        mine = digest(self)
        everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
        dist.all_gather(everyone, mine)
        for rank, theirs in enumerate(everyone):
            if not torch.equal(theirs, mine):
                raise AssertionError(f"after step {step + 1}, process {rank} holds other weights than {dist.get_rank()}")
        return out

    ganzoo.step.GANStep.generator_step = checked


def main() -> None:
    out, runs = Path(sys.argv[1]), json.loads(sys.argv[2])
    dist.init_process_group("gloo")
    check_identical_after_every_step()
    ganzoo.image_metrics.inception = lambda device, quiet=False: channel_statistics_extractor()  # no weights here
    for i, run in enumerate(runs):
        result = ganzoo.train({**run, "out": str(out / str(i))}, quiet=True)
        assert result.step == run["steps"]
    assert dist.is_initialized(), "ganzoo ended the caller's process group"
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
