"""Bad input to the image dataset plugins (lsun, celeba, cifar10, folder): every fault is one line
naming the file (and its line, record or key) and what is allowed; never a crash or a traceback."""

import os
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import ganzoo
from test_image_datasets import cifar_records, write_celeba, write_cifar, write_lsun

CPU = torch.device("cpu")


def one_line(caught) -> str:
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message, message
    return message


# -- lsun ---------------------------------------------------------------------------------------


def lmdb_file(root, category="bedroom"):
    return root / f"{category}_train_lmdb" / "data.mdb"


@pytest.mark.parametrize(
    ("size", "needle"),
    [
        (16384, "holds 16,384 bytes but its LMDB reaches 32,768: the copy is cut short; copy it again"),
        (5000, "holds 5,000 bytes, less than the two pages an LMDB starts with: the copy is cut short; copy it again"),
    ],
)
def test_a_truncated_lsun_lmdb_is_one_line_not_a_bus_error(tmp_path, size, needle):
    """lmdb maps the file: reading past a cut-short end is SIGBUS, so this runs in a process of its own."""
    write_lsun(tmp_path, {"bedroom": 5})
    path = lmdb_file(tmp_path)
    assert path.stat().st_size == 32768  # 2 meta pages, a leaf and 5 overflow pages of 4 KiB
    os.truncate(path, size)
    args = [sys.executable, "-m", "ganzoo", "train", "--loss", "nonsaturating", "--data", f"lsun:root={tmp_path},size=16",
            "--generator", "dcgan:width=8", "--critic", "dcgan:width=8", "--batch-size", "4", "--steps", "1", "--quiet",
            "--out", str(tmp_path / "run")]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2, (result.returncode, result.stderr)
    (line,) = result.stderr.strip().splitlines()
    assert f"{path} {needle}" in line, line


def corrupt_leaf_pages(path) -> None:
    """Mark every leaf page of an LMDB as some other kind: lmdb then reports MDB_CORRUPTED (no crash)."""
    data = bytearray(path.read_bytes())
    for start in range(0, len(data), 4096):
        if struct.unpack_from("<H", data, start + 10)[0] & 0x02:  # the page header's flags: P_LEAF
            struct.pack_into("<H", data, start + 10, 0x40)
    path.write_bytes(data)


def test_lmdb_errors_are_one_line_naming_the_file_and_the_key(tmp_path):
    write_lsun(tmp_path, {"bedroom": 5})
    path = lmdb_file(tmp_path)
    good = path.read_bytes()
    path.write_bytes(os.urandom(8192))
    with pytest.raises(ganzoo.UsageError, match="MDB_INVALID") as caught:
        ganzoo.create_dataset("lsun", root=str(tmp_path), size=16).labels()
    assert one_line(caught).startswith(f"{path} is not a readable LMDB")
    path.write_bytes(good)
    corrupt_leaf_pages(path)
    with pytest.raises(ganzoo.UsageError, match="MDB_CORRUPTED") as caught:  # listing the keys
        ganzoo.create_dataset("lsun", root=str(tmp_path), size=16).labels()
    assert one_line(caught).startswith(f"{path} cannot be read")
    path.write_bytes(good)
    data = ganzoo.create_dataset("lsun", root=str(tmp_path), size=16)
    data.labels()  # the keys are read, then the file is damaged before the images are
    corrupt_leaf_pages(path)
    with pytest.raises(ganzoo.UsageError, match="MDB_CORRUPTED") as caught:
        next(data.batches(4, CPU))
    assert one_line(caught).startswith(f"{path}, key ")


def test_an_undecodable_lsun_image_names_the_lmdb_and_the_key(tmp_path):
    import lmdb

    write_lsun(tmp_path, {"bedroom": 4})
    with lmdb.open(str(lmdb_file(tmp_path).parent), map_size=1 << 24) as env, env.begin(write=True) as txn:
        txn.put(b"0" * 40, b"not an image")  # sorts first
    data = ganzoo.create_dataset("lsun", root=str(tmp_path), size=16)
    with pytest.raises(ganzoo.UsageError, match="cannot identify image file") as caught:
        next(data.batches(5, CPU))  # every image: the bad one is in it
    assert one_line(caught).startswith(f"cannot read image {'0' * 40} of {lmdb_file(tmp_path)}: ")


