"""The standard image datasets, read from tiny files this test writes in the official formats."""

import gzip
import hashlib
import io
import struct
import tarfile

import numpy as np
import pytest
import torch

import ganzoo
from ganzoo.cli import main


def idx(array: np.ndarray) -> bytes:
    """The IDX format of MNIST's files: magic (0, 0, ubyte type 8, dimensions), big-endian sizes, bytes."""
    return struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def mnist_arrays(n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), (np.arange(n) % 10).astype(np.uint8)


def write_mnist(root, folder="MNIST", split="train"):
    images, labels = mnist_arrays()
    raw = root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    prefix = "train" if split == "train" else "t10k"
    (raw / f"{prefix}-images-idx3-ubyte").write_bytes(idx(images))
    (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(labels))
    return images, labels


def cifar_records(n: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 10).astype(np.uint8)[:, None]
    return np.concatenate([labels, rng.integers(0, 256, (n, 3072), dtype=np.uint8)], axis=1).tobytes()


def write_cifar(root):
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        (folder / f"data_batch_{i}.bin").write_bytes(cifar_records(4, i))
    (folder / "test_batch.bin").write_bytes(cifar_records(3, 0))
    return folder


def test_cifar10_reads_the_binary_release_label_then_rgb_planes(tmp_path):
    folder = write_cifar(tmp_path)
    train = ganzoo.create_dataset("cifar10", root=str(tmp_path), verify=False)  # batches of 4 records
    images, labels = train.tensors()
    assert images.shape == (20, 3, 32, 32) and labels.tolist() == [i % 10 for i in range(4)] * 5
    first = np.frombuffer((folder / "data_batch_1.bin").read_bytes()[:3073], dtype=np.uint8)
    assert images[0, 0, 0, 0] == pytest.approx(first[1] / 127.5 - 1)  # red plane first
    assert images[0, 1, 0, 0] == pytest.approx(first[1 + 1024] / 127.5 - 1)  # then green
    assert images[0, 2, 31, 31] == pytest.approx(first[3072] / 127.5 - 1)  # blue ends the record
    assert ganzoo.create_dataset("cifar10", root=str(tmp_path), split="test", verify=False).tensors()[0].shape == (3, 3, 32, 32)


