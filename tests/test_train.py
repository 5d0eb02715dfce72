"""The shared loop end to end, through the CLI as a user runs it."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import ganzoo
import ganzoo.loop
import ganzoo.step
from ganzoo.cli import main
from ganzoo.testing import temporary_distribution

LOSSES = ["minimax", "nonsaturating", "instance-noise", "wgan"]
FAST = ["--steps", "3", "--batch-size", "16", "--n-critic", "1", "--log-every", "1", "--quiet"]
TOY_NETS = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1"]
IMAGE_NETS = ["--generator", "dcgan:width=8", "--critic", "dcgan:width=8"]


def train_cli(tmp_path, *args, name="run"):
    out = tmp_path / name
    return main(["train", *args, "--out", str(out)]), out


def records(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("clip", [False, True], ids=["plain", "clip"])
@pytest.mark.parametrize("data,nets", [("ring8", TOY_NETS), ("digits:size=16", IMAGE_NETS)], ids=["ring8", "digits"])
def test_every_loss_trains_from_the_cli(tmp_path, loss, clip, data, nets):
    constraint = ["--constraint", "clip"] if clip else []
    code, run = train_cli(tmp_path, "--loss", loss, *constraint, "--data", data, *nets, *FAST)
    assert code == 0
    rows = records(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(torch.isfinite(torch.tensor(r["critic_loss"])) for r in rows)
    assert ("wasserstein" in rows[-1]) == (loss == "wgan")
    assert {"grad_norm_critic", "grad_norm_generator", "sec_per_step", "generator_loss"} <= rows[-1].keys()
    saved = json.loads((run / "config.json").read_text())
    assert saved["loss"]["name"] == loss and len(saved["constraints"]) == int(clip)
    assert (run / "samples" / "step-0000003.png").stat().st_size > 0
    generator = ganzoo.load_generator(run / "generator.safetensors")
    assert generator.sample(2).shape[1:] == ((2,) if data == "ring8" else (1, 16, 16))


def test_wgan_defaults_follow_the_paper(tmp_path):
    code, run = train_cli(tmp_path, "--loss", "wgan", "--constraint", "clip", *TOY_NETS, "--steps", "1", "--quiet")
    assert code == 0
    saved = json.loads((run / "config.json").read_text())
    assert (saved["optimizer"], saved["lr"], saved["n_critic"], saved["batch_size"]) == ("rmsprop", 5e-5, 5, 64)
    assert (saved["critic_boost"], saved["critic_boost_first"], saved["critic_boost_every"]) == (100, 25, 500)
    assert saved["constraints"] == [{"name": "clip", "options": {"c": 0.01}}]


def test_critic_schedule_boosts_early_and_every_500th():
    cfg = ganzoo.loop.plan({"loss": "wgan"}).config
    steps = [ganzoo.step.critic_steps(i, cfg) for i in (0, 24, 25, 499, 500, 1000, 1001)]
    assert steps == [100, 100, 5, 5, 100, 100, 5]
    assert ganzoo.step.critic_steps(0, ganzoo.loop.plan({"loss": "minimax"}).config) == 1


def test_resume_reports_the_steps_it_trained(tmp_path, capsys):
    common = ["--loss", "minimax", *TOY_NETS, "--batch-size", "16", "--quiet", "--checkpoint-every", "2"]
    assert train_cli(tmp_path, *common, "--steps", "2", name="run")[0] == 0
    assert "trained 2 steps in" in capsys.readouterr().out
    assert main(["train", "--resume", str(tmp_path / "run"), "--steps", "5", "--quiet"]) == 0
    assert "trained 3 more steps (to step 5) in" in capsys.readouterr().out


def test_resume_gives_the_same_weights_as_one_run(tmp_path):
    common = ["--loss", "wgan", "--constraint", "clip", *TOY_NETS, "--batch-size", "16", "--quiet"]
    common += ["--checkpoint-every", "4", "--ema", "0.9", "--log-every", "1"]
    assert train_cli(tmp_path, *common, "--steps", "8", name="whole")[0] == 0
    assert train_cli(tmp_path, *common, "--steps", "4", name="halves")[0] == 0
    assert main(["train", "--resume", str(tmp_path / "halves"), "--steps", "8", "--quiet"]) == 0
    whole = load_file(tmp_path / "whole" / "checkpoints" / "step-0000008.safetensors")
    halves = load_file(tmp_path / "halves" / "checkpoints" / "step-0000008.safetensors")
    assert whole.keys() == halves.keys()
    for key in whole:
        assert torch.equal(whole[key], halves[key]), key
    assert [r["step"] for r in records(tmp_path / "halves")] == list(range(1, 9))


def test_config_file_with_flags_overriding_it(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('loss = "minimax"\nsteps = 50\nbatch_size = 8\n[generator]\nname = "mlp"\noptions = { width = 8 }\n')
    code, run = train_cli(tmp_path, "--config", str(config), "--steps", "2", "--quiet")
    assert code == 0
    saved = json.loads((run / "config.json").read_text())
    assert (saved["loss"]["name"], saved["steps"], saved["batch_size"]) == ("minimax", 2, 8)
    assert saved["generator"]["options"]["width"] == 8


def test_sample_command_writes_a_picture(tmp_path):
    code, run = train_cli(tmp_path, "--loss", "minimax", "--data", "digits", *IMAGE_NETS, *FAST)
    assert code == 0
    picture = tmp_path / "grid.png"
    assert main(["sample", str(run / "generator.safetensors"), "--n", "16", "--seed", "0", "--out", str(picture)]) == 0
    from PIL import Image

    with Image.open(picture) as image:
        assert image.size[0] > 100 and image.mode == "L"


def test_exported_generator_rebuilds_exactly(tmp_path):
    generator = ganzoo.create_generator("mlp", sample_shape=(2,), width=8)
    path = ganzoo.save_generator(generator, tmp_path / "g.safetensors", "mlp")
    again = ganzoo.load_generator(path)
    z = torch.randn(5, generator.latent_dim)
    assert torch.equal(generator.eval()(z), again(z))
    assert again.config == generator.config


# -- bad input: one line, a non-zero exit, nothing overwritten -----------------------------------


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganzoo: error:"), err
    return err[0]


@pytest.mark.parametrize(
    "flags,needle",
    [
        (["--loss", "wgn"], "did you mean 'wgan'"),
        (["--loss", "wgan", "--constraint", "clipp"], "no constraint named 'clipp'"),
        (["--loss", "wgan", "--data", "ring9"], "no dataset named 'ring9'"),
        (["--loss", "wgan", "--generator", "dcgn"], "no generator named 'dcgn'"),
        (["--loss", "wgan", "--critic", "nope"], "no critic named 'nope'"),
        (["--loss", "wgan", "--constraint", "clip:c=big"], "option 'c'"),
        (["--loss", "instance-noise:base=hinge"], "option 'base'"),
        (["--loss", "wgan", "--generator", "dcgan"], "dcgan needs square images"),
        (["--loss", "wgan", "--data", "folder:path=/no/such/folder"], "no folder at /no/such/folder"),
        (["--loss", "wgan", "--steps", "-1"], "'steps'"),
        (["--loss", "wgan", "--device", "tpu"], "'device'"),
        (["--steps", "3"], "--loss is required"),
        (["--loss", "wgan", "--bogus"], "No such option '--bogus'"),  # click's own errors, one line too
        (["--loss", "wgan", "--steps", "many"], "'many' is not a valid integer"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, flags, needle):
    code, run = train_cli(tmp_path, *flags)
    assert code == 2
    assert needle in one_error_line(capsys)
    assert not run.exists()


def test_empty_image_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _ = train_cli(tmp_path, "--loss", "wgan", "--data", f"folder:path={tmp_path / 'empty'}")
    assert code == 2 and "no images" in one_error_line(capsys)


@pytest.fixture
def finished_run(tmp_path):
    code, run = train_cli(tmp_path, "--loss", "wgan", *TOY_NETS, *FAST, "--checkpoint-every", "3")
    assert code == 0
    return run


def damage(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "header":
        path.write_bytes(b"\xff" * 16 + data[16:])
    elif how == "foreign":
        save_file({"weight": torch.zeros(3)}, str(path))
    else:
        tensors = load_file(path)
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            metadata = f.metadata()
        if how == "missing":
            tensors = {k: v for k, v in tensors.items() if not k.startswith("critic.")}
        else:  # wrong shapes
            tensors = {k: (torch.zeros(7, 7) if k.startswith("generator.") else v) for k, v in tensors.items()}
        save_file(tensors, str(path), metadata=metadata)


@pytest.mark.parametrize(
    "how,needle",
    [
        ("truncated", "not a readable safetensors file"),
        ("header", "not a readable safetensors file"),
        ("foreign", "without ganzoo metadata"),
        ("missing", "missing"),
        ("shapes", "has shape (7, 7)"),
    ],
)
def test_resume_refuses_damaged_checkpoints(finished_run, capsys, how, needle):
    checkpoint = finished_run / "checkpoints" / "step-0000003.safetensors"
    damage(checkpoint, how)
    before = {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()}
    assert main(["train", "--resume", str(finished_run), "--steps", "5", "--quiet"]) == 2
    assert needle in one_error_line(capsys)
    assert {p: p.read_bytes() for p in finished_run.rglob("*") if p.is_file()} == before


def test_resume_of_a_folder_without_checkpoint(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--steps", "5"]) == 2
    assert "holds no checkpoint" in one_error_line(capsys)


def test_a_finished_run_is_not_overwritten(finished_run, capsys):
    assert main(["train", "--loss", "wgan", "--out", str(finished_run), "--quiet"]) == 2
    assert "already holds a run" in one_error_line(capsys)


# -- failures while running ----------------------------------------------------------------------

EXPLODING = """
import os, signal
import torch
import ganzoo

