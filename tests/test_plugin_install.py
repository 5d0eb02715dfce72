"""Third-party plugins installed for real: `pip install` (no network) into a fresh environment.

The environment sees the packages of the one running the tests (ganzoo, torch, pytest,
setuptools) and gets plugin distributions installed into it, so discovery runs through
installed metadata exactly as on a user's machine.
"""

import json
import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

import ganzoo
from ganzoo.cli import KINDS, main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "ganzoo-extra"
TINY_NETS = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1"]


class Environment:
    """A virtual environment that also sees this interpreter's packages.

    `venv --system-site-packages` is not enough: made from a virtual environment's python, it
    exposes the *base* interpreter's site-packages, not this environment's. So the new one gets
    a .pth file that calls site.addsitedir on ours: our packages come after its own, and our
    .pth files run too (the hook of an editable ganzoo install among them). It is made without
    pip, which it borrows from us as well, since installing pip into it would cost seconds.
    """

    def __init__(self, path: Path) -> None:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        self.python = path / "bin" / "python"
        purelib = self.run("-c", "import sysconfig; print(sysconfig.get_path('purelib'))").stdout.strip()
        lines = [f"import site; site.addsitedir({directory!r})\n" for directory in site.getsitepackages()]
        Path(purelib, "_ganzoo_test_parent.pth").write_text("".join(lines))

    def run(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "GANZOO_DEBUG"}  # errors stay one line
        done = subprocess.run([str(self.python), *args], capture_output=True, text=True, cwd=cwd, env=env)
        if check and done.returncode != 0:
            pytest.fail(f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def ganzoo(self, *args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("-m", "ganzoo.cli", *args, cwd=cwd, check=check)

    def pip_install(self, *folders: Path) -> None:
        self.run("-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index", *map(str, folders))

    def pip_uninstall(self, *distributions: str) -> None:
        self.run("-m", "pip", "uninstall", "--quiet", "--yes", *distributions)


def listed(environment: Environment) -> dict[tuple[str, str, str], tuple[str, str]]:
    """`ganzoo list` as {(kind, name, distribution): (version, status)}; it must exit 0."""
    lines = environment.ganzoo("list").stdout.splitlines()
    rows = [line.split()[:5] for line in lines[1:]]
    return {(kind, name, dist): (version, status) for kind, name, dist, version, status in rows}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """The environment with ganzoo-extra and a fresh scaffold of every kind installed, in one pip call."""
    root = tmp_path_factory.mktemp("plugins")
    environment = Environment(root / "venv")
    example = shutil.copytree(EXAMPLE, root / "ganzoo-extra")  # pip builds in the source folder
    for kind in KINDS:
        assert main(["plugin", "new", f"my-{kind}", "--kind", kind, "--dir", str(root / f"ganzoo-my-{kind}")]) == 0
    environment.pip_install(example, *(root / f"ganzoo-my-{kind}" for kind in KINDS))
    return root, environment


def test_the_environment_sees_this_ganzoo_and_setuptools(workspace):
    root, environment = workspace
    probe = "import sys, ganzoo, setuptools, pytest; print(sys.prefix); print(ganzoo.__file__)"
    prefix, ganzoo_file = environment.run("-c", probe).stdout.split()
    assert Path(prefix) == root / "venv"
    assert Path(ganzoo_file) == Path(ganzoo.__file__)


def test_list_shows_installed_plugins_with_distribution_and_version(workspace):
    rows = listed(workspace[1])
    assert rows[("loss", "extra-hinge", "ganzoo-extra")] == ("0.1.0", "ok")
    assert rows[("constraint", "extra-gp", "ganzoo-extra")] == ("0.1.0", "ok")
    for kind in KINDS:
        assert rows[(kind, f"my-{kind}", f"ganzoo-my-{kind}")] == ("0.1.0", "ok")
    assert rows[("loss", "wgan", "ganzoo")] == (ganzoo.__version__, "ok")


def test_train_with_the_example_hinge_loss_and_gradient_penalty(workspace):
    root, environment = workspace
    run = root / "hinge-gp"
    flags = ["--steps", "3", "--batch-size", "16", "--log-every", "1", "--quiet", "--out", str(run)]
    environment.ganzoo("train", "--loss", "extra-hinge", "--constraint", "extra-gp", *TINY_NETS, *flags)
    saved = json.loads((run / "config.json").read_text())
    assert saved["constraints"] == [{"name": "extra-gp", "options": {"weight": 10.0}}]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 3
    with safe_open(str(run / "checkpoints" / "step-0000003.safetensors"), "pt") as checkpoint:
        plugins = json.loads(checkpoint.metadata()["plugins"])
    assert plugins["loss"] == {"name": "extra-hinge", "distribution": "ganzoo-extra", "version": "0.1.0"}
    assert plugins["constraint.0"]["distribution"] == "ganzoo-extra"


def test_every_scaffold_and_the_example_pass_their_own_tests_unchanged(workspace):
    root, environment = workspace
    folders = ["ganzoo-extra", *(f"ganzoo-my-{kind}" for kind in KINDS)]
    # One pytest process for all (each would spend seconds importing torch); it must exit 0.
    flags = ["-v", "-p", "no:cacheprovider", "--rootdir", str(root)]
    done = environment.run("-m", "pytest", *flags, *(f"{folder}/tests" for folder in folders), cwd=root)
    for folder in folders:
        test_file = f"{folder}/tests/test_{folder.replace('-', '_')}.py"
        assert f"{test_file}::test_" in done.stdout, f"{test_file} did not run:\n{done.stdout}"


BAD_DISTRIBUTIONS = {
    # distribution: (its loss's name, its module's source, the error when it is used, the exit code)
    "ganzoo-broken-import": (
        "broken-import", "import not_a_real_module\n", "is broken: importing ganzoo_broken_import:Plugin failed: ModuleNotFoundError", 1
    ),
    "ganzoo-wrong-base": (
        "wrong-base",
        "import ganzoo\n\nclass Plugin(ganzoo.Constraint):\n    '''A constraint offered as a loss.'''\n",
        "is broken: ganzoo_wrong_base:Plugin is not a subclass of ganzoo.Loss",
        1,
    ),
    "ganzoo-clash": (
        "wgan",
        "import ganzoo\n\nclass Plugin(ganzoo.Loss):\n    '''Another wgan.'''\n",
        "offered by several distributions (ganzoo, ganzoo-clash); pick one as DIST/NAME",
        2,
    ),
}


def write_distribution(folder: Path, dist: str, loss_name: str, source: str) -> Path:
    module = dist.replace("-", "_")
    folder.mkdir()
    (folder / f"{module}.py").write_text(source)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{dist}"\nversion = "0.1.0"\n\n'
        f'[project.entry-points."ganzoo.losses"]\n{loss_name} = "{module}:Plugin"\n\n'
        f'[tool.setuptools]\npy-modules = ["{module}"]\n'
    )
    return folder


def test_bad_plugins_are_listed_fail_in_one_line_when_used_and_uninstall_cleanly(workspace):
    root, environment = workspace
    folders = [write_distribution(root / dist, dist, name, source) for dist, (name, source, *_) in BAD_DISTRIBUTIONS.items()]
    environment.pip_install(*folders)

    rows = listed(environment)  # exits 0 despite them
    assert rows[("loss", "broken-import", "ganzoo-broken-import")] == ("0.1.0", "broken")
    assert rows[("loss", "wrong-base", "ganzoo-wrong-base")] == ("0.1.0", "broken")
    assert rows[("loss", "wgan", "ganzoo-clash")] == ("0.1.0", "ambiguous")
    assert rows[("loss", "wgan", "ganzoo")] == (ganzoo.__version__, "ambiguous")
    assert rows[("loss", "extra-hinge", "ganzoo-extra")] == ("0.1.0", "ok")

    for name, _, error, exit_code in BAD_DISTRIBUTIONS.values():
        done = environment.ganzoo("train", "--loss", name, "--steps", "1", "--quiet", "--out", str(root / name), check=False)
        assert done.returncode == exit_code
        assert done.stderr.startswith("ganzoo: error:") and len(done.stderr.splitlines()) == 1, done.stderr
        assert error in done.stderr

    environment.pip_uninstall(*BAD_DISTRIBUTIONS)
    rows = listed(environment)
    assert not [key for key in rows if key[2] in BAD_DISTRIBUTIONS]
    assert rows[("loss", "wgan", "ganzoo")] == (ganzoo.__version__, "ok")


def test_a_regular_wheel_install_ships_the_plugins_the_assets_and_the_zoo(tmp_path):
    """Not editable: the wheel itself must carry ganzoo_plugins, the classifier weights and the model cards."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"  # a copy: the build writes build/ beside it
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "__pycache__", "runs", "build", "*.egg-info"))
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run([*build, "--wheel-dir", str(wheels), str(source)], check=True, capture_output=True)
    (wheel,) = wheels.glob("ganzoo-*.whl")
    environment = Environment(tmp_path / "venv")
    environment.run("-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(wheel))
    probe = (
        "import ganzoo, ganzoo_plugins, ganzoo_model_cards\n"
        "from ganzoo_plugins import classifiers\n"
        "classifiers.load(classifiers.DigitsClassifier), classifiers.load(classifiers.FashionClassifier)\n"
        "print(ganzoo.__file__, ganzoo_plugins.__file__, ganzoo_model_cards.__file__)\n"
        "print(len(ganzoo.list_pretrained()), tuple(ganzoo.load_pretrained('wgan-ring8').sample(3).shape))\n"
    )
    paths, loaded = environment.run("-c", probe, cwd=tmp_path).stdout.splitlines()
    assert all(Path(p).is_relative_to(tmp_path / "venv") for p in paths.split())
    assert loaded == f"{len(ganzoo.list_pretrained())} (3, 2)"  # every card of the source tree
    assert "ok" in environment.ganzoo("list", "loss", cwd=tmp_path).stdout
