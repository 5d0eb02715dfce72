"""FID, KID, IS and precision/recall through torch-fidelity, checked against independent numpy/scipy
computations on known features; the glue (feeding a generator, the real-feature cache, the
weights download) with a small stand-in extractor, since the Inception weights are not fetched here."""

import hashlib
import importlib.metadata
import json

import numpy as np
import pytest
import scipy.linalg
import torch

import ganzoo
from ganzoo import image_metrics
from ganzoo.cli import main
from ganzoo.testing import channel_statistics_extractor
from test_image_datasets import write_cifar


def gaussian(n, mean, scale, seed):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(mean + rng.standard_normal((n, len(mean))) @ scale)


def test_fid_is_the_frechet_distance_of_the_two_gaussian_fits():
    fake, real = gaussian(20000, np.zeros(4), np.eye(4), 0), gaussian(20000, np.ones(4), np.diag([1, 2, 0.5, 1]), 1)
    got = image_metrics.metrics_from_features(fake, real, torch.zeros(20000, 3), ["fid"])["fid"]
    m1, m2 = fake.numpy().mean(0), real.numpy().mean(0)
    s1, s2 = np.cov(fake.numpy(), rowvar=False), np.cov(real.numpy(), rowvar=False)
    expected = np.sum((m1 - m2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert got == pytest.approx(expected, rel=1e-6)
    # and close to the closed form of the true Gaussians: |1|^2 * 4 + tr(I + S - 2 S^(1/2))
    truth = 4 + np.trace(np.eye(4) + np.diag([1, 4, 0.25, 1]) - 2 * np.diag([1, 2, 0.5, 1]))
    assert got == pytest.approx(truth, abs=0.15)


def test_kid_is_the_unbiased_mmd_of_the_cubic_kernel():
    fake, real = gaussian(200, np.zeros(5), np.eye(5), 2), gaussian(200, np.full(5, 0.5), np.eye(5), 3)
    got = image_metrics.metrics_from_features(fake, real, torch.zeros(200, 3), ["kid"], kid_subsets=1, kid_subset_size=200)
    x, y = fake.numpy(), real.numpy()
    kernel = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3  # noqa: E731
    kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
    m = len(x)
    expected = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    assert got["kid"] == pytest.approx(expected, rel=1e-6) and got["kid_std"] == 0


def test_inception_score_of_known_class_probabilities():
    # half the samples surely class 0, half surely class 1: p(y) uniform over 2, each KL is log 2, IS = 2
    logits = torch.full((100, 10), -50.0, dtype=torch.float64)
    logits[:50, 0] = logits[50:, 1] = 50.0
    got = image_metrics.metrics_from_features(torch.zeros(100, 2), torch.zeros(100, 2), logits, ["is"], isc_splits=1)
    assert got["inception_score"] == pytest.approx(2.0, rel=1e-6)
    uniform = image_metrics.metrics_from_features(torch.zeros(100, 2), torch.zeros(100, 2), torch.zeros(100, 10, dtype=torch.float64), ["is"], isc_splits=1)
    assert uniform["inception_score"] == pytest.approx(1.0)  # nothing recognised: the lowest score


def test_precision_and_recall_on_point_sets_whose_answer_is_known():
    real = gaussian(300, np.zeros(2), np.eye(2), 4)
    same = image_metrics.metrics_from_features(real.clone(), real, torch.zeros(300, 3), ["pr"])
    assert same["precision"] == same["recall"] == 1.0
    far = image_metrics.metrics_from_features(real + 100, real, torch.zeros(300, 3), ["pr"])
    assert far["precision"] == far["recall"] == 0.0
    two = torch.cat([real[:150], real[150:] + 100])  # real data in two far clusters; fakes cover one
    got = image_metrics.metrics_from_features(torch.cat([real[:150], real[:150]]), two, torch.zeros(300, 3), ["pr"])
    assert got["precision"] == 1.0 and got["recall"] == 0.5


# -- the glue, with a stand-in extractor ------------------------------------------------------------


stand_in = channel_statistics_extractor()


@pytest.fixture
def cifar(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(image_metrics, "inception", lambda device, quiet=False: stand_in)
    write_cifar(tmp_path)
    return f"cifar10:root={tmp_path},size=16,verify=false"


def test_evaluate_feeds_the_generator_and_caches_the_real_features(cifar, tmp_path, capsys):
    generator = ganzoo.create_generator("dcgan", sample_shape=(3, 16, 16), width=8).eval()
    first = ganzoo.evaluate(generator, cifar, metrics=["fid", "kid", "is", "pr"], n=20)
    assert set(first) == {"fid", "kid", "kid_std", "inception_score", "inception_score_std", "precision", "recall", "protocol"}
    assert "reusing" not in capsys.readouterr().err
    (cached,) = (tmp_path / "cache" / "real-features").iterdir()
    assert ganzoo.evaluate(generator, cifar, metrics=["fid", "kid", "is", "pr"], n=20) == first  # same numbers
    assert f"reusing the real data's features from {cached}" in capsys.readouterr().err
    ganzoo.evaluate(generator, cifar, metrics=["fid"], n=10)  # another n: other features
    assert len(list((tmp_path / "cache" / "real-features").iterdir())) == 2
    cached.write_bytes(cached.read_bytes()[:100])  # a damaged cache file is said, not trusted
    with pytest.raises(ganzoo.CheckpointError, match="damaged tensor data|not a readable"):
        ganzoo.evaluate(generator, cifar, metrics=["fid"], n=20)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--metrics", "fid", "--n", "5"], "FID needs more samples than the 6 feature dimensions"),
        (["--metrics", "fid,sharpness"], "unknown metric 'sharpness'; image metrics are fid, kid, is, pr"),
        (["--metrics", "fid", "--data", "cifar10:root=ROOT,size=32,verify=false"], "but dataset 'cifar10:root="),
    ],
)
def test_bad_image_metric_requests_are_one_line(cifar, tmp_path, capsys, args, needle):
    generator = ganzoo.create_generator("dcgan", sample_shape=(3, 16, 16), width=8)
    path = ganzoo.save_generator(generator, tmp_path / "g.safetensors", "dcgan")
    args = [a.replace("ROOT", str(tmp_path)) for a in args]
    if "--data" not in args:
        args += ["--data", cifar]
    assert main(["evaluate", str(path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "cache" / "real-features").exists()  # refused before any image was drawn


def test_the_cli_prints_the_image_metrics(cifar, tmp_path, capsys):
    generator = ganzoo.create_generator("dcgan", sample_shape=(3, 16, 16), width=8)
    path = ganzoo.save_generator(generator, tmp_path / "g.safetensors", "dcgan")
    assert main(["evaluate", str(path), "--data", cifar, "--metrics", "fid,kid,is,pr", "--n", "20"]) == 0
    out = capsys.readouterr().out
    assert "FID (torch-fidelity)" in out and "Inception Score" in out and "precision" in out


# -- the Inception weights, from a loopback server ----------------------------------------------------


def test_the_inception_weights_are_downloaded_once_and_checked_by_sha256(tmp_path, server, monkeypatch):
    weights = b"not really Inception, but any bytes with a known sha256"
    server.routes = {"/inception.pth": (weights, len(weights))}
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GANZOO_OFFLINE", raising=False)
    monkeypatch.setattr(image_metrics, "INCEPTION_URL", f"http://127.0.0.1:{server.server_port}/inception.pth")
    monkeypatch.setattr(image_metrics, "INCEPTION_SHA256", hashlib.sha256(weights).hexdigest())
    path = image_metrics.inception_weights(quiet=True)
    assert path.read_bytes() == weights
    server.routes.clear()
    assert image_metrics.inception_weights(quiet=True) == path  # cached: no request
    path.write_bytes(b"tampered")
    with pytest.raises(ganzoo.CheckpointError, match="is not the Inception file"):
        image_metrics.inception_weights(quiet=True)
    path.unlink()
    monkeypatch.setattr(image_metrics, "INCEPTION_SHA256", "0" * 64)
    server.routes["/inception.pth"] = (weights, len(weights))
    with pytest.raises(ganzoo.DownloadError, match="expects 0{64}; nothing was kept"):
        image_metrics.inception_weights(quiet=True)
    assert not path.exists()
    monkeypatch.setenv("GANZOO_OFFLINE", "1")
    with pytest.raises(ganzoo.DownloadError, match="GANZOO_OFFLINE=1 forbids downloads"):
        image_metrics.inception_weights(quiet=True)


def test_image_metrics_during_training_reach_the_log_and_the_curves(cifar, tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ["train", "--loss", "nonsaturating", "--data", cifar, "--generator", "dcgan:width=8", "--critic",
            "dcgan:width=8", "--batch-size", "8", "--steps", "4", "--log-every", "1", "--eval-every", "2",
            "--eval-metrics", "fid,kid", "--eval-n", "16", "--quiet", "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [("fid" in r, "kid" in r) for r in records] == [(False, False), (True, True), (False, False), (True, True)]
    assert all(r["fid"] >= 0 for r in records if "fid" in r)
    assert json.loads((run / "config.json").read_text())["eval_metrics"] == ["fid", "kid"]
    assert json.loads((run / "image-metrics-protocol.json").read_text())["generated"] == 16


def test_every_score_states_its_protocol(cifar, tmp_path, capsys):
    generator = ganzoo.create_generator("dcgan", sample_shape=(3, 16, 16), width=8).eval()
    train = ganzoo.evaluate(generator, cifar, metrics=["kid"], n=12)
    assert {k: train["protocol"][k] for k in ("generated", "real", "reference_split", "extractor")} == {
        "generated": 12, "real": 12, "reference_split": "train", "extractor": "channel statistics (a test stand-in)"}
    assert train["protocol"]["torch_fidelity"] == importlib.metadata.version("torch-fidelity")
    test = ganzoo.evaluate(generator, cifar, metrics=["kid"], n=3, reference="test")  # CIFAR-10's test split here: 3 images
    assert test["protocol"]["reference_split"] == "test" and test["protocol"]["reference"].endswith("split=test")
    weights = ganzoo.save_generator(generator, tmp_path / "g.safetensors", "dcgan")
    capsys.readouterr()
    assert main(["evaluate", str(weights), "--data", cifar, "--metrics", "kid", "--n", "3", "--reference", "test"]) == 0
    out = capsys.readouterr().out
    assert "protocol: 3 generated against 3 real images of cifar10:" in out and "(test split)" in out and "torch-fidelity" in out
    with pytest.raises(ganzoo.UsageError, match="dataset 'ring8' has no splits"):
        ganzoo.evaluate(ganzoo.create_generator("mlp", sample_shape=(2,)), "ring8", metrics=["kid"], reference="test")


def test_image_metrics_during_training_need_image_data(capsys, tmp_path):
    args = ["train", "--loss", "wgan", "--eval-every", "10", "--eval-metrics", "data,fid", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    assert "--eval-metrics fid are image metrics; 'ring8' is not image data" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_eval_every_measures_the_datasets_own_evaluation_by_default(tmp_path):
    """On 2-D data the modes and W1 `ganzoo evaluate` prints, in the log: what studies prune on."""
    run = tmp_path / "run"
    args = ["train", "--loss", "nonsaturating", "--steps", "4", "--log-every", "2", "--eval-every", "2", "--quiet",
            "--out", str(run)]  # fmt: skip
    assert main(args) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all({"modes", "high_quality", "w1"} <= r.keys() for r in records)
    assert json.loads((run / "config.json").read_text())["eval_metrics"] == ["data"]
    final = ganzoo.evaluate(ganzoo.load_generator(run / "generator.safetensors"), "ring8")
    assert records[-1]["high_quality"] == final["high_quality"] and records[-1]["w1"] == pytest.approx(final["w1"])


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "celeba", "lsun"])
def test_every_image_dataset_is_scored(tmp_path, monkeypatch, name):
    from test_image_datasets import write_celeba, write_lsun, write_mnist

    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(image_metrics, "inception", lambda device, quiet=False: stand_in)
    writers = {"mnist": write_mnist, "fashion-mnist": lambda root: write_mnist(root, "FashionMNIST"),
               "cifar10": write_cifar, "celeba": lambda root: write_celeba(root, 12), "lsun": write_lsun}  # fmt: skip
    writers[name](tmp_path)
    extra = {"celeba": ",split=all", "lsun": ",categories=bedroom+church_outdoor", "cifar10": ",verify=false"}.get(name, ",verify=false")
    spec = f"{name}:root={tmp_path},size=16{extra}"
    torch.manual_seed(0)  # the generator's weights, whatever ran before
    generator = ganzoo.create_generator("dcgan", sample_shape=(3 if name in ("cifar10", "celeba", "lsun") else 1, 16, 16),
                                        width=8).eval()  # fmt: skip
    scores = ganzoo.evaluate(generator, spec, metrics=["fid", "kid", "is", "pr"], n=8)
    # An Inception Score is at least 1 in exact arithmetic; in floating point it may land a rounding below
    assert scores["fid"] >= 0 and 0 <= scores["precision"] <= 1 and scores["inception_score"] >= 1 - 1e-9


def test_a_corrupt_archive_is_one_line_and_leaves_nothing(tmp_path, server, monkeypatch):
    import ganzoo_plugins.cifar10 as cifar10

    junk = b"not a tar archive at all"
    server.routes = {"/cifar.tar.gz": (junk, len(junk))}
    monkeypatch.delenv("GANZOO_OFFLINE", raising=False)
    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{server.server_port}/cifar.tar.gz")
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(junk).hexdigest())  # the published md5 of a bad upload
    with pytest.raises(ganzoo.UsageError, match="cifar-10-binary.tar.gz cannot be unpacked"):
        ganzoo.create_dataset("cifar10", root=str(tmp_path), download=True).tensors()
    assert not any(tmp_path.rglob("*.bin")) and not any(tmp_path.rglob("*.tar.gz"))


def test_too_few_images_for_fid_during_training_is_said_before_the_run(tmp_path, capsys):
    write_cifar(tmp_path)
    args = ["train", "--loss", "wgan", "--data", f"cifar10:root={tmp_path},size=16,verify=false", "--generator", "dcgan:width=8",
            "--critic", "dcgan:width=8", "--eval-every", "10", "--eval-n", "1000", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 2
    assert "FID needs more samples than the 2048 feature dimensions" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