class Exploding(ganzoo.Loss):
    '''Finite until step 5, then NaN.'''
    class Config(ganzoo.Config):
        after: int = 5
    calls = 0
    def critic_loss(self, real, fake):
        return fake.mean() - real.mean()
    def generator_loss(self, fake):
        type(self).calls += 1
        return -fake.mean() * (float("nan") if self.calls > self.config.after else 1.0)

class Interrupting(Exploding):
    '''Presses Ctrl-C during step 3.'''
    def generator_loss(self, fake):
        type(self).calls += 1
        if self.calls == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return -fake.mean()
"""


@pytest.fixture
def odd_losses(tmp_path):
    points = {"ganzoo.losses": {"exploding": "odd_losses:Exploding", "interrupting": "odd_losses:Interrupting"}}
    with temporary_distribution(tmp_path / "site", "odd-losses", points, modules={"odd_losses": EXPLODING}):
        yield


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys, odd_losses):
    flags = ["--loss", "exploding", *TOY_NETS, "--steps", "20", "--log-every", "5", "--checkpoint-every", "4"]
    code, run = train_cli(tmp_path, *flags, "--quiet")
    assert code == 1
    line = one_error_line(capsys)
    assert "diverged at step 8" in line and "step-0000004.safetensors" in line
    checkpoint = load_file(run / "checkpoints" / "step-0000004.safetensors")
    assert all(torch.isfinite(v.float()).all() for k, v in checkpoint.items() if k.startswith("generator."))


def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(tmp_path, capsys, odd_losses):
    code, run = train_cli(tmp_path, "--loss", "interrupting", *TOY_NETS, "--steps", "50", "--quiet")
    assert code == 130
    assert "interrupted at step 3" in capsys.readouterr().err
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step-0000003.safetensors"]
    assert main(["train", "--resume", str(run), "--steps", "5", "--quiet"]) == 0


def test_compile_builds_its_graphs_in_the_first_step_and_never_recompiles(tmp_path, monkeypatch):
    import torch._dynamo

    import ganzoo.step

    first_step = ganzoo.step.GANStep.generator_step

    def then_no_recompiles(self, *args, **kwargs):
        out = first_step(self, *args, **kwargs)
        torch._dynamo.config.error_on_recompile = True  # any recompile now raises
        return out

    # Set and restored by hand: monkeypatch would delete the option on undo (dynamo's config
    # module serves its options through __getattr__), breaking every later compile.
    previous = torch._dynamo.config.error_on_recompile
    monkeypatch.setattr(ganzoo.step.GANStep, "generator_step", then_no_recompiles)
    torch._dynamo.reset()
    try:
        code, run = train_cli(tmp_path, "--loss", "wgan", "--constraint", "clip", *TOY_NETS, "--steps", "30",
                              "--batch-size", "16", "--compile", "--quiet")  # fmt: skip
    finally:
        torch._dynamo.config.error_on_recompile = previous
        torch._dynamo.reset()
    assert code == 0
    assert torch.isfinite(ganzoo.load_generator(run / "generator.safetensors").sample(4)).all()


@pytest.mark.parametrize("loss_name", ["minimax", "wgan", "instance-noise"])
def test_one_fused_critic_forward_equals_two(loss_name):
    import ganzoo.step

    critic = ganzoo.create_critic("mlp", sample_shape=(2,), width=32)
    assert critic.independent_samples and not ganzoo.create_critic("dcgan", sample_shape=(1, 16, 16)).independent_samples
    loss = ganzoo.create_loss(loss_name)
    real, fake = torch.randn(16, 2), torch.randn(24, 2)
    results = []
    for fused in (False, True):
        torch.manual_seed(1)  # instance noise draws the same noise either way: real first, then fake
        critic.zero_grad()
        value, total = ganzoo.step.critic_objective(loss, [], critic, real, fake, 0.3, fused=fused)
        total.backward()
        results.append((value.detach(), [p.grad.clone() for p in critic.parameters()]))
    (two, two_grads), (one, one_grads) = results
    torch.testing.assert_close(one, two)
    for a, b in zip(one_grads, two_grads):
        torch.testing.assert_close(a, b)


def test_flat_parameters_are_views_and_keep_every_gradient():
    from ganzoo.flat import FlatParameters

    critic = ganzoo.create_critic("mlp", sample_shape=(2,), width=8)
    before = [p.detach().clone() for p in critic.parameters()]
    flat = FlatParameters(critic)
    (param,) = flat.optimized
    assert all(torch.equal(a, b) for a, b in zip(before, critic.parameters()))  # same values, now views
    with torch.no_grad():
        param.add_(1.0)
    assert all(torch.equal(a + 1, b) for a, b in zip(before, critic.parameters()))
    flat.zero_grad()
    critic(torch.randn(5, 2)).sum().backward()
    expected = [p.grad.clone() for p in critic.parameters()]
    next(critic.parameters()).grad = torch.ones_like(expected[0])  # something replaced one gradient
    flat.gather_grads()
    assert torch.equal(param.grad, torch.cat([torch.ones_like(expected[0]).flatten(), *(g.flatten() for g in expected[1:])]))


def test_small_networks_train_on_one_thread_and_the_first_line_says_so(tmp_path, monkeypatch, capsys):
    """More threads gain little on small networks and lose many times over beside a busy process."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    common = ["--loss", "wgan", "--constraint", "clip", *TOY_NETS, "--batch-size", "16", "--steps", "1"]
    assert main(["train", *common, "--out", str(tmp_path / "auto")]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == (f"ganzoo: wgan + clip:c=0.01 on ring8, mlp:latent_dim=2,width=16,depth=1,batchnorm=False / "
                     f"mlp:width=16,depth=1, 1 steps, batch 16, cpu, 1 thread -> {tmp_path / 'auto'}")
    assert torch.get_num_threads() == 2  # the caller's setting is back
    assert main(["train", *common, "--threads", "2", "--out", str(tmp_path / "two")]) == 0
    assert ", cpu, 2 threads ->" in capsys.readouterr().out.splitlines()[0]
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's word counts
    assert main(["train", *common, "--out", str(tmp_path / "env")]) == 0
    assert ", cpu, 2 threads ->" in capsys.readouterr().out.splitlines()[0]
