"""`ganzoo train --nproc-per-node N`: torchrun's own launcher (torch.distributed.run) started for the
user, so people who never heard of torchrun get the same elastic agent and the same processes."""

from __future__ import annotations

import logging
import os
import sys

from .distributed import LAUNCHER_REPORTS


def worker_args(argv: list[str]) -> list[str]:
    """The command line each worker runs: `argv` without the --nproc-per-node option."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc-per-node":
            skip = True
        elif not arg.startswith("--nproc-per-node="):
            out.append(arg)
    return out


def launch(nproc_per_node: int, argv: list[str], debug: bool = False) -> int:
    """Run `python -m ganzoo ARGV` in nproc_per_node processes on this machine; the exit code of the run.

    Each worker reports its own failure in one line (the first to fail, only); this adds one line
    only when a worker died without saying why (killed by a signal).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    # Small networks gain nothing from more threads than cores: split the cores among the processes.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc_per_node)))
    os.environ[LAUNCHER_REPORTS] = "1"  # a worker whose peer died leaves the story to the line below
    if debug:
        os.environ["GANZOO_DEBUG"] = "1"
    else:  # the agent's log lines repeat what the workers said; its loggers set their own levels
        for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed")]:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = parse_args(["--standalone", f"--nproc-per-node={nproc_per_node}", "--module", "ganzoo"])
    # Set apart from torchrun's parser, which would read the workers' options as abbreviations of its own.
    args.training_script_args = worker_args(argv)
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        if failure.exitcode > 0:
            return failure.exitcode
        print(f"ganzoo: error: process {rank} was killed by {failure.signal_name()}", file=sys.stderr)
        return 1
    except (SignalException, KeyboardInterrupt):
        return 130
    return 0
