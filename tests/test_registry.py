import ast
import re
from pathlib import Path

import pytest
import torch

import ganzoo
import ganzoo.registry
from ganzoo.cli import main
from ganzoo.testing import temporary_distribution

ROOT = Path(__file__).resolve().parents[1]
BUILT_INS = {
    ("loss", "minimax"), ("loss", "nonsaturating"), ("loss", "instance-noise"), ("loss", "wgan"),
    ("loss", "hinge"), ("loss", "least-squares"), ("loss", "rpgan"), ("loss", "ragan"),
    ("constraint", "clip"), ("constraint", "gradient-penalty"), ("constraint", "r1"), ("constraint", "r2"),
    ("constraint", "spectral-norm"), ("constraint", "ac"),
    ("generator", "mlp"), ("generator", "dcgan"), ("generator", "resnet"), ("generator", "r3gan"),
    ("critic", "mlp"), ("critic", "dcgan"), ("critic", "resnet"), ("critic", "r3gan"), ("critic", "timm"), ("critic", "maxout"),
    ("critic", "pac"),
    ("dataset", "ring8"), ("dataset", "grid25"), ("dataset", "digits"), ("dataset", "folder"),
    ("dataset", "mnist"), ("dataset", "fashion-mnist"), ("dataset", "cifar10"), ("dataset", "celeba"), ("dataset", "lsun"),
    ("logger", "tensorboard"), ("augment", "diffaugment"),
}  # fmt: skip

HINGE = """
    import torch.nn.functional as F
    import ganzoo

    class Hinge(ganzoo.Loss):
        \"\"\"Hinge loss, from a third party.\"\"\"

        class Config(ganzoo.Config):
            margin: float = 1.0

        def critic_loss(self, real_scores, fake_scores):
            return F.relu(self.config.margin - real_scores).mean() + F.relu(self.config.margin + fake_scores).mean()

        def generator_loss(self, fake_scores):
            return -fake_scores.mean()
"""


#: A throwaway distribution and plugin name that no real package uses, so what else is installed
#: (examples/ganzoo-extra offers a `hinge` loss, say) cannot change these tests.
PROBE_DIST, PROBE = "ganzoo-registry-probe", "probe-hinge"


def extra_loss(tmp_path, name, source):
    """The distribution PROBE_DIST offering one loss `name`: class Hinge of module `probe_gan`."""
    entry_points = {"ganzoo.losses": {name: "probe_gan:Hinge"}}
    return temporary_distribution(tmp_path, PROBE_DIST, entry_points, modules={"probe_gan": source})


def listed(kind, name):
    return [info for info in ganzoo.list_plugins(kind) if info.name == name]


def test_a_third_party_plugin_is_found_through_its_metadata(tmp_path):
    with extra_loss(tmp_path, PROBE, HINGE):
        (info,) = listed("loss", PROBE)
        assert (info.distribution, info.version, info.status) == (PROBE_DIST, "0.0.1", "ok")
        assert info.summary == "Hinge loss, from a third party."
        loss = ganzoo.create_loss(PROBE, margin=2.0)
        assert loss.critic_loss(torch.tensor([3.0]), torch.tensor([-3.0])).item() == 0.0
    assert listed("loss", PROBE) == []


BROKEN = {
    "import error": ("import not_a_real_module\n", "No module named 'not_a_real_module'"),
    "error at import": ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    "missing attribute": ("import ganzoo\n", "has no attribute 'Hinge'"),
    "wrong base class": ("import ganzoo\nclass Hinge(ganzoo.Constraint): pass\n", "not a subclass of ganzoo.Loss"),
    "not a class": ("def Hinge(): pass\n", "not a subclass of ganzoo.Loss"),
    "config not pydantic": ("import ganzoo\nclass Hinge(ganzoo.Loss): Config = dict\n", "Config is not a subclass"),
    "unsupported plugin api": (HINGE + "        plugin_api = '>=2'\n", "needs plugin API >=2"),
    "api checked first": ("import ganzoo\nclass Hinge(ganzoo.Constraint): plugin_api = '>=2'\n", "needs plugin API >=2"),
    "api not a range": (HINGE + "        plugin_api = 'one'\n", "plugin_api 'one' is not a version range"),
}  # fmt: skip


