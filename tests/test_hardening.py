"""Hostile input: damaged checkpoints and generator files, loose config types, misbehaving plugins.

Each case must end in one readable line and a non-zero exit (or in correct behaviour), with
nothing lost or half-written. The download and model-card cases are in test_zoo.py.
"""

import json
import re
import os
import subprocess
import sys
import threading

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import ganzoo
from ganzoo.cli import main
from ganzoo.testing import temporary_distribution

TOY = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]
FAST = [*TOY, "--n-critic", "1", "--log-every", "1", "--quiet"]


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganzoo: error:"), err
    return err[0]


def snapshot(folder):
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def run(tmp_path):
    """A finished 3-step run with a checkpoint at step 3 (RMSprop: WGAN's defaults)."""
    out = tmp_path / "run"
    assert main(["train", "--loss", "wgan", *FAST, "--steps", "3", "--checkpoint-every", "3", "--out", str(out)]) == 0
    return out


def rewrite(path, change_tensors=None, change_metadata=None):
    tensors = load_file(path)
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    tensors = change_tensors(tensors) if change_tensors else tensors
    metadata = change_metadata(metadata) if change_metadata else metadata
    save_file(tensors, str(path), metadata=metadata)


# -- checkpoints: every tensor and number is checked before it is used ----------------------------


def _shape(t):
    return {k: (torch.zeros(3, 3) if k.startswith("optimizer_critic.0.") else v) for k, v in t.items()}


def _nan(t):
    return {k: (v.fill_(float("nan")) if k == "generator.net.0.weight" else v) for k, v in t.items()}


def _int(t):
    return {k: (v.to(torch.int32) if k == "critic.net.0.bias" else v) for k, v in t.items()}


def _short_rng(t):
    return {**t, "rng.cpu": t["rng.cpu"][:100]}


@pytest.mark.parametrize(
    ("tensors", "metadata", "needle"),
    [
        (_shape, None, r"optimizer_critic\.0\.square_avg has shape \(3, 3\), expected its parameter's shape \(\d+,\)"),
        (_nan, None, "generator.net.0.weight holds NaN or infinite values"),
        (_int, None, "critic.net.0.bias has dtype torch.int32, expected torch.float32"),
        (_short_rng, None, "RNG state rng.cpu is missing or not 5056 bytes"),
        (None, lambda m: {**m, "step": "-3"}, r"'step' metadata is '-3', expected a whole number from 0"),
        (None, lambda m: {**m, "step": "2.5"}, r"'step' metadata is '2.5'"),
        (None, lambda m: {**m, "step": str(10**12)}, r"'step' metadata is '1000000000000'"),
        (None, lambda m: {**m, "step": "2"}, "its metadata says step 2, its name another"),
        (None, lambda m: {**m, "config": "[" * 100_000}, "lacks valid 'config' metadata"),
        (None, lambda m: {**m, "optimizer_critic": "[]"}, "'optimizer_critic' metadata is a JSON list, expected a dict"),
    ],
    ids=["optimizer-shape", "nan", "int-dtype", "short-rng", "negative-step", "fraction-step", "absurd-step",
         "step-vs-name", "deep-json", "optimizer-meta"],
)  # fmt: skip
def test_resume_checks_everything_it_reads(run, capsys, tensors, metadata, needle):
    checkpoint = run / "checkpoints" / "step-0000003.safetensors"
    rewrite(checkpoint, tensors, metadata)
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--steps", "6"]) == 2
    assert re.search(needle, one_error_line(capsys))
    assert snapshot(run) == before


def _state(name, change):
    """Replace the critic optimizer's state tensor `name` (of its first parameter) by change(it)."""
    return lambda t: {k: (change(v) if k == f"optimizer_critic.0.{name}" else v) for k, v in t.items()}


