"""Many processes, one run: everything the loop needs from torch.distributed, in one place.

torch.distributed is the engine and torchrun (or `ganzoo train --nproc-per-node N`, which
calls torchrun's own launcher) starts the processes. There is no DDP wrapper: after each
backward the loop averages the gradients with one all-reduce, as StyleGAN2-ADA does, so
penalties that differentiate twice (a gradient penalty) work and both optimizers stay plain.

How a run stays independent of the number of processes:
- The global RNG is identical on every process between steps, so every process draws the
  same global batch of z and of toy data and keeps its own rows of it (`Shard.rows`).
- Whatever a plugin draws per sample (instance noise, a penalty's interpolation weights)
  is drawn inside `World.own_rng()`, from a stream of the process's own, so two processes
  never add the same noise to different samples.
- Gradients are averaged over processes; each loss is a mean over its rows, so the average
  is the gradient of the mean over the global batch.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError, GanzooError

#: store key counting the ranks that failed: only the first reports, so one line tells the story
_FAILED_KEY = "ganzoo/failures"


class PeerFailed(GanzooError):
    """A collective failed because another process of the run stopped; that process says why."""


#: set by `ganzoo train --nproc-per-node` for its workers: the launcher reports a worker's death
LAUNCHER_REPORTS = "GANZOO_LAUNCHER_REPORTS"


def launched() -> bool:
    """True inside a process that torchrun (or an equivalent launcher) started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def restarted() -> bool:
    """True when torchrun's elastic agent restarted this process group after a failure."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def _stop_with_launcher() -> None:
    """Send this worker one SIGTERM when its launcher has ended: the loop then stops every process at
    one step with a whole checkpoint, as after Ctrl-C, instead of training on as orphans after a
    kill -9 of the launcher.

    A thread waits on a pidfd of the launcher, readable once the launcher's last thread has exited.
    Not Linux's parent-death signal (prctl PR_SET_PDEATHSIG): that comes once for every thread of
    the launcher as each exits, and on a busy machine a late one found a worker whose loop had
    stopped and given SIGTERM its default action back, so rank 0 died before it said why. Where
    pidfds are missing (not Linux, or a kernel before 5.3) nothing changes."""
    launcher = os.getppid()
    try:
        pidfd = os.pidfd_open(launcher)
    except ProcessLookupError:  # it ended already
        os.kill(os.getpid(), signal.SIGTERM)
        return
    except (AttributeError, OSError):
        return
    if os.getppid() != launcher:  # it ended before the pidfd was open: that pid may be another's now
        os.close(pidfd)
        os.kill(os.getpid(), signal.SIGTERM)
        return

    def wait() -> None:
        select.select([pidfd], [], [])
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=wait, name="ganzoo-launcher-watch", daemon=True).start()


def _device_for(name: str, local_rank: int, local_size: int) -> torch.device:
    """The device of this process: cuda:LOCAL_RANK when every local process has a GPU, else the CPU."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        return torch.device("cuda", local_rank) if gpus >= local_size else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda":
        raise ConfigError(f"--device {name} names one GPU, but each of several processes takes its own: use --device cuda")
    if gpus < local_size:
        raise ConfigError(
            f"--device cuda with {local_size} processes on this node needs {local_size} GPUs, but torch sees {gpus}; "
            f"use --nproc-per-node {gpus} or --device cpu" if gpus else
            "--device cuda was asked for, but torch sees no CUDA device on this node (use --device cpu)"
        )  # fmt: skip
    return torch.device("cuda", local_rank)