@pytest.mark.parametrize(
    ("name", "needle"),
    [("mnist", "MNIST/raw/train-images-idx3-ubyte.gz is missing"), ("cifar10", "data_batch_1.bin is missing: unpack")],
)
def test_missing_files_are_one_line_naming_the_folder_and_the_download_option(tmp_path, capsys, name, needle):
    args = ["train", "--loss", "wgan", "--data", f"{name}:root={tmp_path},size=32", "--generator", "dcgan:width=8",
            "--critic", "dcgan:width=8", "--steps", "1", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "download=true" in err[0], err
    assert not (tmp_path / "run").exists()  # said before the run starts


def test_damaged_files_are_one_line(tmp_path):
    folder = write_cifar(tmp_path)
    (folder / "data_batch_3.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(ganzoo.UsageError, match="is not CIFAR-10's binary format"):
        ganzoo.create_dataset("cifar10", root=str(tmp_path), verify=False).tensors()


def test_an_image_dataset_trains_a_dcgan(tmp_path):
    write_cifar(tmp_path)
    args = ["train", "--loss", "nonsaturating", "--data", f"cifar10:root={tmp_path},size=16,verify=false", "--generator",
            "dcgan:width=8", "--critic", "dcgan:width=8", "--batch-size", "8", "--steps", "2", "--quiet",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    assert ganzoo.load_generator(tmp_path / "run" / "generator.safetensors").sample(2).shape == (2, 3, 16, 16)


# -- download=true, against a loopback server ---------------------------------------------------


def test_cifar10_downloads_the_binary_archive_checked_before_unpacking(tmp_path, server, monkeypatch):
    monkeypatch.delenv("GANZOO_OFFLINE", raising=False)
    source = tmp_path / "source"
    write_cifar(source)
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar:
        tar.add(source / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    server.routes["/cifar.tar.gz"] = (packed.getvalue(), len(packed.getvalue()))
    import ganzoo_plugins.cifar10 as cifar10

    monkeypatch.setattr(cifar10, "URL", f"http://127.0.0.1:{server.server_port}/cifar.tar.gz")
    monkeypatch.setattr(cifar10, "MD5", hashlib.md5(packed.getvalue()).hexdigest())
    root = tmp_path / "root"
    assert ganzoo.create_dataset("cifar10", root=str(root), download=True, verify=False).tensors()[0].shape == (20, 3, 32, 32)
    assert not (root / cifar10.ARCHIVE).exists()  # the archive goes once unpacked
    monkeypatch.setattr(cifar10, "MD5", "f" * 32)
    with pytest.raises(ganzoo.DownloadError, match="expects f{32}; nothing was kept"):
        ganzoo.create_dataset("cifar10", root=str(tmp_path / "bad"), download=True).tensors()
    assert not any((tmp_path / "bad").rglob("*.bin"))


def write_celeba(root, n: int = 6):
    """A CelebA-like folder: aligned 178x218 JPEGs, the attribute list (-1/1) and the partition list."""
    from PIL import Image

    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        name = f"{i + 1:06d}.jpg"
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(folder / "img_align_celeba" / name)
        rows.append(f"{name} {' '.join('1' if (i >> b) & 1 else '-1' for b in range(3))}")
    (folder / "list_attr_celeba.txt").write_text(f"{n}\nMale Smiling Young\n" + "\n".join(rows) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {0 if i < 4 else 2}\n" for i in range(n)))


def test_celeba_reads_faces_splits_and_an_attribute_as_the_label(tmp_path):
    write_celeba(tmp_path)
    train = ganzoo.create_dataset("celeba", root=str(tmp_path), size=32, attribute="Male")
    images, labels = train.tensors()
    assert images.shape == (4, 3, 32, 32) and labels.tolist() == [0, 1, 0, 1]  # files 1-4, bit 0
    assert train.describe() == {"classes": 2}
    test = ganzoo.create_dataset("celeba", root=str(tmp_path), split="test", size=16, attribute="Smiling")
    assert test.tensors()[1].tolist() == [0, 0] and test.sample_shape == (3, 16, 16)  # files 5-6, bit 1
    with pytest.raises(ganzoo.UsageError, match="CelebA has no attribute 'Bald'; it has Male, Smiling, Young"):
        ganzoo.create_dataset("celeba", root=str(tmp_path), attribute="Bald").tensors()


def test_celeba_says_how_to_get_it(tmp_path):
    with pytest.raises(ganzoo.ConfigError, match="list_attr_celeba.txt is missing: unzip img_align_celeba.zip"):
        ganzoo.create_dataset("celeba", root=str(tmp_path))
    with pytest.raises(ganzoo.ConfigError, match="Google Drive, which ganzoo does not script"):
        ganzoo.create_dataset("celeba", root=str(tmp_path), download=True)


def write_lsun(root, counts={"bedroom": 5, "church_outdoor": 3}):
    """LSUN's layout: ROOT/CATEGORY_train_lmdb/ holding an LMDB of webp images under hex keys."""
    lmdb = pytest.importorskip("lmdb")
    from PIL import Image

    rng = np.random.default_rng(0)
    for category, n in counts.items():
        with lmdb.open(str(root / f"{category}_train_lmdb"), map_size=1 << 24) as env, env.begin(write=True) as txn:
            for i in range(n):
                out = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)).save(out, format="WEBP")
                txn.put(hashlib.sha1(f"{category}{i}".encode()).hexdigest().encode(), out.getvalue())


def test_lsun_streams_the_official_lmdb_of_each_category_with_its_label(tmp_path):
    write_lsun(tmp_path)
    data = ganzoo.create_dataset("lsun", root=str(tmp_path), categories="bedroom+church_outdoor", size=16)
    assert data.sample_shape == (3, 16, 16) and data.describe() == {"classes": 2}
    assert sorted(data.labels().tolist()) == [0] * 5 + [1] * 3
    batch = next(data.batches(4, torch.device("cpu")))
    assert batch.shape == (4, 3, 16, 16) and batch.min() >= -1 and batch.max() <= 1
    args = ["train", "--loss", "nonsaturating", "--data", f"lsun:root={tmp_path},size=16", "--generator",
            "dcgan:width=8", "--critic", "dcgan:width=8", "--batch-size", "4", "--steps", "2", "--quiet",
            "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0


def test_lsun_missing_categories_are_one_line(tmp_path):
    write_lsun(tmp_path, {"bedroom": 2})
    with pytest.raises(ganzoo.ConfigError, match=r"tower_train_lmdb/data.mdb is missing: unzip the official train LMDB of each category in \S+$"):
        ganzoo.create_dataset("lsun", root=str(tmp_path), categories=["bedroom", "tower"])  # no download offered
    with pytest.raises(ganzoo.ConfigError, match="each category is a name such as bedroom"):
        ganzoo.create_dataset("lsun", root=str(tmp_path), categories="")