def test_lsun_refuses_a_category_named_twice(tmp_path):
    write_lsun(tmp_path, {"bedroom": 2})
    with pytest.raises(ganzoo.ConfigError, match="option 'categories': bedroom is named twice; each category is one class"):
        ganzoo.create_dataset("lsun", root=str(tmp_path), categories="bedroom+bedroom")


# -- celeba -------------------------------------------------------------------------------------

ATTRIBUTES, PARTITION = "list_attr_celeba.txt", "list_eval_partition.txt"


def edit(path, number: int, line: bytes | None, insert: bool = False) -> None:
    """Replace line `number` (1-based) of `path` by `line`, insert it there, or (None) delete it."""
    lines = path.read_bytes().split(b"\n")
    if line is None:
        del lines[number - 1]
    else:
        lines[number - 1 : number - 1 + (not insert)] = [line]
    path.write_bytes(b"\n".join(lines))


BAD_NAMES = [b"../000001.jpg", b"/etc/passwd", b"sub/000001.jpg", b"sub\\000001.jpg", b".."]


@pytest.mark.parametrize(
    ("name", "number", "line", "insert", "needle"),
    [
        (ATTRIBUTES, 4, b"", True, "line 4, is empty"),
        (ATTRIBUTES, 5, b"   ", False, "line 5, is empty"),
        (ATTRIBUTES, 3, b"000001.jpg", False, "line 3, is not a file name and 3 values of -1 or 1"),
        (ATTRIBUTES, 6, b"000004.jpg 1 \xff\xfe -1", False, "line 6, is not UTF-8 text"),
        (ATTRIBUTES, 1, b"six", False, "line 1, is not the number of faces"),
        (ATTRIBUTES, 8, None, False, "line 1, announces 6 faces but the file lists 5"),  # a cut-short copy
        (ATTRIBUTES, 2, b"", False, "line 2, names no attributes"),
        (PARTITION, 2, b"", True, "line 2, is empty"),
        (PARTITION, 3, b"000003.jpg", False, "line 3, is not a file name and its partition, 0, 1 or 2"),
        (PARTITION, 3, b"000003.jpg 7", False, "line 3, is not a file name and its partition, 0, 1 or 2"),
        (PARTITION, 1, b"000001.jpg \xe9", False, "line 1, is not UTF-8 text"),
        *[(ATTRIBUTES, 4, bad + b" 1 1 1", False, "line 4, names a file outside") for bad in BAD_NAMES],
        *[(PARTITION, 2, bad + b" 0", False, "line 2, names a file outside") for bad in BAD_NAMES],
    ],
)
def test_damaged_celeba_lists_are_one_line_naming_the_file_and_line(tmp_path, name, number, line, insert, needle):
    write_celeba(tmp_path)
    path = tmp_path / "celeba" / name
    edit(path, number, line, insert)
    with pytest.raises(ganzoo.UsageError) as caught:
        ganzoo.create_dataset("celeba", root=str(tmp_path), size=16).tensors()
    assert one_line(caught).startswith(f"{path}, {needle}"), str(caught.value)


def test_an_empty_attribute_list_or_a_folder_in_its_place_is_one_line(tmp_path):
    write_celeba(tmp_path)
    path = tmp_path / "celeba" / ATTRIBUTES
    path.write_bytes(b"")
    with pytest.raises(ganzoo.UsageError) as caught:
        ganzoo.create_dataset("celeba", root=str(tmp_path), size=16).tensors()
    assert one_line(caught).startswith(f"{path}, line 1, is not the number of faces (the file is empty)")
    path.unlink()
    path.mkdir()
    with pytest.raises(ganzoo.ConfigError, match="list_attr_celeba.txt is not a file") as caught:
        ganzoo.create_dataset("celeba", root=str(tmp_path), size=16)
    one_line(caught)


def test_a_face_missing_from_the_partition_list_is_one_line(tmp_path):
    write_celeba(tmp_path)
    edit(tmp_path / "celeba" / PARTITION, 6, None)  # a cut-short copy
    with pytest.raises(ganzoo.UsageError) as caught:
        ganzoo.create_dataset("celeba", root=str(tmp_path), size=16).tensors()
    assert one_line(caught) == (f"{tmp_path / 'celeba' / PARTITION} gives no partition to 000006.jpg "
                                f"({tmp_path / 'celeba' / ATTRIBUTES}, line 8): the copy is cut short; copy it again")  # fmt: skip
    assert len(ganzoo.create_dataset("celeba", root=str(tmp_path), size=16, split="all").tensors()[1]) == 6


