"""MNIST and Fashion-MNIST from stand-in files in the official IDX format: every layout the files
are published in, their checks, and every fault one line naming the file."""

import gzip
import hashlib
import struct

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.cli import main
from ganzoo_plugins.mnist import FashionMNIST, MNIST
from test_image_datasets import idx, mnist_arrays, write_mnist


def options(root, **more) -> dict:
    return {"root": str(root), "verify": False, **more}


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_mnist_formats_are_read_with_their_labels(tmp_path, name):
    images, labels = write_mnist(tmp_path, "MNIST" if name == "mnist" else "FashionMNIST")
    data = ganzoo.create_dataset(name, **options(tmp_path))
    assert data.sample_shape == (1, 28, 28)
    pixels, read_labels = data.tensors()
    assert torch.equal(read_labels, torch.from_numpy(labels).long())
    assert torch.allclose(pixels[:, 0], torch.from_numpy(images).float() / 127.5 - 1)
    assert data.describe() == {"classes": 10}
    resized = ganzoo.create_dataset(name, **options(tmp_path, size=16))
    assert resized.sample_shape == (1, 16, 16) and resized.tensors()[0].shape == (12, 1, 16, 16)
    batch = next(data.batches(4, torch.device("cpu")))
    assert batch.shape == (4, 1, 28, 28) and batch.min() >= -1 and batch.max() <= 1


def write_layout(root, layout: str, images: np.ndarray, labels: np.ndarray) -> None:
    """The files as torchvision unpacks them, as the authors (and Debian) ship them gzipped, or loose in root."""
    folder = root / "FashionMNIST" / "raw" if layout in ("torchvision", "torchvision-gz") else root
    folder.mkdir(parents=True, exist_ok=True)
    packed = layout.endswith("gz")
    for name, array in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)):
        data = idx(array)
        (folder / (name + (".gz" if packed else ""))).write_bytes(gzip.compress(data) if packed else data)


@pytest.mark.parametrize("layout", ["torchvision", "torchvision-gz", "root", "root-gz"])
def test_every_published_layout_is_read(tmp_path, layout):
    images, labels = mnist_arrays()
    write_layout(tmp_path, layout, images, labels)
    pixels, read = ganzoo.create_dataset("fashion-mnist", **options(tmp_path)).tensors()
    assert torch.equal(read, torch.from_numpy(labels).long()) and pixels.shape == (12, 1, 28, 28)


def test_published_checksums_are_checked_on_the_content(tmp_path, monkeypatch):
    """A recompressed .gz has other bytes than the authors' but the same content: it passes."""
    images, labels = mnist_arrays()
    write_layout(tmp_path, "root-gz", images, labels)
    content = {"train-images-idx3-ubyte": hashlib.md5(idx(images)).hexdigest(),
               "train-labels-idx1-ubyte": hashlib.md5(idx(labels)).hexdigest()}  # fmt: skip
    monkeypatch.setattr(FashionMNIST, "CONTENT_MD5", content)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(labels), compresslevel=1))  # recompressed
    assert len(ganzoo.create_dataset("fashion-mnist", root=str(tmp_path)).tensors()[1]) == 12
    monkeypatch.setattr(FashionMNIST, "CONTENT_MD5", {**content, "train-images-idx3-ubyte": "0" * 32})
    with pytest.raises(ganzoo.UsageError, match=r"train-images-idx3-ubyte.gz is not the official file: .* verify=false"):
        ganzoo.create_dataset("fashion-mnist", root=str(tmp_path)).tensors()


