"""Every dataset's download, against a file server of the test's own on 127.0.0.1 (conftest's `server`):
each asks for its own files at its own address (fashion-mnist asked for MNIST's digits: its address
and checksums sat after a `return`), from a `mirror=` when given, keeps the right files and refuses
the wrong ones, leaving nothing behind. The official files are not here, so "right" files are
stand-ins whose checksums the test gives the dataset in place of the published ones."""

import gzip
import hashlib
import io
import tarfile

import numpy as np
import pytest

import ganzoo
from ganzoo_plugins.cifar10 import ARCHIVE, CIFAR10, FOLDER
from ganzoo_plugins.mnist import MNIST, FashionMNIST
from test_image_datasets import cifar_records, idx, mnist_arrays

pytest.importorskip("torchvision")
PLUGINS = {"mnist": MNIST, "fashion-mnist": FashionMNIST}


def packed(seed: int) -> dict[str, bytes]:
    """MNIST-format train files, gzip-packed, of a few random images."""
    images, labels = mnist_arrays(seed=seed)
    return {"train-images-idx3-ubyte.gz": gzip.compress(idx(images)), "train-labels-idx1-ubyte.gz": gzip.compress(idx(labels))}


def serve(server, prefix: str, files: dict[str, bytes]) -> str:
    for name, body in files.items():
        server.routes[f"{prefix}{name}"] = (body, len(body))
    return f"http://127.0.0.1:{server.server_port}{prefix}"


@pytest.mark.parametrize("name, official", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_each_mnist_kind_checks_its_own_published_checksums(tmp_path, server, name, official):
    """Files that are not the dataset's (here random ones) are refused by the dataset's own md5."""
    import torchvision.datasets as official_sets

    published = dict(getattr(official_sets, official).resources)["train-images-idx3-ubyte.gz"]
    mirror = serve(server, "/wrong/", packed(0))
    with pytest.raises(ganzoo.DownloadError, match=f"but {official} train-images-idx3-ubyte.gz expects {published}"):
        ganzoo.create_dataset(name, root=str(tmp_path), download=True, mirror=mirror).tensors()
    assert not list(tmp_path.rglob("*.gz"))  # nothing kept


def test_fashion_mnist_asks_for_its_own_files_not_mnists(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_OFFLINE", "1")  # the address is said, nothing is fetched
    with pytest.raises(ganzoo.DownloadError, match="zalandoresearch/fashion-mnist/raw/master/data/fashion/train-images"):
        ganzoo.create_dataset("fashion-mnist", root=str(tmp_path), download=True).tensors()
    from torchvision.datasets import MNIST as Official

    with pytest.raises(ganzoo.DownloadError, match=f"needs {Official.mirrors[0]}train-images-idx3-ubyte.gz"):
        ganzoo.create_dataset("mnist", root=str(tmp_path), download=True).tensors()


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_a_mirror_serving_the_right_files_is_read(tmp_path, server, monkeypatch, name):
    files = packed(1)
    monkeypatch.setattr(PLUGINS[name], "resources", lambda self: [(n, hashlib.md5(b).hexdigest()) for n, b in files.items()])
    mirror = serve(server, "/mirror/data/", files)
    images, labels = ganzoo.create_dataset(name, root=str(tmp_path), download=True, verify=False, mirror=mirror).tensors()
    want_images, want_labels = mnist_arrays(seed=1)
    assert np.array_equal(((images[:, 0] + 1) * 127.5).round().numpy(), want_images)  # scaled to [-1, 1]
    assert np.array_equal(labels.numpy(), want_labels)
    folder = "MNIST" if name == "mnist" else "FashionMNIST"
    assert sorted(p.name for p in (tmp_path / folder / "raw").iterdir()) == sorted(files)


def cifar_archive(records: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
            body = cifar_records(records, 0)
            info = tarfile.TarInfo(f"{FOLDER}/{name}")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def test_cifar10_from_a_mirror_right_and_wrong(tmp_path, server, monkeypatch):
    wrong = cifar_archive(2)
    mirror = serve(server, "/cifar/", {ARCHIVE: wrong})
    with pytest.raises(ganzoo.DownloadError, match="expects c32a1d4ab5d03f1284b67883e8d87530; nothing was kept"):
        ganzoo.create_dataset("cifar10", root=str(tmp_path), download=True, mirror=mirror).tensors()
    assert not list(tmp_path.iterdir())
    right = cifar_archive(3)
    server.routes[f"/cifar/{ARCHIVE}"] = (right, len(right))
    monkeypatch.setattr("ganzoo_plugins.cifar10.MD5", hashlib.md5(right).hexdigest())
    images, labels = ganzoo.create_dataset("cifar10", root=str(tmp_path), download=True, verify=False, mirror=mirror).tensors()
    assert images.shape == (15, 3, 32, 32) and not (tmp_path / ARCHIVE).exists()  # unpacked, the archive gone
    assert CIFAR10.Config(root=str(tmp_path), verify=False).files()[0].is_file()


@pytest.mark.parametrize("mirror", ["ftp://example.org/x/", "not a url", "file:///etc/"])
def test_a_mirror_is_an_http_address(tmp_path, mirror):
    with pytest.raises(ganzoo.UsageError, match="mirror"):
        ganzoo.create_dataset("mnist", root=str(tmp_path), download=True, mirror=mirror)


def test_a_plain_http_mirror_elsewhere_than_this_machine_is_refused(tmp_path):
    with pytest.raises(ganzoo.DownloadError, match="is not https://"):
        ganzoo.create_dataset("mnist", root=str(tmp_path), download=True, mirror="http://example.org/mnist/").tensors()
    assert not list(tmp_path.rglob("*.gz"))


@pytest.mark.parametrize("name, said", [("celeba", "Google Drive"), ("lsun", "download.py")])
def test_datasets_that_do_not_download_say_what_to_fetch(tmp_path, name, said):
    with pytest.raises(ganzoo.UsageError, match=said):
        ganzoo.create_dataset(name, root=str(tmp_path), download=True)


def test_a_recorded_data_spec_reads_back_with_its_default_mirror(tmp_path):
    """A run records its data as text with every option; the mirror's default must read back."""
    from ganzoo.config import parse_spec
    from ganzoo.loop import plan
    from test_image_datasets import write_mnist

    write_mnist(tmp_path)
    recorded = str(plan({"loss": "nonsaturating", "data": f"mnist:root={tmp_path},verify=false"}).config.data)
    assert "mirror=" in recorded
    spec = parse_spec(recorded)
    assert ganzoo.create_dataset(spec["name"], **spec["options"]).config.mirror == ""
