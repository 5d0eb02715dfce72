"""Watching a run: logger plugins (TensorBoard built in, any third party's), curves.png and `ganzoo plot`."""

import json

import pytest
import torch
from PIL import Image

import ganzoo
from ganzoo.cli import main
from ganzoo.testing import temporary_distribution

TOY = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]
FAST = [*TOY, "--n-critic", "1", "--log-every", "2", "--sample-every", "4", "--quiet"]


def train(tmp_path, name, *flags):
    out = tmp_path / name
    assert main(["train", *flags, *FAST, "--out", str(out)]) == 0
    return out


def test_tensorboard_gets_scalars_pictures_and_the_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tensorboard.plugins.hparams import plugin_data_pb2

    run = train(tmp_path, "tb", "--loss", "wgan", "--constraint", "clip", "--steps", "8", "--log", "tensorboard")
    files = [EventAccumulator(str(f), size_guidance={"images": 0, "scalars": 0}).Reload()
             for f in sorted((run / "tensorboard").glob("events.out.tfevents.*"))]  # fmt: skip
    events = next(f for f in files if f.Tags()["scalars"])  # the writer's own file; hparams have another
    tags = events.Tags()
    expected = {"critic_loss", "generator_loss", "wasserstein", "grad_norm_critic", "grad_norm_generator", "sec_per_step"}
    assert expected <= set(tags["scalars"])
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e.step for e in events.Scalars("critic_loss")] == [r["step"] for r in logged] == [2, 4, 6, 8]
    assert [e.value for e in events.Scalars("wasserstein")] == pytest.approx([r["wasserstein"] for r in logged])
    assert {"samples", "curves"} <= set(tags["images"])
    assert [e.step for e in events.Images("samples")] == [4, 8]
    assert json.loads(run.joinpath("config.json").read_text())["loggers"] == [
        {"name": "tensorboard", "options": {"subdir": "tensorboard"}}
    ]
    (start,) = [f.PluginTagToContent("hparams")["_hparams_/session_start_info"] for f in files if not f.Tags()["scalars"]]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(start).session_start_info.hparams
    assert hparams["steps"].number_value == 8 and json.loads(hparams["loss"].string_value)["name"] == "wgan"


RECORDER = """
import json
import ganzoo

class Recorder(ganzoo.Logger):
    '''Writes what it is given to a file, as a wandb or mlflow logger would send it.'''
    class Config(ganzoo.Config):
        file: str
    def start(self, run_dir, config):
        self.calls = [["start", config["loss"]["name"]]]
    def log_metrics(self, step, metrics):
        self.calls.append(["metrics", step, sorted(metrics)])
    def log_picture(self, step, name, path):
        self.calls.append(["picture", step, name, path.name])
    def close(self):
        with open(self.config.file, "w") as f:
            json.dump(self.calls, f)
"""


def test_a_third_party_logger_is_one_small_plugin(tmp_path):
    points = {"ganzoo.loggers": {"recorder": "recorder_logger:Recorder"}}
    with temporary_distribution(tmp_path / "site", "recorder", points, modules={"recorder_logger": RECORDER}):
        record = tmp_path / "calls.json"
        train(tmp_path, "run", "--loss", "minimax", "--steps", "4", "--log", f"recorder:file={record}")
    calls = json.loads(record.read_text())
    assert calls[0] == ["start", "minimax"]
    assert [c[1] for c in calls if c[0] == "metrics"] == [2, 4]
    assert ["picture", 4, "samples", "step-0000004.png"] in calls and ["picture", 4, "curves", "curves.png"] in calls


def test_a_logger_that_is_not_installed_is_one_line(tmp_path, capsys):
    assert main(["train", "--loss", "wgan", "--log", "wandb", "--out", str(tmp_path / "out")]) == 2
    assert "no logger named 'wandb'" in capsys.readouterr().err


def test_every_run_keeps_curves_and_plot_overlays_runs(tmp_path):
    minimax = train(tmp_path, "minimax-ring8", "--loss", "minimax", "--steps", "8")
    wgan = train(tmp_path, "wgan-ring8", "--loss", "wgan", "--constraint", "clip", "--steps", "8")
    with Image.open(minimax / "curves.png") as picture:
        assert picture.format == "PNG" and picture.width > 300
    out = tmp_path / "compare.png"
    assert main(["plot", str(minimax), str(wgan), "--out", str(out)]) == 0
    with Image.open(out) as picture:
        assert picture.height > 500  # three panels: losses, the Wasserstein estimate, gradient norms


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["plot", "no-such-run"], "cannot read no-such-run/metrics.jsonl"),
        (["plot", ".", "--out", "curves.gif"], "pictures are written as .png, .jpg, .jpeg"),
    ],
)
def test_plot_errors_are_one_line(tmp_path, monkeypatch, capsys, args, needle):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "critic_loss": 0.5}\n')
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]