@dataclass
class World:
    """The processes sharing one run; one process is a world of size 1 where every method is free."""

    rank: int = 0
    size: int = 1
    device: torch.device | None = None
    owns_group: bool = False
    _own_states: list[torch.Tensor] | None = field(default=None, repr=False)

    @classmethod
    def join(cls, device_name: str) -> World:
        """The world of this process: the user's process group, a torchrun launch, or one process.

        Devices and backends: NCCL with cuda:LOCAL_RANK when every local process has a GPU, else gloo
        on the CPU. A group ganzoo starts is ended by `leave`; a group the user started stays theirs.
        """
        if dist.is_available() and dist.is_initialized():  # the user's own group: theirs to end
            nccl = dist.get_backend() == "nccl"
            local_rank = int(os.environ.get("LOCAL_RANK", torch.cuda.current_device() if nccl else 0))
            local_size = int(os.environ.get("LOCAL_WORLD_SIZE", 1))
            name = "cuda" if nccl else ("cpu" if device_name == "auto" else device_name)
            return cls(dist.get_rank(), dist.get_world_size(), _device_for(name, local_rank, local_size))
        if not launched() or int(os.environ["WORLD_SIZE"]) == 1:
            return cls()
        _stop_with_launcher()
        local_rank, local_size = int(os.environ.get("LOCAL_RANK", 0)), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        device = _device_for(device_name, local_rank, local_size)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # torchrun's elastic agent keeps one store across restarts, and a restarted group would read its
        # predecessor's stale addresses from it: each attempt gets keys of its own.
        store, rank, size = next(dist.rendezvous("env://"))
        store = dist.PrefixStore(f"ganzoo/attempt-{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", store)
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, store=store, rank=rank, world_size=size, device_id=device if backend == "nccl" else None)
        return cls(dist.get_rank(), dist.get_world_size(), device, owns_group=True)

    def leave(self, broken: bool = False) -> None:
        """End the group ganzoo started. A `broken` group (a collective failed) is left as it is:
        destroying it writes to the launcher's store and keeps torchrun's restarted group from forming."""
        if self.owns_group and not broken and dist.is_initialized():
            dist.destroy_process_group()

    @property
    def main(self) -> bool:
        """The one process that writes files and shows progress."""
        return self.rank == 0

    # -- collectives: each raises PeerFailed when another process has gone ------------------------

    @contextlib.contextmanager
    def _collective(self) -> Iterator[None]:
        try:
            yield
        except (RuntimeError, dist.DistError) as exc:  # the transport's own text stays in the chain (--debug)
            raise PeerFailed("another process of this run stopped; its report, or the launcher's, says why") from exc

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace every gradient by its mean over the processes, in one all-reduce."""
        if self.size == 1:
            return
        self.average_tensors([p.grad for p in params if p.grad is not None])

    def average_tensors(self, tensors: list[torch.Tensor]) -> None:
        """Replace each tensor, in place, by its mean over the processes: one all-reduce for all."""
        if len(tensors) == 1:  # flat parameters' gradients: no copies
            with self._collective():
                dist.all_reduce(tensors[0])
            tensors[0].div_(self.size)
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        with self._collective():
            dist.all_reduce(flat)
        flat.div_(self.size)
        torch._foreach_copy_(tensors, [part.view_as(t) for part, t in zip(flat.split([t.numel() for t in tensors]), tensors)])

    def average_buffers(self, module: nn.Module) -> None:
        """Average the floating-point buffers (BatchNorm's running statistics) over the processes.

        Needed only where each process normalises by its own rows: their statistics drift apart.
        """
        if self.size == 1:
            return
        buffers = [b for b in module.buffers() if b.is_floating_point()]
        if buffers:
            self.average_tensors(buffers)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The element-wise mean of `values` over the processes."""
        if self.size == 1:
            return values
        values = values.clone()
        with self._collective():
            dist.all_reduce(values)
        return values / self.size

    def any(self, flag: bool) -> bool:
        """True on every process when `flag` is true on any."""
        if self.size == 1:
            return flag
        value = torch.tensor([float(flag)], device=self.device)
        with self._collective():
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def broadcast_module(self, module: nn.Module) -> None:
        """Every process takes rank 0's parameters and buffers (however each process initialised them)."""
        if self.size == 1:
            return
        with self._collective():
            for tensor in module.state_dict().values():
                dist.broadcast(tensor, 0)

    def broadcast_text(self, text: str) -> str:
        """Rank 0's `text` on every process (a run folder name, say)."""
        if self.size == 1:
            return text
        data = torch.zeros(4096, dtype=torch.uint8, device=self.device)
        encoded = text.encode()[: len(data)]
        data[: len(encoded)] = torch.tensor(list(encoded), dtype=torch.uint8)
        with self._collective():
            dist.broadcast(data, 0)
        return bytes(data.cpu().tolist()).rstrip(b"\0").decode()

    def gather(self, tensor: torch.Tensor) -> list[torch.Tensor]:
        """Every process's `tensor` (same shape and dtype everywhere), in rank order."""
        if self.size == 1:
            return [tensor]
        on_device = tensor.to(self.device)
        parts = [torch.empty_like(on_device) for _ in range(self.size)]
        with self._collective():
            dist.all_gather(parts, on_device)
        return [p.to(tensor.device) for p in parts]

    # -- random numbers -----------------------------------------------------------------------------

    def _states(self) -> list[torch.Tensor]:
        states = [torch.get_rng_state()]
        if self.device is not None and self.device.type == "cuda":
            states.append(torch.cuda.get_rng_state(self.device))
        return states

    def _set_states(self, states: list[torch.Tensor]) -> None:
        torch.set_rng_state(states[0])
        if len(states) > 1:
            torch.cuda.set_rng_state(states[1], self.device)

    def seed_own_rng(self, seed: int) -> None:
        """Start this process's own stream for per-sample randomness (several processes only)."""
        if self.size == 1:
            return
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            torch.manual_seed((seed * 1_000_003 + self.rank + 1) % 2**63)
            self._own_states = self._states()

    def own_rng(self) -> contextlib.AbstractContextManager:
        """A context that runs its block on this process's own random stream, then gives the shared
        one back. With one process there is one stream, and the context does nothing."""
        return self._swapped_rng() if self.size > 1 else contextlib.nullcontext()

    @contextlib.contextmanager
    def _swapped_rng(self) -> Iterator[None]:
        shared = self._states()
        self._set_states(self._own_states)
        try:
            yield
        finally:
            self._own_states = self._states()
            self._set_states(shared)

    def own_rng_states(self) -> list[torch.Tensor]:
        return self._own_states or []

    def load_own_rng_states(self, states: list[torch.Tensor]) -> None:
        self._own_states = [s.cpu() for s in states]

    # -- reporting ----------------------------------------------------------------------------------

    def first_to_fail(self) -> bool:
        """True for the first process to report a failure, so the run prints one line, not one per process.

        Asks the process group's store, which outlives a failed worker under torchrun; when the
        store cannot be reached, every process reports.
        """
        if self.size == 1:
            return True
        try:
            store = dist.distributed_c10d._get_default_store()
            return store.add(_FAILED_KEY, 1) == 1
        except Exception:  # the store went with the process that hosted it
            return True


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm layer of `module` for one whose batch statistics span all processes.

    Parameter and buffer names stay, so checkpoints fit either way.
    """
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CrossProcessBatchNorm):
        synced = CrossProcessBatchNorm(
            module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats
        )
        synced.load_state_dict(module.state_dict())
        return synced.train(module.training)
    for name, child in module.named_children():
        module.add_module(name, convert_batchnorm(child))
    return module


class CrossProcessBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch normalisation over the global batch: mean and variance all-reduced over processes.

    torch.nn.SyncBatchNorm does this for GPUs only; this works with any backend, CPU included,
    and its backward flows through the all-reduce, so penalties that differentiate twice work too.
    """

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input, got {x.dim()}-D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not dist.is_initialized() or dist.get_world_size() == 1:
            return super().forward(x)
        all_reduce = _SumOverProcesses.apply
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = x.numel() // x.shape[1] * dist.get_world_size()  # every process has as many rows
        mean = all_reduce(x.sum(dims)) / count
        centred = x - mean.view(shape)
        var = all_reduce(centred.square().sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * count / max(count - 1, 1), momentum)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        return out * self.weight.view(shape) + self.bias.view(shape) if self.affine else out


class _SumOverProcesses(torch.autograd.Function):
    """The sum of a tensor over the processes, differentiable: the gradient of a sum is the sum of
    the gradients, and that backward is itself differentiable (double backward works)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return _SumOverProcesses.apply(grad)