@pytest.mark.parametrize("optimizer", ["rmsprop", "adam"])
@pytest.mark.parametrize(
    ("name", "change", "needle"),
    [
        ("avg", lambda v: torch.zeros(()), r"avg has shape \(\), expected its parameter's shape"),
        ("avg", lambda v: torch.zeros(1), r"avg has shape \(1,\), expected its parameter's shape"),
        ("avg_sq", lambda v: v - 1, "holds negative values; the optimizer takes its square root"),
        ("step", lambda v: v + 1, r"optimizer_critic\.0\.step counts 301 updates, but the run made 300"),
        ("step", lambda v: torch.full((1,), float(v)), r"\.step has shape \(1,\), expected a scalar"),
    ],
    ids=["0-d", "one-element", "negative", "step-count", "step-shape"],
)
def test_optimizer_state_must_fit_its_parameter(tmp_path, capsys, optimizer, name, change, needle):
    """A fused optimizer trusts the sizes of its state: a scalar in place of a parameter-sized
    buffer was read and written past its end (NaN, or a segfault), so each one is checked."""
    out = tmp_path / "run"
    args = ["--loss", "wgan", "--optimizer", optimizer, *FAST, "--steps", "3", "--checkpoint-every", "3"]
    assert main(["train", *args, "--out", str(out)]) == 0
    key = {"rmsprop": {"avg": "square_avg", "avg_sq": "square_avg"}, "adam": {"avg": "exp_avg", "avg_sq": "exp_avg_sq"}}
    checkpoint = out / "checkpoints" / "step-0000003.safetensors"
    rewrite(checkpoint, _state(key[optimizer].get(name, name), change))
    before = snapshot(out)
    assert main(["train", "--resume", str(out), "--steps", "6"]) == 2
    assert re.search(needle, one_error_line(capsys))
    assert snapshot(out) == before


