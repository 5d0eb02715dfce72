"""Sampling tools: spherical interpolation, truncation, and ONNX export checked by onnxruntime."""

import json
import math

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.cli import main


@pytest.fixture
def ort():
    return pytest.importorskip("onnxruntime", reason="ONNX export is checked with onnxruntime (ganzoo[onnx])")


def test_slerp_keeps_the_norm_of_equal_norm_ends_and_meets_them():
    a, b = torch.tensor([[3.0, 0.0]]), torch.tensor([[0.0, 3.0]])
    path = ganzoo.slerp(a, b, torch.linspace(0, 1, 5))[0]
    torch.testing.assert_close(path[0], a[0]) and torch.testing.assert_close(path[-1], b[0])
    torch.testing.assert_close(path.norm(dim=1), torch.full((5,), 3.0))
    torch.testing.assert_close(path[2], torch.tensor([3 / math.sqrt(2)] * 2))
    same = ganzoo.slerp(a, 2 * a, torch.tensor([0.5]))[0, 0]  # parallel ends: the straight line
    torch.testing.assert_close(same, 1.5 * a[0])


def test_interpolate_draws_rows_of_paths_and_keeps_a_class_per_row():
    generator = ganzoo.create_generator("dcgan", sample_shape=(1, 16, 16), width=4, classes=10)
    samples, labels = ganzoo.interpolate(generator, steps=5, rows=3, seed=1, labels=[2, 7, 7])
    assert samples.shape == (15, 1, 16, 16) and labels.tolist() == [2] * 5 + [7] * 10
    again, _ = ganzoo.interpolate(generator, steps=5, rows=3, seed=1, labels=[2, 7, 7])
    assert torch.equal(samples, again) and generator.training  # the caller's mode is kept
    with pytest.raises(ganzoo.UsageError, match="at least 2 steps"):
        ganzoo.interpolate(generator, steps=1)


@pytest.mark.parametrize("name", ["nonsaturating-digits", "projection-grid25", "wgan-ring8"])
def test_the_interpolate_command_draws_a_picture(tmp_path, name):
    assert main(["interpolate", name, "--steps", "4", "--rows", "2", "--out", str(tmp_path / "i.png")]) == 0
    assert (tmp_path / "i.png").stat().st_size > 1000


def test_interpolate_wants_one_class_per_row(capsys):
    assert main(["interpolate", "projection-digits", "--rows", "2", "--classes", "1,2,3"]) == 2
    assert "--classes gives 3 classes for 2 rows" in capsys.readouterr().err


NETWORKS = {
    "mlp": {"name": "mlp", "sample_shape": (2,)},
    "mlp-conditional": {"name": "mlp", "sample_shape": (2,), "classes": 8},
    "dcgan": {"name": "dcgan", "sample_shape": (1, 28, 28), "width": 8},
    "dcgan-conditional": {"name": "dcgan", "sample_shape": (1, 28, 28), "width": 8, "classes": 10},
    "resnet": {"name": "resnet", "sample_shape": (3, 32, 32), "width": 16},
    "resnet-conditional": {"name": "resnet", "sample_shape": (3, 32, 32), "width": 16, "classes": 10},
}


@pytest.mark.parametrize("network", NETWORKS)
def test_onnxruntime_gives_what_pytorch_gives(tmp_path, ort, network):
    options = dict(NETWORKS[network])
    torch.manual_seed(0)
    generator = ganzoo.create_generator(options.pop("name"), **options).eval()
    path = ganzoo.export_onnx(generator, tmp_path / "g.onnx")
    session = ort.InferenceSession(str(path))
    z = generator.latent(7, torch.Generator().manual_seed(3))  # another batch size than the export's
    feed = {"z": z.numpy()}
    labels = torch.arange(7) % generator.classes if generator.classes else None
    if labels is not None:
        feed["labels"] = labels.numpy()
    (out,) = session.run(None, feed)
    with torch.no_grad():
        expected = generator(z) if labels is None else generator(z, labels)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-4, atol=1e-5)
    props = {p.key: p.value for p in __import__("onnx").load(str(path)).metadata_props}
    assert json.loads(props["ganzoo.sample_shape"]) == list(generator.sample_shape)
    assert int(props["ganzoo.classes"]) == generator.classes


def test_zoo_export_writes_the_onnx_file_beside_the_card(tmp_path, ort):
    run = tmp_path / "run"
    assert main(["train", "--loss", "nonsaturating", "--steps", "2", "--quiet", "--out", str(run)]) == 0
    assert main(["zoo", "export", str(run), str(tmp_path / "card"), "--onnx"]) == 0
    session = ort.InferenceSession(str(tmp_path / "card" / "generator.onnx"))
    assert session.run(None, {"z": np.zeros((3, 2), np.float32)})[0].shape == (3, 2)


def test_an_onnx_path_must_end_in_onnx(tmp_path):
    with pytest.raises(ganzoo.UsageError, match="ends in .onnx"):
        ganzoo.export_onnx(ganzoo.create_generator("mlp", sample_shape=(2,)), tmp_path / "g.bin")


def test_truncation_draws_every_coordinate_within_the_bound_and_narrows_the_samples():
    generator = ganzoo.load_pretrained("nonsaturating-ring8")
    z = generator.latent(5000, torch.Generator().manual_seed(0), truncation=0.5)
    assert z.abs().max() <= 0.5 and z.std() < 0.35  # a normal cut at +-0.5 sd: std 0.28
    untruncated = generator.latent(5, torch.Generator().manual_seed(0))
    assert torch.equal(untruncated, generator.latent(5, torch.Generator().manual_seed(0), truncation=None))
    narrow = generator.sample(2000, torch.Generator().manual_seed(0), truncation=0.3)
    wide = generator.sample(2000, torch.Generator().manual_seed(0))
    assert narrow.std(0).sum() < wide.std(0).sum()
    with pytest.raises(ganzoo.UsageError, match="truncation must be above 0"):
        generator.latent(3, truncation=-1.0)


def test_the_sample_command_truncates(tmp_path, capsys):
    assert main(["sample", "nonsaturating-r1-digits", "--truncation", "0.7", "--out", str(tmp_path / "t.png")]) == 0
    assert (tmp_path / "t.png").is_file()
    assert main(["sample", "nonsaturating-r1-digits", "--truncation", "0"]) == 2