def break_faces(root) -> None:
    for face in (root / "celeba" / "img_align_celeba").iterdir():
        face.write_bytes(b"not a jpeg")  # decoding any face would fail: the faults below come first


def test_an_unknown_attribute_is_said_before_any_face_is_decoded(tmp_path):
    write_celeba(tmp_path)
    break_faces(tmp_path)
    with pytest.raises(ganzoo.UsageError, match="^CelebA has no attribute 'Bald'; it has Male, Smiling, Young$"):
        ganzoo.create_dataset("celeba", root=str(tmp_path), size=16, attribute="Bald").tensors()


def test_celeba_checks_the_memory_before_decoding(tmp_path, monkeypatch):
    write_celeba(tmp_path)
    break_faces(tmp_path)
    monkeypatch.setattr(ganzoo.interfaces, "available_memory", lambda: 1000)
    with pytest.raises(ganzoo.UsageError, match=r"^6 faces of 32x32 need 0.0 GiB of memory, more than the 0.0 GiB free; "
                                                 r"choose a smaller size= option or a split$"):  # fmt: skip
        ganzoo.create_dataset("celeba", root=str(tmp_path), size=32, split="all").tensors()  # 6 * 3 * 32 * 32 * 5 bytes


@pytest.mark.parametrize("limit", [30000, 10000])  # faces of 38,804 pixels: PIL warns over the limit, refuses over twice it
def test_a_celeba_decompression_bomb_is_one_line(tmp_path, monkeypatch, limit):
    write_celeba(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ganzoo.UsageError, match="could be decompression bomb") as caught:
        ganzoo.create_dataset("celeba", root=str(tmp_path), size=16).tensors()
    assert one_line(caught).startswith(f"cannot read face {tmp_path / 'celeba' / 'img_align_celeba' / '000001.jpg'}: ")


# -- cifar10 ------------------------------------------------------------------------------------


def test_a_cifar_batch_without_the_official_10000_records_is_refused(tmp_path):
    folder = write_cifar(tmp_path)  # batches of 4 records: files of one's own, in the official format
    with pytest.raises(ganzoo.UsageError) as caught:
        ganzoo.create_dataset("cifar10", root=str(tmp_path)).tensors()
    assert one_line(caught) == (
        f"{folder / 'data_batch_1.bin'} holds 4 records; an official CIFAR-10 batch holds 10,000 (of 3,073 bytes): "
        "copy it again, or verify=false reads batches of your own"
    )
    assert len(ganzoo.create_dataset("cifar10", root=str(tmp_path), verify=False).tensors()[1]) == 20
    (folder / "test_batch.bin").write_bytes(cifar_records(10_000, 0))
    assert len(ganzoo.create_dataset("cifar10", root=str(tmp_path), split="test").tensors()[1]) == 10_000
    (folder / "test_batch.bin").write_bytes(cifar_records(9_999, 0))  # an interrupted copy, cut at a record's end
    with pytest.raises(ganzoo.UsageError, match=r"test_batch.bin holds 9,999 records; an official CIFAR-10 batch holds 10,000"):
        ganzoo.create_dataset("cifar10", root=str(tmp_path), split="test").tensors()


def test_a_huge_cifar_file_is_judged_by_its_size_without_reading_it(tmp_path, monkeypatch):
    folder = write_cifar(tmp_path)
    with open(folder / "test_batch.bin", "wb") as huge:
        huge.truncate(3073 * 4_000_000)  # 12.3 GB, sparse: no disk used
    monkeypatch.setattr(np, "fromfile", lambda *args, **kwargs: pytest.fail("the file was read"))
    with pytest.raises(ganzoo.UsageError, match="test_batch.bin holds 4,000,000 records; an official"):
        ganzoo.create_dataset("cifar10", root=str(tmp_path), split="test").tensors()
    monkeypatch.setattr(ganzoo.interfaces, "available_memory", lambda: 2**30)
    with pytest.raises(ganzoo.UsageError, match=r"^the 4,000,000 records in .*cifar-10-batches-bin need [\d.]+ GiB of memory"):
        ganzoo.create_dataset("cifar10", root=str(tmp_path), split="test", verify=False).tensors()