@pytest.mark.parametrize("case", BROKEN)
def test_a_broken_plugin_is_listed_with_a_reason_and_raises_when_asked_for(tmp_path, case):
    source, reason = BROKEN[case]
    with extra_loss(tmp_path, PROBE, source):
        (info,) = listed("loss", PROBE)  # list_plugins itself never raises
        assert info.status == "broken"
        assert reason in info.reason and PROBE in info.reason and PROBE_DIST in info.reason
        assert "\n" not in info.reason
        assert {i.status for i in ganzoo.list_plugins() if i.distribution == "ganzoo"} == {"ok"}
        with pytest.raises(ganzoo.BrokenPlugin, match=reason) as caught:
            ganzoo.create_loss(PROBE)
    if case in ("import error", "error at import"):
        assert isinstance(caught.value.__cause__, (ImportError, RuntimeError))


def test_a_plugin_within_its_declared_api_range_works(tmp_path):
    declared = f">={ganzoo.PLUGIN_API_VERSION},<{ganzoo.PLUGIN_API_VERSION + 1}"
    with extra_loss(tmp_path, PROBE, HINGE + f"        plugin_api = '{declared}'\n"):
        assert [info.status for info in listed("loss", PROBE)] == ["ok"]
        assert ganzoo.create_loss(PROBE).config.margin == 1.0


def test_a_name_clash_with_a_built_in_is_never_settled_silently(tmp_path):
    with extra_loss(tmp_path, "wgan", HINGE):
        rows = listed("loss", "wgan")
        assert {(i.distribution, i.status) for i in rows} == {("ganzoo", "ambiguous"), (PROBE_DIST, "ambiguous")}
        assert all("also offered by" in i.reason for i in rows)
        with pytest.raises(ganzoo.AmbiguousPlugin, match=rf"\(ganzoo, {PROBE_DIST}\).*DIST/NAME"):
            ganzoo.create_loss("wgan")
        assert type(ganzoo.create_loss("ganzoo/wgan")).__name__ == "WGAN"
        assert type(ganzoo.create_loss(f"{PROBE_DIST}/wgan")).__name__ == "Hinge"
        assert type(ganzoo.create_loss(PROBE_DIST.replace("-", "_") + "/wgan")).__name__ == "Hinge"  # names are normalised


def test_an_unknown_name_suggests_a_close_match():
    with pytest.raises(ganzoo.PluginNotFound, match=r"no loss named 'wgna'; did you mean 'wgan'\?"):
        ganzoo.create_loss("wgna")
    with pytest.raises(ganzoo.PluginNotFound, match=r"no loss named 'wgan' from distribution 'elsewhere'"):
        ganzoo.create_loss("elsewhere/wgan")
    with pytest.raises(ganzoo.ConfigError, match="unknown plugin kind 'losses'"):
        ganzoo.list_plugins("losses")


@pytest.mark.parametrize(
    ("create", "options", "expected"),
    [
        (ganzoo.create_constraint, {"c": "wide"}, r"^constraint 'clip': option 'c': .*number.*\(got 'wide'\)$"),
        (ganzoo.create_constraint, {"c": -1}, r"^constraint 'clip': option 'c': .*greater than 0"),
        (ganzoo.create_constraint, {"clip": 0.1}, r"^constraint 'clip': unknown option 'clip' \(allowed: c\)$"),
        (ganzoo.create_loss, {"base": "hinge"}, r"^loss 'instance-noise': option 'base': .*'minimax' or 'nonsat"),
        (ganzoo.create_loss, {"sigma": -0.1}, r"^loss 'instance-noise': option 'sigma': .*greater than or equal to 0"),
    ],
)
def test_every_bad_option_is_one_line_naming_plugin_and_option(create, options, expected):
    name = "clip" if create is ganzoo.create_constraint else "instance-noise"
    with pytest.raises(ganzoo.ConfigError, match=expected) as caught:
        create(name, **options)
    assert "\n" not in str(caught.value)


def test_the_sample_shape_is_not_offered_as_an_option():
    with pytest.raises(ganzoo.ConfigError, match=r"unknown option .depht. \(allowed: latent_dim, width, depth, batchnorm, embedding\)"):
        ganzoo.create_generator("mlp", sample_shape=(2,), depht=2)


