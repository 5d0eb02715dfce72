"""`ganzoo plugin new`: what it writes and what it refuses (installing the result is in test_plugin_install)."""

import sys

import pytest

from ganzoo.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganzoo: error:"), err
    return err[0]


def test_writes_a_distribution_with_its_entry_point_module_and_test(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plugin", "new", "least-squares", "--kind", "loss"]) == 0
    target = tmp_path / "ganzoo-least-squares"
    assert str(target) in capsys.readouterr().out
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "LICENSE",
        "README.md",
        "ganzoo_least_squares.py",
        "pyproject.toml",
        "tests/test_ganzoo_least_squares.py",
    ]
    assert "pip install -e ." in (target / "README.md").read_text()
    test_source = (target / "tests" / "test_ganzoo_least_squares.py").read_text()
    assert '"loss": PLUGIN' in test_source and "nonsaturating" not in test_source  # no leftover loss
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "ganzoo-least-squares"
    assert project["project"]["entry-points"]["ganzoo.losses"] == {"least-squares": "ganzoo_least_squares:LeastSquares"}
    assert "class LeastSquares(ganzoo.Loss):" in (target / "ganzoo_least_squares.py").read_text()
    assert [p.name for p in tmp_path.iterdir()] == [target.name]  # no staging folder left


@pytest.mark.parametrize("name", ["MyLoss", "my_loss", "1loss", "my--loss", "my-loss-", "", "my loss"])
def test_a_bad_name_is_one_line_and_writes_nothing(tmp_path, capsys, name):
    assert main(["plugin", "new", name, "--kind", "loss", "--dir", str(tmp_path / "out")]) == 2
    assert f"invalid plugin name '{name}'" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_non_empty_folder_is_left_alone(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["plugin", "new", "my-loss", "--kind", "loss", "--dir", str(tmp_path)]) == 2
    assert "already exists and is not an empty folder" in one_error_line(capsys)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_an_existing_empty_folder_is_filled(tmp_path):
    assert main(["plugin", "new", "my-data", "--kind", "dataset", "--dir", str(tmp_path)]) == 0
    assert (tmp_path / "ganzoo_my_data.py").is_file()


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("pathlib.Path.rename", fail)
    with pytest.raises(OSError, match="disk full"):
        main(["--debug", "plugin", "new", "my-loss", "--kind", "loss", "--dir", str(tmp_path / "out")])
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_kind_is_a_usage_error(tmp_path):
    assert main(["plugin", "new", "my-zoo", "--kind", "zoo", "--dir", str(tmp_path / "out")]) == 2


def test_a_name_an_installed_plugin_has_is_written_with_a_warning(tmp_path, capsys):
    assert main(["plugin", "new", "wgan", "--kind", "loss", "--dir", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "warning: ganzoo already offers a loss named 'wgan'" in err and "ganzoo/wgan" in err