def test_a_cifar_label_out_of_range_names_the_file_and_the_record(tmp_path):
    folder = write_cifar(tmp_path)
    records = bytearray(cifar_records(4, 3))
    records[2 * 3073] = 12  # the label byte of record 2
    records[3 * 3073] = 200
    (folder / "data_batch_4.bin").write_bytes(records)
    with pytest.raises(ganzoo.UsageError) as caught:
        ganzoo.create_dataset("cifar10", root=str(tmp_path), verify=False).tensors()
    assert one_line(caught) == f"{folder / 'data_batch_4.bin'}: label 12 at record 2 (2 in all) is not a class of CIFAR-10 (0-9)"


# -- folder -------------------------------------------------------------------------------------


def pictures(folder, n: int, size=(12, 10)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", size, (20 * i, 0, 0)).save(folder / f"{i}.png")


def test_folder_follows_symlinked_class_folders_without_looping(tmp_path):
    data = tmp_path / "data"
    pictures(data / "cat", 3)
    pictures(tmp_path / "elsewhere" / "dog", 2)
    pictures(tmp_path / "elsewhere" / "owl", 4)
    (data / "dog").symlink_to(tmp_path / "elsewhere" / "dog", target_is_directory=True)
    (data / "owl").symlink_to(tmp_path / "elsewhere" / "owl", target_is_directory=True)
    (data / "cat" / "loop").symlink_to(data, target_is_directory=True)  # a cycle: data/cat/loop/cat/loop/...
    (tmp_path / "elsewhere" / "owl" / "back").symlink_to(data / "owl", target_is_directory=True)  # a cycle through a link
    folder = ganzoo.create_dataset("folder", path=data, size=8)
    assert folder.class_names == ["cat", "dog", "owl"] and folder.classes == 3
    assert sorted(folder.labels.tolist()) == [0] * 3 + [1] * 2 + [2] * 4
    images, labels = next(folder.labelled_batches(9, CPU, ganzoo.Shard(seed=0)))
    assert images.shape == (9, 3, 8, 8) and sorted(labels.tolist()) == [0] * 3 + [1] * 2 + [2] * 4


def test_folder_size_has_an_upper_bound(tmp_path):
    pictures(tmp_path, 1)
    with pytest.raises(ganzoo.ConfigError, match="option 'size'.*less than or equal to 4096"):
        ganzoo.create_dataset("folder", path=tmp_path, size=5000)


def test_folder_checks_the_memory_before_decoding_into_it(tmp_path, monkeypatch):
    pictures(tmp_path, 4)
    (tmp_path / "broken.png").write_bytes(b"not a png")  # decoding would fail: the memory is said first
    monkeypatch.setattr(ganzoo.interfaces, "available_memory", lambda: 1000)
    with pytest.raises(ganzoo.UsageError, match=r"^5 images of 16x16 need 0.0 GiB of memory, more than the 0.0 GiB free; "
                                                 r"lower the memory_limit_mb= option to read them from disk each batch, or choose a smaller size= option$"):  # fmt: skip
        next(ganzoo.create_dataset("folder", path=tmp_path, size=16).batches(5, CPU))


@pytest.mark.parametrize("memory_limit_mb", [2048, 0])  # decoded once into memory, or each batch
@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_corrupt_image_is_one_line_with_any_number_of_workers(tmp_path, num_workers, memory_limit_mb):
    pictures(tmp_path, 4)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    data = ganzoo.create_dataset("folder", path=tmp_path, size=8, num_workers=num_workers, memory_limit_mb=memory_limit_mb)
    with pytest.raises(ganzoo.UsageError) as caught:
        next(data.batches(5, CPU))  # every image: the broken one is in it
    assert one_line(caught).startswith(f"cannot read image {tmp_path / 'broken.png'}: cannot identify image file")


@pytest.mark.parametrize("limit", [100, 40])  # a 10x12 image: PIL warns over the limit, refuses over twice it
def test_a_folder_decompression_bomb_is_one_line(tmp_path, monkeypatch, limit):
    pictures(tmp_path, 1)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ganzoo.UsageError, match="could be decompression bomb") as caught:
        next(ganzoo.create_dataset("folder", path=tmp_path, size=8).batches(1, CPU))
    assert one_line(caught).startswith(f"cannot read image {tmp_path / '0.png'}: ")