def test_sample_writes_the_format_its_file_name_asks_for(tmp_path):
    assert main(["sample", "nonsaturating-ring8", "--out", str(tmp_path / "ring.jpg")]) == 0
    with Image.open(tmp_path / "ring.jpg") as picture:
        assert picture.format == "JPEG"


def test_ema_is_warmed_up_so_early_pictures_show_a_trained_generator(tmp_path):
    run = train(tmp_path, "ema", "--loss", "minimax", "--steps", "2", "--ema", "0.999", "--checkpoint-every", "2")
    from safetensors.torch import load_file

    exported = load_file(run / "generator.safetensors")  # the EMA copy
    checkpoint = load_file(run / "checkpoints" / "step-0000002.safetensors")
    # the warm-up's decay starts at 0: after the first steps the EMA copy is the generator itself
    assert all(torch.equal(exported[k], checkpoint[f"generator.{k}"]) for k in exported)


def test_sample_draws_real_points_beside_2d_samples_when_the_data_is_known(tmp_path):
    from ganzoo.cli import real_points

    points = real_points("nonsaturating-ring8", seed=0)
    assert points.shape == (1000, 2)
    assert real_points("nonsaturating-digits", seed=0).shape == (1000, 1, 16, 16)  # asked only for 2-D data
    generator = ganzoo.create_generator("mlp", sample_shape=(2,), width=4)
    bare = ganzoo.save_generator(generator, tmp_path / "bare.safetensors", "mlp")  # no recorded data
    assert real_points(str(bare), seed=0) is None


def test_help_shows_whole_summaries(capsys):
    assert main(["--help"]) == 0
    commands = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in capsys.readouterr().out.split("Commands:")[1].strip().splitlines()}
    assert commands["train"] == "Train a GAN, e.g. --loss wgan --constraint clip."
    assert not any(summary.endswith("...") for summary in commands.values()), commands


FAULTY = """
import ganzoo

class Faulty(ganzoo.Logger):
    '''Raises in the method its option names.'''
    class Config(ganzoo.Config):
        fails_in: str
    def fail(self, method):
        if self.config.fails_in == method:
            raise RuntimeError(f"{method} broke")
    def start(self, run_dir, config):
        self.fail("start")
    def log_metrics(self, step, metrics):
        self.fail("log_metrics")
    def log_picture(self, step, name, path):
        self.fail("log_picture")
    def close(self):
        self.fail("close")
"""


@pytest.fixture
def faulty(tmp_path):
    points = {"ganzoo.loggers": {"faulty": "faulty_logger:Faulty"}}
    with temporary_distribution(tmp_path / "site", "faulty", points, modules={"faulty_logger": FAULTY}):
        yield


def test_a_logger_that_cannot_start_is_named_and_leaves_no_run_folder(tmp_path, faulty, capsys):
    out = tmp_path / "run"
    assert main(["train", "--loss", "minimax", *FAST, "--steps", "4", "--log", "faulty:fails_in=start", "--out", str(out)]) == 1
    assert capsys.readouterr().err.strip() == "ganzoo: error: logger 'faulty' failed to start: RuntimeError: start broke"
    assert not out.exists()


@pytest.mark.parametrize("method", ["log_metrics", "log_picture", "close"])
def test_a_logger_failing_later_is_dropped_with_one_warning_and_the_run_finishes(tmp_path, faulty, capsys, method):
    run = train(tmp_path, "run", "--loss", "minimax", "--steps", "8", "--checkpoint-every", "4",
                "--log", f"faulty:fails_in={method}", "--log", "tensorboard")  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ganzoo: warning: logger 'faulty' failed in {method} (RuntimeError: {method} broke); "
                   "ganzoo goes on without it"]  # fmt: skip
    assert (run / "generator.safetensors").is_file()
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 4  # every record, the good logger's too
    assert main(["train", "--resume", str(run), "--steps", "10", "--quiet"]) == 0


def test_the_error_that_ended_a_run_is_not_hidden_by_a_failing_close(tmp_path, faulty, monkeypatch, capsys):
    def diverge(self, values):
        raise ganzoo.TrainingError("training diverged at step 2")

    monkeypatch.setattr(ganzoo.loop.Trainer, "check_finite", diverge)
    args = ["--loss", "minimax", *FAST, "--steps", "4", "--log", "faulty:fails_in=close", "--out", str(tmp_path / "r")]
    assert main(["train", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "ganzoo: error: training diverged at step 2" and len(err) == 2


@pytest.mark.parametrize("subdir", ["../outside", "/tmp/elsewhere", "a/../../b"])
def test_tensorboard_writes_only_inside_the_run_folder(tmp_path, capsys, subdir):
    out = tmp_path / "run"
    assert main(["train", "--loss", "wgan", *FAST, "--log", f"tensorboard:subdir={subdir}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "must be a folder inside the run folder" in err[0]
    assert not out.exists() and not (tmp_path / "outside").exists()
