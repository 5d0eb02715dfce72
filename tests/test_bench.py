"""The loop benchmark runs and prints its ratio (speed itself is measured by running the script)."""

import re
import runpy
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_loop.py"


def test_bench_loop_prints_a_ratio_for_each_case(monkeypatch, capsys):
    args = ["--device", "cpu", "--steps", "2", "--warmup", "1", "--rounds", "1"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("mlp", "dcgan"))]
    assert [row[0] for row in rows] == ["mlp-ring8", "dcgan-digits32", "dcgan-fashion28"]
    measured = [row for row in rows if row[2] != "skipped:"]  # Fashion-MNIST's row needs its files
    assert len(measured) >= 2 and measured[0][2] == "1"  # both loops of the small MLP on one thread
    # case, device, threads, loop s/step, plain s/step, their ratio, then one ratio per round
    assert all(len(row) == 7 and float(row[5]) > 0 and float(row[6]) > 0 for row in measured)


def test_bench_loop_prints_the_scaling_of_one_run_over_processes(monkeypatch, capsys):
    args = ["--device", "cpu", "--case", "mlp-ring8", "--steps", "2", "--warmup", "1", "--rounds", "1"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args, "--processes", "1", "2"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("mlp")]
    # case, device, samples/s with 1 and with 2 processes, scaling efficiency
    assert len(row) == 5 and all(float(value) > 0 for value in row[2:])


def test_bench_loop_compares_the_folder_dataset_with_in_memory_data(monkeypatch, capsys):
    args = ["--device", "cpu", "--steps", "2", "--warmup", "1", "--rounds", "1", "--folder"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("mlp")]
    # case, device, folder s/step, memory s/step, their ratio
    assert len(row) == 5 and all(float(value) > 0 for value in row[2:])


def test_bench_loop_times_the_main_command_beside_a_busy_process(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--busy", "2"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("default", "2 "))]
    # threads, alone s, beside a busy process s, their ratio
    assert [row[0] for row in rows] == ["default", "2"] and all(float(v) > 0 for row in rows for v in row[1:])


def test_bench_loop_counts_the_main_commands_modes_over_seeds(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--main-command", "1", "--main-steps", "3"])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    out = capsys.readouterr().out
    (row,) = [line.split() for line in out.splitlines() if line.startswith("0 ")]
    # seed, processes, seconds, modes, high-quality share
    assert len(row) == 5 and row[1] == "1" and 0 <= int(row[3]) <= 8
    assert re.search(r"^1 process: [01] of 1 seeds with >= 6/8 modes$", out, re.M)


def test_bench_loop_prices_r1_and_r2_eager_and_lazy_on_the_r3gan_networks(monkeypatch, capsys):
    args = ["--device", "cpu", "--steps", "2", "--warmup", "1", "--rounds", "1", "--batch-size", "4", "--penalties"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("nonsat", "rpgan"))]
    names = ["nonsaturating", "rpgan", "rpgan+r1+r2", "rpgan+r1+r2:every=4", "rpgan+r1+r2:every=16"]
    assert [row[0] for row in rows] == names and all(row[2] == "1" for row in rows)  # the r3gan pair: one thread
    # objective, device, threads, s/step, cpu s/step, wall and cpu / nonsaturating, wall and cpu / eager, per round
    assert all(len(row) == 10 and all(float(v) > 0 for v in row[3:7] + row[9:]) for row in rows)
    assert rows[0][5:7] == ["1.000", "1.000"] and all(row[7:9] == ["-", "-"] for row in rows[:3])
    assert all(float(v) > 0 for row in rows[3:] for v in row[7:9])  # the lazy rows against the eager one


def test_bench_loop_times_bf16_beside_float32_on_the_image_networks(monkeypatch, capsys):
    args = ["--device", "cpu", "--steps", "2", "--warmup", "1", "--rounds", "1", "--batch-size", "4", "--bf16"]
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), *args])
    runpy.run_path(str(SCRIPT), run_name="__main__")
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(("dcgan", "r3gan"))]
    assert [row[:3] for row in rows] == [
        ["dcgan-28", "nonsaturating", "loop"], ["dcgan-28", "nonsaturating", "plain"],
        ["r3gan-28", "nonsaturating", "loop"], ["r3gan-28", "nonsaturating", "plain"], ["r3gan-28", "rpgan+r1+r2", "loop"],
    ]  # fmt: skip
    # case, objective, loop, device, threads, fp32 and bf16 s/step, their cpu s/step, bf16/fp32 wall and cpu, per round
    assert all(len(row) == 12 and row[4] == "1" and all(float(v) > 0 for v in row[5:]) for row in rows)
