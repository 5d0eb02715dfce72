"""The precision a run's networks compute in. `--precision auto` (the default) picks bf16 autocast on
a CPU that computes bf16 natively, when both networks say they run faster so there; float32
everywhere else. docs/performance.md has the measurements behind it."""

from __future__ import annotations

from pathlib import Path

import torch

#: x86 flags (Linux's /proc/cpuinfo) of instructions that compute bf16 products natively; without
#: them bf16 is emulated and slower than float32
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


def native_bf16_flag() -> str | None:
    """The first of NATIVE_BF16_FLAGS this CPU reports, or None (also where /proc/cpuinfo is absent)."""
    try:
        lines = CPUINFO.read_text(errors="replace").splitlines()
    except OSError:
        return None
    flags = next((line.partition(":")[2].split() for line in lines if line.startswith("flags")), [])
    return next((flag for flag in NATIVE_BF16_FLAGS if flag in flags), None)


def choose(precision: str, device: torch.device, *networks: type) -> tuple[str, str]:
    """fp32 or bf16 for `precision` (auto, fp32 or bf16), and why when auto chose bf16 (else "")."""
    if precision != "auto":
        return precision, ""
    if device.type != "cpu" or not all(getattr(network, "bf16_on_cpu", False) for network in networks):
        return "fp32", ""
    flag = native_bf16_flag()
    return ("bf16", f"auto: this CPU has {flag}; --precision fp32 for float32") if flag else ("fp32", "")
