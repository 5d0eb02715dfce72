"""Round 5's weak cases (issue 42): each answered in one line, refused before any work, or made true."""

import errno
from pathlib import Path

import pytest

import ganzoo
from ganzoo.cli import main

TINY = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]
PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("command", ["sample", "evaluate", "interpolate"])
@pytest.mark.parametrize("seed", [str(2**64), "-1"])
def test_a_seed_out_of_range_is_one_line_naming_the_range(command, seed, capsys):
    assert main([command, "wgan-ring8", "--seed", seed]) == 2
    assert f"{seed} is not in the range 0<=x<={2**63 - 1}" in one_line(capsys)


@pytest.mark.parametrize("device, said", [("bogus", "'bogus' is not a device; use cpu, cuda or cuda:N"),
                                          ("cuda:99", "'cuda:99' was asked for, but torch sees")])  # fmt: skip
@pytest.mark.parametrize("command", ["sample", "evaluate", "interpolate"])
def test_a_device_that_is_not_there_is_one_line(command, device, said, capsys):
    assert main([command, "wgan-ring8", "--device", device]) == 2
    assert said in one_line(capsys)


@PROC
@pytest.mark.parametrize("argv, flag", [
    (["sample", "wgan-ring8", "--out", "/proc/ganzoo/x.png"], "--out"),
    (["interpolate", "wgan-ring8", "--out", "/proc/x.png"], "--out"),
    (["train", "--loss", "wgan", "--steps", "2", "--out", "/proc/ganzoo-run"], "--out"),
    (["plugin", "new", "foo", "--kind", "loss", "--dir", "/proc/foo"], "--dir"),
    (["zoo", "export", "nowhere", "/proc/card"], "FOLDER"),
])  # fmt: skip
def test_a_place_that_cannot_hold_files_is_one_line_before_any_work(argv, flag, capsys):
    assert main(argv) == 2
    assert f"{flag} {argv[-1]}: /proc cannot hold files" in one_line(capsys)


def test_zoo_export_onto_a_full_disk_leaves_nothing_and_the_retry_works(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--loss", "nonsaturating", *TINY, "--steps", "5", "--quiet", "--out", "run"]) == 0
    real = ganzoo.export.save_samples

    def full(*args, **kwargs):  # the disk fills while the picture is written, after the weights
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ganzoo.export, "save_samples", full)
    capsys.readouterr()
    assert main(["zoo", "export", "run", "cards/tiny"]) == 1
    assert "cannot write the card cards/tiny: No space left on device; nothing of it was left behind" in one_line(capsys)
    assert list((tmp_path / "cards").iterdir()) == []  # no card, no hidden staging folder
    monkeypatch.setattr(ganzoo.export, "save_samples", real)
    assert main(["zoo", "export", "run", "cards/tiny"]) == 0
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == ["tiny"]
    assert (tmp_path / "cards" / "tiny" / "README.md").is_file()


@pytest.mark.parametrize("local", ["folder", "file"])
def test_a_local_folder_or_file_named_like_a_recipe_shadows_nothing(local, tmp_path, monkeypatch, capsys):
    from ganzoo import recipes

    name = recipes.recipe_names()[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / name).mkdir() if local == "folder" else (tmp_path / name).write_text("{}")
    assert main(["recipes"]) == 0 and name in capsys.readouterr().out
    assert main(["recipes", name]) == 0 and capsys.readouterr().out.startswith(f"{name}: ")
    assert recipes.config_path(name) == recipes.recipe_path(name)
    assert main(["train", "--config", name, "--steps", "-1"]) == 2  # the recipe was read: the override is what fails
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f"ganzoo: notice: --config {name} reads the shipped recipe {name}, not the local {local} of that "
                      "name; a config file of your own ends in .json or .toml: give its path with the suffix")  # fmt: skip
    assert len(err) == 2 and "'steps'" in err[1]