def test_every_built_in_is_listed_from_the_ganzoo_distribution():
    rows = [info for info in ganzoo.list_plugins() if info.distribution == "ganzoo"]
    assert {(info.kind, info.name) for info in rows} == BUILT_INS
    for info in rows:
        assert (info.status, info.reason, info.version) == ("ok", "", ganzoo.__version__)
        assert info.summary, f"{info.kind} {info.name} has no one-line docstring"


def test_list_plugins_is_empty_without_entry_points(monkeypatch):
    monkeypatch.setattr(ganzoo.registry.md, "entry_points", lambda **kwargs: [])
    assert ganzoo.list_plugins() == []
    with pytest.raises(ganzoo.PluginNotFound, match=r"installed: none"):
        ganzoo.create_loss("wgan")


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_the_core_never_imports_a_plugin():
    for path in sorted((ROOT / "ganzoo").rglob("*.py")):
        offending = [m for m in imported_modules(path) if m.split(".")[0] == "ganzoo_plugins"]
        assert not offending, f"{path.name} imports {offending}"


def test_plugins_import_only_the_public_core():
    # Built-ins are templates for third parties, so they use nothing a third party could not.
    for path in sorted((ROOT / "plugins").glob("*.py")):
        private = [m for m in imported_modules(path) if m.split(".")[0] == "ganzoo" and m != "ganzoo"]
        assert not private, f"{path.name} imports {private}"


# -- a plugin's options, for `ganzoo list --verbose` and `ganzoo show` -----------------------------


def test_options_come_from_the_config_with_types_defaults_bounds_and_descriptions():
    sigma = next(option for option in ganzoo.plugin_info("loss", "instance-noise").options if option.name == "sigma")
    assert (sigma.type, sigma.required, sigma.default, sigma.bounds) == ("float", False, 0.1, ">= 0")
    assert sigma.description == "noise std at the start of the run"
    base = ganzoo.plugin_info("loss", "instance-noise").options[0]
    assert (base.name, base.type) == ("base", "'minimax' | 'nonsaturating'")
    path = ganzoo.plugin_info("dataset", "folder").options[0]
    assert (path.name, path.required, path.default) == ("path", True, None)
    # The loop sets sample_shape and classes from the data: they are nobody's options; those of conditioning come last.
    assert [o.name for o in ganzoo.plugin_info("generator", "mlp").options] == ["latent_dim", "width", "depth", "batchnorm", "embedding"]
    assert ganzoo.plugin_info("loss", "wgan").options == ()


def test_list_verbose_prints_each_plugins_options(capsys):
    assert main(["list", "constraint", "--verbose"]) == 0
    lines = capsys.readouterr().out.splitlines()
    clip = next(i for i, line in enumerate(lines) if line.split()[:3] == ["constraint", "clip", "ganzoo"])
    assert lines[clip + 1].split() == ["c", "float", ">", "0", "default", "0.01", "clipping", "bound"]


def test_show_prints_summary_origin_and_options(capsys):
    assert main(["show", "loss", "instance-noise"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "loss instance-noise: " + ganzoo.plugin_info("loss", "instance-noise").summary
    assert out[1] == f"distribution: ganzoo {ganzoo.__version__}"
    assert out[2] == "options:"
    assert out[3].split()[:3] == ["base", "'minimax'", "|"] and "default 'nonsaturating'" in out[3]
    assert main(["show", "loss", "wgan"]) == 0
    *_, options, defaults = capsys.readouterr().out.splitlines()
    assert options == "options: none"  # what a run gets from the loss, which the user cannot see elsewhere:
    assert defaults.startswith("training defaults: rmsprop lr 5e-05, batch size 64, n_critic 5, 100 critic steps")


def test_train_help_lists_each_losss_training_defaults(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Each loss's defaults" in out and "--debug" in out
    assert re.search(r"^  minimax\s+adam lr 0.0002 betas 0.5 0.999, batch size 64, n_critic 1$", out, re.M)


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["losses", "wgan"], "unknown plugin kind 'losses'"), (["loss", "wgna"], "no loss named 'wgna'")],
)
def test_show_of_an_unknown_kind_or_name_is_one_line_and_exit_2(capsys, args, needle):
    assert main(["show", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