def test_missing_files_name_every_place_looked_in_and_how_to_get_them(tmp_path, capsys):
    args = ["train", "--loss", "wgan", "--data", f"fashion-mnist:root={tmp_path}", "--generator", "dcgan",
            "--critic", "dcgan", "--steps", "1", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 2
    (err,) = capsys.readouterr().err.strip().splitlines()
    assert f"looked for it, unpacked or .gz, in {tmp_path}/FashionMNIST/raw, {tmp_path};" in err, err
    assert "download=true" in err and not (tmp_path / "run").exists()


def test_the_default_root_also_looks_where_debian_installs_the_files():
    places = FashionMNIST.Config.model_construct(root="data", split="train").places()
    assert places[-1].as_posix() == "/usr/share/datasets/fashion-mnist"
    assert "/usr/share" not in str(FashionMNIST.Config.model_construct(root="mine", split="train").places())


def test_a_folder_where_a_file_belongs_is_not_called_missing(tmp_path):
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").mkdir(parents=True)
    with pytest.raises(ganzoo.ConfigError, match="train-images-idx3-ubyte is not a file"):
        ganzoo.create_dataset("mnist", **options(tmp_path))


def header_file(tmp_path, body: bytes) -> None:
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").write_bytes(body)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (idx(np.zeros((12, 56, 14), np.uint8)), "holds items of 56x14 bytes; this dataset's are 28x28"),  # same bytes
        (idx(np.zeros((12, 28, 28), np.uint8))[:-1], "announces 9,408 bytes of data, it holds 9,407"),
        (idx(np.zeros((12, 28, 28), np.uint8)) + b"\0", "announces 9,408 bytes of data, it holds more"),
        (struct.pack(">BBBB", 0, 0, 0x0D, 3) + struct.pack(">3I", 12, 28, 28), "IDX type 0x0d in 3 dimensions"),
        (struct.pack("<BBBB", 8, 3, 0, 0), "is not an IDX file"),  # a little-endian header
        (b"\0\0\x08\x03\0\0", "ends inside its IDX header"),
        (struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">3I", 2**31, 28, 28), "GiB of memory, more than"),
    ],
)
def test_bad_image_files_are_one_line_naming_the_file(tmp_path, body, needle):
    header_file(tmp_path, body)
    with pytest.raises(ganzoo.UsageError, match="train-images-idx3-ubyte") as caught:
        ganzoo.create_dataset("mnist", **options(tmp_path)).tensors()
    assert needle in str(caught.value) and "\n" not in str(caught.value)


def test_a_gz_that_is_not_gzip_is_one_line(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"plain bytes, not gzip")
    (raw / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(mnist_arrays()[1])))
    with pytest.raises(ganzoo.UsageError, match=r"train-images-idx3-ubyte.gz cannot be read: Not a gzipped file"):
        ganzoo.create_dataset("mnist", **options(tmp_path)).tensors()


@pytest.mark.parametrize("label", [10, 200])
def test_labels_out_of_range_are_refused_at_load_naming_the_first(tmp_path, label):
    images, labels = mnist_arrays()
    labels[7] = label
    labels[9] = label
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(idx(labels))
    with pytest.raises(ganzoo.UsageError, match=rf"train-labels-idx1-ubyte: label {label} at index 7 \(2 in all\) is not a class 0-9"):
        ganzoo.create_dataset("mnist", **options(tmp_path)).tensors()


def test_unequal_image_and_label_counts(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").write_bytes(idx(np.zeros(11, np.uint8)))
    with pytest.raises(ganzoo.UsageError, match="holds 12 images but .* 11 labels"):
        ganzoo.create_dataset("mnist", **options(tmp_path)).tensors()


def test_the_decoded_size_is_checked_against_free_memory_first(tmp_path, monkeypatch):
    write_mnist(tmp_path)
    data = ganzoo.create_dataset("mnist", **options(tmp_path, size=128))
    monkeypatch.setattr(ganzoo.interfaces, "available_memory", lambda: 100_000)
    with pytest.raises(ganzoo.UsageError, match=r"12 images of 128x128 as float32 need .* choose a smaller size= option"):
        data.tensors()


def test_download_fetches_the_gz_checks_its_published_md5_and_reads_it_packed(tmp_path, server, monkeypatch):
    monkeypatch.delenv("GANZOO_OFFLINE", raising=False)
    images, labels = mnist_arrays()
    files = {"train-images-idx3-ubyte.gz": gzip.compress(idx(images)), "train-labels-idx1-ubyte.gz": gzip.compress(idx(labels))}
    server.routes = {f"/mnist/{name}": (body, len(body)) for name, body in files.items()}
    md5s = [(name, hashlib.md5(body).hexdigest()) for name, body in files.items()]
    monkeypatch.setattr(MNIST, "mirror", lambda self: f"http://127.0.0.1:{server.server_port}/mnist/")
    monkeypatch.setattr(MNIST, "resources", lambda self: md5s)
    data = ganzoo.create_dataset("mnist", **options(tmp_path, download=True))
    assert torch.equal(data.tensors()[1], torch.from_numpy(labels).long())
    assert sorted(p.name for p in (tmp_path / "MNIST" / "raw").iterdir()) == sorted(files)

    monkeypatch.setattr(MNIST, "resources", lambda self: [(name, "0" * 32) for name, _ in md5s])
    with pytest.raises(ganzoo.DownloadError, match="has md5 .* expects 0{32}; nothing was kept"):
        ganzoo.create_dataset("mnist", **options(tmp_path / "other", download=True)).tensors()
    assert not any(p.is_file() for p in (tmp_path / "other").rglob("*"))