@pytest.mark.parametrize("argv", [["train", "--config", ""], ["train", "--config", " "], ["recipes", ""]])
def test_an_empty_recipe_name_is_one_line_listing_the_recipes(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "r3gan-cifar10" in one_line(capsys)


@pytest.mark.parametrize("data", ["cifar10", "mnist", "fashion-mnist", "celeba", "lsun"])
@pytest.mark.parametrize("below", ["", "/deeper", "/deeper,download=true"])
def test_an_image_root_that_is_a_file_is_one_line(data, below, tmp_path, capsys):
    (tmp_path / "afile").write_text("not a folder")
    if "download" in below and data in ("celeba", "lsun"):  # they fetch nothing
        below = "/deeper"
    assert main(["train", "--loss", "wgan", "--data", f"{data}:root={tmp_path / 'afile'}{below}", "--steps", "1"]) == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder: root names the folder that holds" in one_line(capsys)


@PROC
def test_memory_checks_heed_the_address_space_limit():
    """`ulimit -v` caps what a process can map however much the machine has free."""
    import resource

    from ganzoo.interfaces import _address_space_left, available_memory

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    mapped = int(Path("/proc/self/statm").read_text().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + 2**30, hard))
    try:
        left = _address_space_left()
        assert 2**29 < left <= 2**30 and available_memory() <= left
        with pytest.raises(ganzoo.UsageError, match=r"the test's images need 2.0 GiB of memory, more than the (0.9|1.0) GiB free"):
            ganzoo.check_memory(2**31, "the test's images")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    assert soft != resource.RLIM_INFINITY or _address_space_left() is None


def test_an_augment_cannot_change_on_resume(tmp_path, capsys):
    """The run's record names one augmentation for all its steps; the same one, spelt out, goes on."""
    run = tmp_path / "run"
    base = ["--loss", "nonsaturating", *TINY, "--data", "digits:size=8", "--generator", "dcgan:width=8",
            "--critic", "dcgan:width=8", "--quiet"]  # fmt: skip
    assert main(["train", *base, "--augment", "diffaugment:policy=translation", "--steps", "2", "--checkpoint-every", "2",
                 "--out", str(run)]) == 0  # fmt: skip
    for other, said in [("diffaugment:policy=color", "diffaugment:policy=color"), ("diffaugment:p=0.5", "diffaugment:p=0.5")]:
        capsys.readouterr()
        assert main(["train", "--resume", str(run), "--augment", other, "--steps", "4"]) == 2
        assert (f"--augment {said} cannot change on --resume (the run trained with diffaugment:policy=translation)"
                in one_line(capsys).replace(",translation=0.125,cutout=0.5,p=1.0", ""))  # fmt: skip
    assert main(["train", "--resume", str(run), "--augment", "diffaugment:policy=translation,p=1.0", "--steps", "3"]) == 0
    capsys.readouterr()
    plain = tmp_path / "plain"
    assert main(["train", *base, "--steps", "2", "--checkpoint-every", "2", "--out", str(plain)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(plain), "--augment", "diffaugment", "--steps", "4"]) == 2
    assert "--augment diffaugment cannot change on --resume (the run trained with none)" in one_line(capsys)