def test_a_run_folder_belongs_to_one_live_run_and_kill_9_frees_it(run, capsys):
    """A second run (new or --resume) into a folder a live run writes is refused, naming the holder;
    the OS lock dies with its process, so after kill -9 the folder can be resumed at once."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["train", "--resume", str(run), "--steps", "10000000", "--checkpoint-every", "1000000"]
    holder = subprocess.Popen([sys.executable, "-m", "ganzoo", *args], env=env, stderr=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    try:
        lock = run / ".ganzoo-lock"
        for _ in range(600):  # up to a minute for torch to import and the run to start
            if lock.is_file() and lock.read_text() == str(holder.pid):
                break
            assert holder.poll() is None, "the holding run ended early"
            threading.Event().wait(0.1)
        else:
            pytest.fail("the holding run never took its folder")
        before = {p: data for p, data in snapshot(run).items() if p != lock and "samples" not in p.parts}
        refusal = f"{run} is in use by another run (process {holder.pid})"
        assert main(["train", "--loss", "wgan", *FAST, "--steps", "3", "--out", str(run)]) == 2
        assert refusal in one_error_line(capsys)
        assert main(["train", "--resume", str(run), "--steps", "6"]) == 2
        assert refusal in one_error_line(capsys)
        checkpoints = {p: d for p, d in snapshot(run).items() if "checkpoints" in p.parts}
        assert checkpoints == {p: d for p, d in before.items() if "checkpoints" in p.parts}
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert main(["train", "--resume", str(run), "--steps", "4", "--quiet"]) == 0  # no stale lock left
    assert not lock.exists()  # a finished run leaves its files alone


def test_resume_trains_with_the_overridden_learning_rates(run):
    assert main(["train", "--resume", str(run), "--steps", "4", "--lr-critic", "0.001", "--quiet"]) == 0
    with safe_open(str(run / "checkpoints" / "step-0000004.safetensors"), "pt") as f:
        metadata = f.metadata()
    assert json.loads(metadata["optimizer_critic"])["param_groups"][0]["lr"] == 0.001
    assert json.loads(metadata["optimizer_generator"])["param_groups"][0]["lr"] == 5e-5
    assert json.loads(metadata["config"])["lr_critic"] == 0.001
    assert main(["train", "--resume", str(run), "--steps", "5", "--lr", "0.002", "--quiet"]) == 0  # both networks
    with safe_open(str(run / "checkpoints" / "step-0000005.safetensors"), "pt") as f:
        metadata = f.metadata()
    for optimizer in ("optimizer_critic", "optimizer_generator"):
        assert json.loads(metadata[optimizer])["param_groups"][0]["lr"] == 0.002


def test_betas_flag_reaches_adam_and_bad_betas_are_one_line(tmp_path, capsys):
    out = tmp_path / "adam"
    flags = ["train", "--loss", "nonsaturating", "--steps", "2", "--device", "cpu", "--quiet", "--out", str(out)]
    assert main([*flags, "--betas", "0.8", "0.999"]) == 0
    with safe_open(str(out / "checkpoints" / "step-0000002.safetensors"), "pt") as f:
        metadata = f.metadata()
    for optimizer in ("optimizer_critic", "optimizer_generator"):
        assert json.loads(metadata[optimizer])["param_groups"][0]["betas"] == [0.8, 0.999]
    assert main([*flags[:-2], "--out", str(tmp_path / "bad"), "--betas", "1", "0.5"]) == 2
    assert "'betas.0': must be in [0, 1) (got 1.0)" in one_error_line(capsys)
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize(("flag", "value"), [("--seed", "7"), ("--optimizer", "adam")])
def test_resume_refuses_what_it_cannot_apply(run, capsys, flag, value):
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--steps", "6", flag, value]) == 2
    assert f"{flag} cannot change on --resume" in one_error_line(capsys)
    assert snapshot(run) == before


def test_a_torn_last_metrics_line_is_dropped_on_resume(run):
    metrics = run / "metrics.jsonl"
    metrics.write_text(metrics.read_text() + '{"step": 4, "critic_lo')  # the disk filled mid-record
    assert main(["train", "--resume", str(run), "--steps", "5", "--quiet"]) == 0
    assert [json.loads(line)["step"] for line in metrics.read_text().splitlines()] == [1, 2, 3, 4, 5]


def test_stale_temp_files_of_a_killed_run_are_removed_and_live_ones_kept(run):
    from test_zoo import dead_pid

    dead = run / "checkpoints" / f".step-0000004.safetensors.{dead_pid()}.tmp"
    live = run / "checkpoints" / f".step-0000004.safetensors.{os.getppid()}.tmp"
    dead.write_bytes(b"half")
    live.write_bytes(b"someone is writing")
    assert main(["train", "--resume", str(run), "--steps", "4", "--quiet"]) == 0
    assert not dead.exists() and live.exists()


# -- config files and plugin options: strict types, no NaN ----------------------------------------


@pytest.mark.parametrize(
    ("text", "suffix", "needle"),
    [
        ('{"loss": "wgan", "steps": true}', ".json", "'steps': Input should be a valid integer (got True)"),
        ('{"loss": "wgan", "compile": "yes"}', ".json", "'compile': Input should be a valid boolean (got 'yes')"),
        ('loss = "wgan"\nsteps = 2.0\n', ".toml", "'steps': Input should be a valid integer"),
        ('{"loss": "wgan", "lr": NaN}', ".json", "'lr': Input should be a finite number"),
        ('{"loss": "wgan", "seed": -1}', ".json", "'seed': Input should be greater than or equal to 0"),
        ('{"loss": "wgan", "seed": 18446744073709551616}', ".json", "'seed': Input should be less than"),
        ('{"loss": "wgan", "betas": [0.5, 1.5]}', ".json", "'betas.1': must be in [0, 1) (got 1.5)"),
        ('["loss", "wgan"]', ".json", "holds a JSON list; it must hold an object of settings"),
        ('{"loss": "wgan", "stepz": 3}', ".json", "unknown setting 'stepz'; did you mean 'steps'?"),
        ('{"loss": "wgan", "constraints": [{"name": "clip", "c": 0.1}]}', ".json",
         "unknown key 'c' in constraints.0: a plugin spec has a name and options (clip's options: c)"),
        ('{"loss": "wgan", "constraints": [{"name": "clip", "options": {"c": true}}]}', ".json",
         "constraint 'clip': option 'c': Input should be a valid number (got True)"),
        ('{"loss": {"name": "instance-noise", "options": {"anneal": "no"}}}', ".json",
         "loss 'instance-noise': option 'anneal': Input should be a valid boolean"),
    ],
)  # fmt: skip
def test_config_files_are_validated_strictly(tmp_path, capsys, text, suffix, needle):
    config = tmp_path / f"run{suffix}"
    config.write_text(text)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    assert needle in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


def test_options_given_as_text_are_still_converted(tmp_path):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"loss": "instance-noise:anneal=false,sigma=0.2", "constraints": ["clip:c=0.02"]}))
    assert main(["train", "--config", str(config), *FAST, "--steps", "1", "--out", str(tmp_path / "out")]) == 0
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert saved["loss"]["options"] == {"base": "nonsaturating", "sigma": 0.2, "anneal": False}


@pytest.mark.parametrize("data", ["ring8:radius=inf", "ring8:std=nan", "ring8:radius=1e40", "grid25:spacing=-inf"])
def test_non_finite_or_absurd_dataset_options_are_refused(capsys, data):
    assert main(["evaluate", "nonsaturating-ring8", "--data", data]) == 2
    line = one_error_line(capsys)
    assert "dataset" in line and ("finite" in line or "less than or equal" in line or "greater than" in line)


def test_a_w1_the_solver_could_not_finish_is_reported(monkeypatch, capsys):
    import ot

    monkeypatch.setattr(ot, "emd2", lambda *a, **k: (0.0, {"result_code": 2, "warning": "numItermax reached"}))
    assert main(["evaluate", "nonsaturating-ring8"]) == 1
    assert "W1 could not be computed: the exact solver stopped with 'numItermax reached'" in one_error_line(capsys)


# -- plugins that misbehave ---------------------------------------------------------------------


@pytest.mark.parametrize("source", ["import sys\nsys.exit(3)\n", "raise SystemExit('bye')\n", "raise GeneratorExit\n"])
def test_a_plugin_that_exits_at_import_is_listed_as_broken(tmp_path, capsys, source):
    with temporary_distribution(tmp_path, "exiting", {"ganzoo.losses": {"exiting": "exiting_mod:L"}},
                                modules={"exiting_mod": source}):  # fmt: skip
        assert main(["list", "loss"]) == 0
        row = next(line for line in capsys.readouterr().out.splitlines() if line.split()[:2] == ["loss", "exiting"])
        assert "broken" in row and ("SystemExit" in row or "GeneratorExit" in row)
        assert main(["train", "--loss", "exiting"]) == 1
        assert "loss 'exiting' from exiting 0.0.1 is broken" in one_error_line(capsys)


def test_a_plugin_that_fails_in_its_constructor_is_named(tmp_path, capsys):
    source = "import ganzoo\nclass L(ganzoo.Loss):\n    '''Fails.'''\n    def __init__(self, config):\n        raise ValueError('no')\n"
    with temporary_distribution(tmp_path, "failing", {"ganzoo.losses": {"failing": "failing_mod:L"}},
                                modules={"failing_mod": source}):  # fmt: skip
        assert main(["train", "--loss", "failing", "--out", str(tmp_path / "out")]) == 1
    assert "loss 'failing' failed to build: ValueError: no" in one_error_line(capsys)


# -- exported generator files ---------------------------------------------------------------------


@pytest.fixture
def exported(tmp_path):
    generator = ganzoo.create_generator("mlp", sample_shape=(2,), width=8)
    return ganzoo.save_generator(generator, tmp_path / "g.safetensors", "mlp")


def test_an_exported_file_names_its_plugin_with_its_distribution(exported):
    with safe_open(str(exported), "pt") as f:
        assert f.metadata()["plugin"] == "ganzoo/mlp"


@pytest.mark.parametrize(
    ("tensors", "metadata", "needle"),
    [
        (lambda t: {k: v.to(torch.int64) for k, v in t.items()}, None, "has dtype torch.int64, expected torch.float32"),
        (lambda t: {k: v.fill_(float("nan")) for k, v in t.items()}, None, "holds NaN or infinite values"),
        (None, lambda m: {**m, "config": "[1, 2]"}, "'config' metadata is a JSON list, expected a dict"),
        (None, lambda m: {**m, "config": "[" * 100_000}, "lacks valid 'config' metadata"),
        (None, lambda m: {**m, "config": json.dumps({**json.loads(m["config"]), "width": True})}, "option 'width'"),
    ],
    ids=["int", "nan", "config-list", "deep", "strict-config"],
)
def test_a_damaged_generator_file_is_refused(exported, tmp_path, capsys, tensors, metadata, needle):
    rewrite(exported, tensors, metadata)
    out = tmp_path / "picture.png"
    assert main(["sample", str(exported), "--out", str(out)]) == 2
    assert needle in one_error_line(capsys)
    assert not out.exists()


def test_shapes_are_checked_before_the_generator_is_allocated(exported, tmp_path):
    def wide(metadata):
        return {**metadata, "config": json.dumps({**json.loads(metadata["config"]), "width": 16384, "depth": 3})}

    rewrite(exported, change_metadata=wide)  # 16384-wide layers: 2.6 GB if built before the check
    # The peak is this process's own VmHWM: ru_maxrss would count the forking pytest's memory too.
    probe = (
        "import re, ganzoo\n"
        "try:\n    ganzoo.load_generator(__import__('sys').argv[1])\n"
        "except ganzoo.CheckpointError as e:\n    print(e)\n"
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)) // 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(exported)], capture_output=True, text=True, timeout=120)
    message, peak_mb = result.stdout.strip().splitlines()
    assert "has shape (8, 2), expected (16384, 2)" in message
    assert int(peak_mb) < 1500  # torch alone is a few hundred MB; the wide generator would be 2.6 GB


def test_sample_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    (tmp_path / "some" / "folder").mkdir(parents=True)
    assert main(["sample", str(tmp_path / "some" / "folder")]) == 2
    assert "is a folder without a model card; give an exported .safetensors file" in one_error_line(capsys)


def test_evaluate_never_reads_files_a_generator_file_names(exported, capsys):
    rewrite(exported, change_metadata=lambda m: {**m, "trained": json.dumps({"data": "folder:path=/usr"})})
    assert main(["evaluate", str(exported)]) == 2
    assert "was trained on 'folder:path=/usr', which reads files; pass --data" in one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file: no permission to deny")
def test_an_unreadable_file_says_permission_denied(exported, capsys):
    exported.chmod(0)
    assert main(["sample", str(exported)]) == 2
    assert "cannot be read: Permission denied" in one_error_line(capsys)


# -- round 3: duplicates, bounds, long values, odd files, plot input ------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--log", "tensorboard", "--log", "tensorboard"],
        ["--constraint", "gradient-penalty", "--constraint", "gradient-penalty:weight=1"],
        ["--constraint", "spectral-norm", "--constraint", "spectral-norm"],
        ["--constraint", "clip:c=0.01", "--constraint", "clip:c=0.02"],
    ],
    ids=["logger", "gradient-penalty", "spectral-norm", "clip"],
)
def test_a_plugin_named_twice_is_one_line(tmp_path, capsys, flags):
    out = tmp_path / "run"
    assert main(["train", "--loss", "wgan", *FAST, *flags, "--out", str(out)]) == 2
    assert f"names '{flags[1].split(':')[0]}' twice; each plugin takes part once" in one_error_line(capsys)
    assert not out.exists()


def test_a_json_config_with_a_duplicated_key_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text('{"loss": "wgan", "steps": 3, "steps": 3000}')
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "the key 'steps' appears twice in one object" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--constraint", "spectral-norm:power_iterations=1000000000"], "less than or equal to 100"),
        (["--batch-size", str(10**18)], "'batch_size': Input should be less than or equal to 16777216"),
    ],
)
def test_absurd_sizes_are_refused_before_anything_is_allocated(tmp_path, capsys, flags, needle):
    assert main(["train", "--loss", "wgan", *TOY[:4], *flags, "--out", str(tmp_path / "run")]) == 2
    assert needle in one_error_line(capsys)


def test_a_huge_value_is_never_echoed_whole(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"loss": "wgan", "device": "x" * 1_000_000}))
    assert main(["train", "--config", str(config)]) == 2
    line = one_error_line(capsys)
    assert len(line) < 500 and "(1,000,002 characters)" in line


def test_a_config_file_of_megabytes_is_refused_by_its_size(tmp_path, capsys):
    config = tmp_path / "run.json"
    config.write_text('{"loss": "wgan", "pad": "' + "x" * 45_000_000 + '"}')
    assert main(["train", "--config", str(config)]) == 2
    assert "holds 45,000,027 bytes; a config holds at most 1,048,576" in one_error_line(capsys)


def test_a_config_file_that_is_not_utf8_is_one_line(tmp_path, capsys):
    config = tmp_path / "run.toml"
    config.write_bytes(b'loss = "wgan"\nsteps = 3 # \xff\xfe\n')
    assert main(["train", "--config", str(config)]) == 2
    assert f"config file {config} is not UTF-8 text (byte 26)" in one_error_line(capsys)


def test_a_nested_pac_option_error_names_the_base_option(tmp_path, capsys):
    assert main(["train", "--loss", "wgan", "--critic", "pac:m=2,base=mlp:widht=3", "--out", str(tmp_path / "r")]) == 2
    assert one_error_line(capsys) == (
        "ganzoo: error: critic 'pac': base critic 'mlp': option 'widht': Extra inputs are not permitted (got '3')"
    )


def test_a_penalty_on_a_batchnorm_critic_warns(tmp_path, capsys):
    flags = ["--loss", "wgan", "--constraint", "gradient-penalty", "--data", "digits:size=16", "--generator", "dcgan:width=8",
             "--critic", "dcgan:width=8", "--batch-size", "8", "--n-critic", "1", "--steps", "1", "--quiet"]  # fmt: skip
    assert main(["train", *flags, "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "warning: critic 'dcgan' has BatchNorm layers" in err and "gradient-penalty penalises" in err
    flags[flags.index("dcgan:width=8", flags.index("--critic"))] = "dcgan:width=8,norm=layer"
    assert main(["train", *flags, "--out", str(tmp_path / "layer-norm")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_a_plugin_interrupting_its_import_is_listed_as_broken_and_hides_nothing(tmp_path, capsys):
    points = {"ganzoo.losses": {"ctrl-c": "ctrl_c_loss:Loss", "fine": "fine_loss:Fine"}}
    modules = {"ctrl_c_loss": "raise KeyboardInterrupt\n",
               "fine_loss": "import ganzoo\nclass Fine(ganzoo.Loss):\n    '''Fine.'''\n"}  # fmt: skip
    with temporary_distribution(tmp_path, "ctrl-c-plugins", points, modules=modules):
        assert main(["list", "loss"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"ctrl-c .* broken .*KeyboardInterrupt", out) and re.search(r"fine .* ok", out)


def test_resume_with_fewer_steps_than_done_is_one_line_and_keeps_the_config(run, capsys):
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--steps", "2"]) == 2
    assert f"--steps 2 is below step 3, where {run} stopped" in one_error_line(capsys)
    assert snapshot(run) == before


def test_plot_skips_records_it_cannot_draw_with_a_notice(run, tmp_path, capsys):
    good = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(good + '\n[1, 2]\n{"critic_loss": 1}\n{"step": 4, "critic_loss": NaN}\n{"step": 5, "cri')
    assert main(["plot", str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert "skipped 5 of 8 lines (empty, torn, not a record, or not finite)" in capsys.readouterr().err


def test_plot_of_twenty_runs_keeps_short_labels(tmp_path):
    from ganzoo.pictures import short_labels

    names = [f"wgan-ring8-seed{i}-20261201-1012" for i in range(20)]
    assert short_labels(names) == [f"seed{i}" for i in range(20)]
    runs = {name: [{"step": s, "critic_loss": -0.01 * s, "generator_loss": 0.1, "wasserstein": 0.01 * s,
                    "grad_norm_critic": 1.0, "grad_norm_generator": 0.1} for s in (1, 2, 3)] for name in names}  # fmt: skip
    from PIL import Image

    from ganzoo.pictures import save_curves

    with Image.open(save_curves(tmp_path / "twenty.png", runs)) as picture:
        assert picture.width >= 1200 and picture.height >= 1500  # 4 columns of loss panels, 5 rows
