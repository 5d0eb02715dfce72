"""`--precision auto`: bf16 on a CPU with native bf16 for networks that say they run faster so,
float32 otherwise; the run's first line and config.json say what it chose."""

import json

import pytest
import torch

import ganzoo
from ganzoo import precision
from ganzoo.cli import main
from ganzoo.registry import get_class

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
DCGAN = get_class("generator", "dcgan"), get_class("critic", "dcgan")
DIGITS = ["--loss", "nonsaturating", "--data", "digits:size=16", "--generator", "dcgan:width=4", "--critic",
          "dcgan:width=4", "--steps", "1", "--batch-size", "8"]  # fmt: skip


@pytest.fixture
def cpu_flags(tmp_path, monkeypatch):
    """Sets the flags the CPU reports, through a /proc/cpuinfo of the test's own."""

    def set_flags(*flags: str) -> None:
        info = tmp_path / "cpuinfo"
        info.write_text(f"processor\t: 0\nflags\t\t: fpu sse2 avx2 {' '.join(flags)}\n\nprocessor\t: 1\n")
        monkeypatch.setattr(precision, "CPUINFO", info)

    return set_flags


@pytest.mark.parametrize("flag", ["avx512_bf16", "amx_bf16"])
def test_auto_is_bf16_on_a_cpu_with_native_bf16_for_networks_that_ask(cpu_flags, flag):
    cpu_flags("avx512f", flag)
    chosen, why = precision.choose("auto", CPU, *DCGAN)
    assert chosen == "bf16" and flag in why and "--precision fp32" in why


def test_auto_is_float32_elsewhere(cpu_flags):
    cpu_flags("avx512f")  # AVX-512 without bf16: emulated, slower
    assert precision.choose("auto", CPU, *DCGAN) == ("fp32", "")
    cpu_flags("avx512_bf16")
    assert precision.choose("auto", CUDA, *DCGAN) == ("fp32", "")  # measured on the CPU only
    r3gan = get_class("generator", "r3gan")  # slower in bf16 here: it does not ask
    assert precision.choose("auto", CPU, r3gan, DCGAN[1]) == ("fp32", "")
    assert precision.choose("auto", CPU, get_class("generator", "mlp"), get_class("critic", "mlp")) == ("fp32", "")


def test_a_precision_given_is_kept(cpu_flags):
    cpu_flags("avx512_bf16")
    assert precision.choose("fp32", CPU, *DCGAN) == ("fp32", "")
    cpu_flags()
    assert precision.choose("bf16", CPU, *DCGAN) == ("bf16", "")


def test_no_cpuinfo_is_float32(tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "CPUINFO", tmp_path / "absent")
    assert precision.native_bf16_flag() is None and precision.choose("auto", CPU, *DCGAN) == ("fp32", "")


def test_a_run_says_and_records_what_auto_chose(tmp_path, cpu_flags, capsys):
    cpu_flags("avx512_bf16")
    assert main(["train", *DIGITS, "--out", str(tmp_path / "auto")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.endswith(f", bf16 (auto: this CPU has avx512_bf16; --precision fp32 for float32) -> {tmp_path / 'auto'}")
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["precision"] == "bf16"
    assert main(["train", *DIGITS, "--precision", "fp32", "--out", str(tmp_path / "fp32")]) == 0
    assert "bf16" not in capsys.readouterr().out.splitlines()[0]
    assert json.loads((tmp_path / "fp32" / "config.json").read_text())["precision"] == "fp32"
    cpu_flags()  # a resumed run keeps what it recorded, whatever the CPU
    result = ganzoo.train({"steps": 2}, resume=tmp_path / "auto", quiet=True)
    assert json.loads((result.generator_path.parent / "config.json").read_text())["precision"] == "bf16"