def test_eval_metrics_and_eval_n_without_eval_every_are_one_line(tmp_path, capsys):
    for extra, said in [(["--eval-n", "100"], "--eval-n applies"),
                        (["--eval-metrics", "data", "--eval-n", "100"], "--eval-metrics and --eval-n apply")]:  # fmt: skip
        assert main(["train", "--loss", "wgan", *extra, "--steps", "2", "--out", str(tmp_path / "new")]) == 2
        assert f"{said} to evaluations during training, which --eval-every N turns on" in one_line(capsys)
        assert not (tmp_path / "new").exists()
    run = tmp_path / "run"
    assert main(["train", "--loss", "nonsaturating", *TINY, "--steps", "2", "--quiet", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--eval-metrics", "data", "--steps", "4"]) == 2
    assert "--eval-metrics applies to evaluations during training" in one_line(capsys)
    assert main(["train", "--resume", str(run), "--eval-metrics", "data", "--eval-every", "2", "--steps", "4", "--quiet"]) == 0


def test_resuming_a_finished_run_fetches_no_inception_weights(tmp_path, monkeypatch):
    """A run with image metrics, resumed at its last step: nothing is left to evaluate, so the
    metrics' network is neither fetched nor built (it was, before the run found it had no step left)."""
    import ganzoo.image_metrics
    from ganzoo.testing import channel_statistics_extractor

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ganzoo.image_metrics, "inception", lambda device, quiet=False: channel_statistics_extractor())
    config = {"loss": "nonsaturating", "data": "digits", "generator": "dcgan:width=4", "critic": "dcgan:width=4",
              "steps": 2, "eval_every": 2, "eval_metrics": ["fid"], "eval_n": 16, "out": str(tmp_path / "run")}  # fmt: skip
    run = ganzoo.train(config, quiet=True).run_dir

    def fetched(device, quiet=False):
        raise AssertionError("the image metrics' network was built for a run with no step left")

    monkeypatch.setattr(ganzoo.image_metrics, "inception", fetched)
    assert ganzoo.train({"steps": 2}, resume=run, quiet=True).step == 2


def test_interpolate_refuses_a_generator_that_makes_nan(tmp_path, capsys):
    import torch

    generator = ganzoo.create_generator("mlp", sample_shape=(2,))
    with torch.no_grad():
        for parameter in generator.parameters():  # finite weights (a file with NaN is refused on load) that overflow
            parameter.fill_(3e38)
    weights = ganzoo.save_generator(generator, tmp_path / "g.safetensors", "mlp")
    assert main(["interpolate", str(weights), "--out", str(tmp_path / "i.png")]) == 2
    assert "made NaN or infinite samples (a diverged generator?); nothing was drawn" in one_line(capsys)
    assert not (tmp_path / "i.png").exists()


def test_the_classes_list_and_the_embedding_are_bounded(capsys):
    many = ",".join(["0"] * 10**6)  # 2 MB of text
    assert main(["sample", "acgan-digits", "--classes", many]) == 2
    assert "gives 1,000,000 classes; at most 4,096 (one per sample)" in one_line(capsys)
    assert main(["sample", "acgan-digits", "--classes", "x" * 10**6]) == 2
    assert len(one_line(capsys)) < 400
    with pytest.raises(ganzoo.ConfigError, match="embedding.*less than or equal to 4096"):
        ganzoo.create_generator("mlp", sample_shape=(2,), classes=3, embedding=10**9)


@pytest.mark.parametrize("split, held", [("all", 1797), ("test", 360)])
def test_image_metrics_never_repeat_the_real_digits(split, held, tmp_path, monkeypatch):
    from ganzoo import image_metrics
    from ganzoo.testing import channel_statistics_extractor

    stand_in = channel_statistics_extractor()
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(image_metrics, "inception", lambda device, quiet=False: stand_in)
    generator = ganzoo.create_generator("dcgan", sample_shape=(1, 8, 8), width=4).eval()
    with pytest.raises(ganzoo.UsageError, match=f"--n {held + 1:,} is more real images than 'digits:split={split}' "
                       f"holds \\({held:,}\\): they would repeat"):  # fmt: skip
        ganzoo.evaluate(generator, f"digits:split={split}", metrics=["kid"], n=held + 1)


def test_a_well_formed_but_poisoned_features_cache_is_refused(tmp_path, monkeypatch):
    """Features changed in place (finite, the right shape and metadata) or copied from other data
    under the cache's name would shift every FID computed against them."""
    from safetensors.torch import load_file, save_file

    from ganzoo import image_metrics
    from ganzoo.checkpoint import read_metadata
    from ganzoo.testing import channel_statistics_extractor

    stand_in = channel_statistics_extractor()
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(image_metrics, "inception", lambda device, quiet=False: stand_in)
    generator = ganzoo.create_generator("dcgan", sample_shape=(1, 8, 8), width=4).eval()
    first = ganzoo.evaluate(generator, "digits:split=test", metrics=["kid"], n=50)
    (cached,) = (tmp_path / "cache" / "real-features").iterdir()
    tensors, metadata = load_file(cached), read_metadata(cached, image_metrics.FEATURES)
    assert ganzoo.evaluate(generator, "digits:split=test", metrics=["kid"], n=50) == first  # reused as it was
    save_file({**tensors, "features": tensors["features"] + 0.5}, cached, metadata)
    with pytest.raises(ganzoo.CheckpointError, match="its features are not the ones computed for it"):
        ganzoo.evaluate(generator, "digits:split=test", metrics=["kid"], n=50)
    save_file(tensors, cached, {**metadata, "key": "0" * 64})  # another dataset's file under this name
    with pytest.raises(ganzoo.CheckpointError, match="holds the features of other data"):
        ganzoo.evaluate(generator, "digits:split=test", metrics=["kid"], n=50)
