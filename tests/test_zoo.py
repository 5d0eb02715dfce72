"""The pretrained zoo: shipped cards, sha256 checks, downloads into the cache, and the CLI.

Card metrics: every card's front matter is checked for the right keys and types, and its
numbers are recomputed with `ganzoo evaluate`'s code for all four digits models (well under
a second each) and for one toy model per loss family and dataset (RECOMPUTED_TOY): exact W1
costs one to a few seconds per toy model, too slow for all eight in a fast suite.

Downloads go through a real HTTP server on 127.0.0.1 (http:// is allowed only for loopback
hosts; cards elsewhere must use https://).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import sys
import threading
import uuid
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import ganzoo
from ganzoo import zoo
from ganzoo.cli import main
from ganzoo.errors import AmbiguousPlugin, BrokenPlugin, CheckpointError, PluginNotFound, UsageError
from ganzoo.evaluation import evaluate
from ganzoo.testing import temporary_distribution

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
LOSSES = ["minimax", "nonsaturating", "instance-noise", "wgan"]
DATASETS = {"ring8": (2,), "grid25": (2,), "digits": (1, 16, 16), "fashion-mnist": (1, 28, 28)}
PACKED = ["nonsaturating-pac2-grid25", "nonsaturating-pac2-ring8"]
TOOLBOX = ["hinge-sn-digits", "hinge-sn-grid25", "hinge-sn-ring8", "least-squares-grid25", "least-squares-ring8", "nonsaturating-r1-digits", "nonsaturating-r1-grid25", "nonsaturating-r1-ring8", "wgan-gp-grid25", "wgan-gp-ring8"]
CONDITIONAL = ["acgan-digits", "acgan-fashion-mnist", "projection-digits", "projection-grid25", "projection-fashion-mnist", "r3gan-conditional-fashion-mnist"]
#: the objectives Lucic et al. 2018 compare on Fashion-MNIST, hinge + spectral norm, R3GAN's objective and R3GAN
FASHION = [f"{loss}-fashion-mnist" for loss in ("minimax", "nonsaturating", "least-squares", "wgan", "wgan-gp", "hinge-sn", "rpgan-r1-r2", "r3gan")]
SHIPPED = sorted([f"{loss}-{data}" for loss in LOSSES for data in ("ring8", "grid25", "digits")] + PACKED + TOOLBOX + CONDITIONAL + FASHION)
RECOMPUTED_TOY = ["nonsaturating-ring8", "wgan-grid25", "nonsaturating-pac2-grid25", "projection-grid25"]
TOY_METRICS = {"modes", "modes_total", "high_quality", "kl", "w1"}
DIGITS_METRICS = {"classes", "classes_total", "kl", "confidence", "frechet"}
#: what a conditional generator's card adds: a summary and a row per class
PER_CLASS = {"ring8": {"own_mode", "own_mode_worst"}, "grid25": {"own_mode", "own_mode_worst"},
             "digits": {"accuracy", "accuracy_worst"}, "fashion-mnist": {"accuracy", "accuracy_worst"}}  # fmt: skip
#: Relative tolerance for a number recorded on one machine and recomputed on another.
CROSS_MACHINE = 1e-5
SHIPPED_CARDS = resources.files("ganzoo_model_cards")


@pytest.fixture(autouse=True)
def offline_cache(tmp_path, monkeypatch) -> Path:
    """Every test runs offline with an empty cache of its own; download tests go online themselves."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("GANZOO_CACHE", str(cache))
    monkeypatch.setenv("GANZOO_OFFLINE", "1")
    return cache


def front_matter(text: str) -> dict:
    return yaml.safe_load(text.split("---\n")[1])


def shipped_front(name: str) -> dict:
    return front_matter((SHIPPED_CARDS / name / "README.md").read_text())


def shipped_weights(name: str) -> bytes:
    return (SHIPPED_CARDS / name / "generator.safetensors").read_bytes()


@contextlib.contextmanager
def card_package(root: Path, cards: dict[str, tuple[dict, bytes | None]], dist: str = "zoo-test"):
    """A temporary distribution offering `cards` (name -> (front matter, weights beside it or None))."""
    package = f"zoo_test_cards_{uuid.uuid4().hex[:8]}"
    for name, (front, weights) in cards.items():
        folder = root / package / name
        folder.mkdir(parents=True)
        (folder / "README.md").write_text(f"---\n{yaml.safe_dump(front)}---\n\n# {name}\n")
        if weights is not None:
            (folder / "generator.safetensors").write_bytes(weights)
    (root / package / "__init__.py").write_text("")
    try:
        with temporary_distribution(root, dist, {"ganzoo.zoo": {"cards": package}}):
            yield package
    finally:
        sys.modules.pop(package, None)


# --- the shipped zoo ------------------------------------------------------------------------


def data_of(name: str) -> str:
    return "fashion-mnist" if name.endswith("fashion-mnist") else name.rpartition("-")[2]


def test_every_shipped_model_is_listed_and_loads_offline():
    assert ganzoo.list_pretrained() == SHIPPED
    for name in SHIPPED:
        generator = ganzoo.load_pretrained(name)
        samples = generator.sample(4, generator=torch.Generator().manual_seed(0))
        assert not generator.training and bool(generator.classes) == (name in CONDITIONAL)
        assert samples.shape == (4, *DATASETS[data_of(name)]) and samples.isfinite().all()


def test_list_pretrained_matches_a_shell_pattern():
    assert ganzoo.list_pretrained("wgan-*") == ["wgan-digits", "wgan-fashion-mnist", "wgan-gp-fashion-mnist", "wgan-gp-grid25",
                                                "wgan-gp-ring8", "wgan-grid25", "wgan-ring8"]  # fmt: skip
    assert ganzoo.list_pretrained("*-ring8") == sorted([f"{loss}-ring8" for loss in LOSSES] + ["nonsaturating-pac2-ring8"] + [n for n in TOOLBOX if n.endswith("-ring8")])
    assert ganzoo.list_pretrained("nothing-*") == []


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_card_is_complete(name):
    card = zoo.model_card(name)
    folder = SHIPPED_CARDS / name
    assert (card.license, card.library_name, card.distribution) == ("mit", "ganzoo", "ganzoo")
    assert card.weights == "generator.safetensors" and (folder / "sample.png").is_file()
    assert (folder / "progress.png").is_file() and "## Over training" in card.text
    data = data_of(name)
    conditional = PER_CLASS[data] | {"per_class"} if name in CONDITIONAL else set()
    own = {"digits": DIGITS_METRICS, "fashion-mnist": DIGITS_METRICS | {"frechet_real"}}.get(data, TOY_METRICS)
    assert set(card.metrics) == own | conditional
    assert {"command", "steps", "seconds", "machine"} <= set(card.training)
    assert card.training["machine"].startswith("CPU, 1 thread, ")
    assert card.training["command"] in card.text and "sample.png" in card.text and "## Limitations" in card.text
    assert ganzoo.recorded_options(ganzoo.load_pretrained(name).config) == card.generator_config


def test_the_zoo_trainer_retrains_every_shipped_card_with_its_own_command():
    """scripts/train_zoo.py knows each card's recipe and budget: a changed recipe leaves no stale card."""
    models = {model.name: model for model in importlib.import_module("train_zoo").MODELS}
    assert sorted(models) == SHIPPED  # and no model of the trainer lacks its card
    for name in SHIPPED:
        assert zoo.model_card(name).training["command"] == models[name].command, name


def test_the_r3gan_recipe_is_the_one_the_r3gan_cards_train_with():
    """`ganzoo train --config r3gan-fashion-mnist` (with --conditional) retrains the zoo's R3GAN cards."""
    from ganzoo import recipes

    model = next(m for m in importlib.import_module("train_zoo").MODELS if m.name == "r3gan-fashion-mnist")
    settings, _ = recipes.read("r3gan-fashion-mnist")
    zoo_only = ("seed", "device", "precision", "checkpoint_every", "out")  # how the zoo runs it, not what it trains
    trained = {key: value for key, value in model.config.items() if key not in zoo_only and value is not None}
    assert {key: value for key, value in settings.items() if key not in ("n_critic", "batch_size")} == trained
    defaults = ganzoo.create_loss("rpgan").defaults  # what the cards' commands leave to the loss
    assert (settings["n_critic"], settings["batch_size"]) == (defaults.n_critic, defaults.batch_size)


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.endswith("fashion-mnist")])
def test_a_fashion_card_records_its_checkpoints_frechet_up_to_its_headline(name):
    card = zoo.model_card(name)
    by_step = card.training["frechet_by_step"]
    assert max(by_step) == card.training["steps"] and len(by_step) >= 3
    assert by_step[max(by_step)] == pytest.approx(card.metrics["frechet"], rel=5e-3)  # the card's table: 3 figures


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.endswith("fashion-mnist")])
def test_a_fashion_card_says_where_it_settled_or_why_it_stopped(name):
    """Issue 40's rule: each card settled, or says why it stopped where it did, from its own checkpoints."""
    card = zoo.model_card(name)
    records = [{"step": step, "frechet": frechet} for step, frechet in sorted(card.training["frechet_by_step"].items())]
    note = importlib.import_module("train_zoo").settled(records, card.training.get("cpu_seconds"))
    assert f"- {note}\n" in (SHIPPED_CARDS / name / "README.md").read_text()
    if "still falling" in note:
        assert records[-1]["frechet"] < records[-3]["frechet"]


def test_an_unsettled_card_says_where_its_budget_stopped_it_and_whether_it_still_fell():
    settled = importlib.import_module("train_zoo").settled
    falling = [{"step": s, "frechet": f} for s, f in ((1000, 100.0), (2000, 90.0), (3000, 80.0))]
    assert "stopped at its budget of 3,000 steps (2 CPU minutes here): the curve above was still falling" in settled(falling, 120.0)
    rising = falling[:2] + [{"step": 3000, "frechet": 120.0}]
    assert "stopped at its budget of 3,000 steps: the curve above was still moving" in settled(rising, None)
    flat = falling + [{"step": s, "frechet": 80.0} for s in (4000, 5000)]
    assert "it had settled by step 5,000" in settled(flat, None)


def test_a_card_has_settled_when_three_checkpoints_stay_within_five_percent():
    train_zoo = importlib.import_module("train_zoo")
    falling = [(500, 300.0), (1000, 200.0), (1500, 150.0), (2000, 120.0)]
    assert train_zoo.settle_step(falling) is None and train_zoo.settling(falling) == "no: -40% over the last three"
    flat = falling + [(2500, 118.0), (3000, 117.0), (3500, 119.0)]
    assert train_zoo.settle_step(flat) == 3000 and train_zoo.settling(flat) == "at 3,000"  # 2,000 to 3,000 within 5%
    assert train_zoo.settle_step(flat + [(4000, 100.0)]) is None  # it fell again: not settled


def test_every_card_trained_with_an_ema_says_its_weights_are_the_averaged_ones():
    """The PacGAN protocol has no EMA: a card that keeps one states it (and its decay) beside its recipe."""
    with_ema = {}
    for name in SHIPPED:
        card = zoo.model_card(name)
        if "--ema " in card.training["command"]:
            with_ema[name] = card.training["command"].split("--ema ")[1].split()[0]
            assert f"an EMA of the generator (decay {with_ema[name]}, the weights shipped here)" in card.text, name
    assert "nonsaturating-pac2-grid25" in with_ema and "nonsaturating-grid25" not in with_ema


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.endswith("digits")] + RECOMPUTED_TOY + ["wgan-fashion-mnist"])
def test_card_metrics_are_what_evaluate_computes(name):
    card = zoo.model_card(name)
    measured = evaluate(ganzoo.load_pretrained(name), card.dataset, seed=0)
    recorded = dict(card.metrics)
    # Recorded on one CPU, recomputed on this one: float32 kernels differ in their last bits between
    # CPUs (e.g. AVX2 vs AVX-512), which moved a Frechet distance by 2.4e-8 relative on one pair of machines.
    for theirs, mine in zip(recorded.pop("per_class", []), measured.pop("per_class", []), strict=True):
        assert mine == pytest.approx(theirs, rel=CROSS_MACHINE)
    assert measured == pytest.approx(recorded, rel=CROSS_MACHINE)


#: The weights every card ships, so that load_pretrained works offline: at most 3.5 MiB a card (the
#: 28x28 DCGAN of width 64 is 3.0 MB) and 80 MiB in all, within PyPI's file size limit of 100 MB.
CARD_WEIGHTS_MIB, ZOO_WEIGHTS_MIB = 3.5, 80


def test_shipped_weights_fit_the_size_budget_and_the_package_data():
    files = [p for p in (ROOT / "model_cards").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    weights = [p.stat().st_size for p in files if p.suffix == ".safetensors"]
    assert max(weights) < CARD_WEIGHTS_MIB * 2**20 and sum(weights) < ZOO_WEIGHTS_MIB * 2**20
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    shipped = [p.relative_to(ROOT / "model_cards").as_posix() for p in files if p.suffix != ".py"]
    assert all(any(fnmatch(f, g) for g in globs["ganzoo_model_cards"]) for f in shipped)


# --- names --------------------------------------------------------------------------------


def test_unknown_name_suggests_a_close_match():
    with pytest.raises(PluginNotFound, match="did you mean 'wgan-ring8'") as caught:
        ganzoo.load_pretrained("wgan-ring9")
    assert isinstance(caught.value, UsageError)


def test_a_name_offered_twice_must_be_picked_as_dist_slash_name(tmp_path):
    card = (shipped_front("nonsaturating-ring8"), shipped_weights("nonsaturating-ring8"))
    with card_package(tmp_path / "a", {"twin-ring8": card}, "zoo-a"), card_package(tmp_path / "b", {"twin-ring8": card}, "zoo-b"):
        assert ganzoo.list_pretrained("twin-*") == ["zoo-a/twin-ring8", "zoo-b/twin-ring8"]
        with pytest.raises(AmbiguousPlugin, match="zoo-a, zoo-b"):
            ganzoo.load_pretrained("twin-ring8")
        assert zoo.model_card("zoo-b/twin-ring8").distribution == "zoo-b"
        ganzoo.load_pretrained("zoo-a/twin-ring8")
        # The CLI takes DIST/NAME as a name too, not as a file path.
        assert main(["sample", "zoo-a/twin-ring8", "--n", "16", "--out", str(tmp_path / "twin.png")]) == 0
        assert (tmp_path / "twin.png").is_file()


def test_a_card_with_other_metrics_is_listed_with_them(tmp_path, capsys):
    front = {**shipped_front("nonsaturating-ring8"), "metrics": {"precision": 0.5}}
    with card_package(tmp_path, {"odd-ring8": (front, shipped_weights("nonsaturating-ring8"))}):
        assert main(["zoo", "list", "odd-*"]) == 0
    assert "precision 0.5" in capsys.readouterr().out


# --- sha256 and downloads -------------------------------------------------------------------


def test_tampered_weights_are_refused_naming_both_hashes(tmp_path):
    front, weights = shipped_front("nonsaturating-ring8"), bytearray(shipped_weights("nonsaturating-ring8"))
    weights[-1] ^= 0xFF
    with card_package(tmp_path, {"tampered-ring8": (front, bytes(weights))}):
        with pytest.raises(CheckpointError) as caught:
            ganzoo.load_pretrained("tampered-ring8")
    message = str(caught.value)
    assert "tampered-ring8" in message and "generator.safetensors" in message
    assert front["sha256"] in message and hashlib.sha256(weights).hexdigest() in message


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("GANZOO_OFFLINE")


def url_card(server, path: str, sha256: str | None = None) -> tuple[dict, None]:
    front = {**shipped_front("nonsaturating-ring8"), "weights": f"http://127.0.0.1:{server.server_port}{path}"}
    return {**front, "sha256": sha256 or front["sha256"]}, None


def test_download_lands_in_the_cache_and_is_reused(tmp_path, server, online, offline_cache):
    weights = shipped_weights("nonsaturating-ring8")
    server.routes["/ns.safetensors"] = (weights, len(weights))
    with card_package(tmp_path, {"remote-ring8": url_card(server, "/ns.safetensors")}):
        ganzoo.load_pretrained("remote-ring8", quiet=True)
        [cached] = offline_cache.iterdir()
        assert cached.read_bytes() == weights
        server.routes.clear()  # the second load reads the cache
        assert not ganzoo.load_pretrained("remote-ring8", quiet=True).training


WRONG_HASH = "0" * 64


@pytest.mark.parametrize(
    "route, sha256, error, message",
    [
        ("missing", None, zoo.DownloadError, "HTTP 404"),
        ("truncated", None, zoo.DownloadError, r"cut short \(1000 of \d+ bytes\)"),
        ("whole", WRONG_HASH, zoo.DownloadError, f"expects {WRONG_HASH}"),
    ],
)
def test_a_failed_download_leaves_nothing_in_the_cache(tmp_path, server, online, offline_cache, route, sha256, error, message):
    weights = shipped_weights("nonsaturating-ring8")
    server.routes["/truncated"] = (weights[:1000], len(weights))
    server.routes["/whole"] = (weights, len(weights))
    with card_package(tmp_path, {"remote-ring8": url_card(server, f"/{route}", sha256)}):
        with pytest.raises(error, match=message):
            ganzoo.load_pretrained("remote-ring8", quiet=True)
    assert not offline_cache.exists() or not any(offline_cache.iterdir())


def test_offline_mode_refuses_to_download(tmp_path, server, offline_cache):
    weights = shipped_weights("nonsaturating-ring8")
    server.routes["/ns.safetensors"] = (weights, len(weights))
    with card_package(tmp_path, {"remote-ring8": url_card(server, "/ns.safetensors")}):
        with pytest.raises(zoo.DownloadError, match="GANZOO_OFFLINE=1"):
            ganzoo.load_pretrained("remote-ring8")
    assert not offline_cache.exists()


def test_plain_http_is_refused_for_other_hosts(tmp_path, online):
    front = {**shipped_front("nonsaturating-ring8"), "weights": "http://example.com/ns.safetensors"}
    with card_package(tmp_path, {"insecure-ring8": (front, None)}):
        with pytest.raises(BrokenPlugin, match="must be https://"):
            ganzoo.load_pretrained("insecure-ring8")


def test_an_invalid_card_is_one_clear_error_and_hides_no_other(tmp_path, capsys):
    front = {**shipped_front("nonsaturating-ring8"), "sha256": "not a hash"}
    with card_package(tmp_path, {"bad-ring8": (front, None)}):
        with pytest.raises(BrokenPlugin, match="'sha256'"):
            zoo.model_card("bad-ring8")
        assert main(["zoo", "list"]) == 0
    out = capsys.readouterr().out
    assert "broken" in out and "nonsaturating-ring8" in out


# --- the CLI --------------------------------------------------------------------------------


def test_zoo_list_and_show(capsys):
    assert main(["zoo", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in SHIPPED) and "modes" in listing and "classes" in listing
    assert main(["zoo", "show", "wgan-digits"]) == 0
    assert capsys.readouterr().out == (SHIPPED_CARDS / "wgan-digits" / "README.md").read_text()


def test_evaluate_prints_the_card_metrics_as_json(capsys):
    assert main(["evaluate", "minimax-digits", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out, parse_constant=strict_json)
    assert printed["data"] == "digits:size=16" and printed["seed"] == 0
    assert printed["metrics"] == pytest.approx(shipped_front("minimax-digits")["metrics"], rel=CROSS_MACHINE)


def strict_json(constant: str):
    raise AssertionError(f"not JSON: {constant}")


def test_evaluate_json_has_null_for_an_undefined_kl(tmp_path, capsys):
    collapsed = ganzoo.create_generator("mlp", sample_shape=(2,), width=4, depth=1)
    torch.nn.init.zeros_(collapsed.net[-1].weight)
    torch.nn.init.constant_(collapsed.net[-1].bias, 9.0)  # every sample at (9, 9): far from every mode
    path = ganzoo.save_generator(collapsed, tmp_path / "collapsed.safetensors", "mlp")
    assert main(["evaluate", str(path), "--data", "ring8", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out, parse_constant=strict_json)["metrics"]
    assert (metrics["modes"], metrics["high_quality"], metrics["kl"]) == (0, 0.0, None)


def test_evaluate_a_file_defaults_to_the_data_it_was_trained_on(capsys):
    with resources.as_file(SHIPPED_CARDS / "nonsaturating-digits" / "generator.safetensors") as path:
        assert main(["evaluate", str(path)]) == 0
    table = capsys.readouterr().out
    assert "on digits:size=16,split=all, seed 0" in table and "classes covered" in table  # as recorded, defaults spelled out


@pytest.mark.parametrize(
    "argv",
    [["zoo", "show", "wgan-ring9"], ["evaluate", "nope"], ["sample", "nope"], ["evaluate", "wgan-digits", "--data", "ring8"]],
)
def test_bad_names_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ganzoo: error: ") and err.count("\n") == 1


# --- hostile servers, cards and settings ----------------------------------------------------


class _Hostile(BaseHTTPRequestHandler):
    """/trickle: one byte every 0.3 s; /stall: headers, then silence; /redirect: to server.target."""

    def do_GET(self) -> None:
        self.path = getattr(self.server, "rewrite", None) or self.path  # one behaviour for every path
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", self.server.target)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.flush()
        for _ in range(40 if self.path == "/trickle" else 1):  # bounded: the server stops by itself
            if self.path == "/trickle":
                try:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                except OSError:  # the client gave up, as it should
                    return
            threading.Event().wait(0.3 if self.path == "/trickle" else 5)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hostile():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_a_trickling_server_cannot_hold_a_download_past_its_deadline(tmp_path, hostile, online, monkeypatch, offline_cache):
    monkeypatch.setenv("GANZOO_DOWNLOAD_TIMEOUT", "1")
    with card_package(tmp_path, {"slow-ring8": url_card(hostile, "/trickle")}):
        with pytest.raises(zoo.DownloadError, match=r"not finished after 1 s"):
            ganzoo.load_pretrained("slow-ring8", quiet=True)
    assert not offline_cache.exists() or not list(offline_cache.iterdir())  # nothing half-written kept


def test_a_trickle_fails_by_the_rate_rule_without_a_total_cap(tmp_path, hostile, online, monkeypatch, offline_cache):
    """No total cap by default (a large file on a slow link must finish): a trickle is caught by its rate."""
    monkeypatch.delenv("GANZOO_DOWNLOAD_TIMEOUT", raising=False)
    monkeypatch.setattr(zoo, "DOWNLOAD_STALL_S", 0.6)
    with card_package(tmp_path, {"slow-ring8": url_card(hostile, "/trickle")}):
        with pytest.raises(zoo.DownloadError, match=r"slower than 1024 bytes/s for 0.6 s \(\d+ bytes so far\)"):
            ganzoo.load_pretrained("slow-ring8", quiet=True)
    assert not offline_cache.exists() or not list(offline_cache.iterdir())


def test_a_folder_where_the_cache_file_goes_is_one_line_before_any_request(tmp_path, server, online, offline_cache, capsys):
    card, _ = url_card(server, "/ns.safetensors")
    (offline_cache / f"remote-ring8-{card['sha256'][:16]}.safetensors").mkdir(parents=True)
    with card_package(tmp_path, {"remote-ring8": (card, None)}):
        assert main(["sample", "remote-ring8", "--out", str(tmp_path / "x.png")]) == 1
    assert "is a folder where the weights of 'remote-ring8' are to be cached; move it away" in capsys.readouterr().err


def test_a_stalled_server_fails_sooner(tmp_path, hostile, online, monkeypatch):
    monkeypatch.setattr(zoo, "DOWNLOAD_STALL_S", 0.5)
    with card_package(tmp_path, {"stalled-ring8": url_card(hostile, "/stall")}):
        with pytest.raises(zoo.DownloadError, match=r"no data for 0.5 s"):
            ganzoo.load_pretrained("stalled-ring8", quiet=True)


@pytest.mark.parametrize("target", ["http://example.invalid/weights.safetensors", "file:///etc/passwd"])
def test_every_redirect_hop_meets_the_card_url_rule(tmp_path, hostile, online, target):
    hostile.target = target
    with card_package(tmp_path, {"redirected-ring8": url_card(hostile, "/redirect")}):
        # urllib itself refuses a redirect to file://; ganzoo refuses any other hop the card could not name
        with pytest.raises(zoo.DownloadError, match=r"[Rr]edirect.*(which is not https://|is not allowed)"):
            ganzoo.load_pretrained("redirected-ring8", quiet=True)


@pytest.mark.parametrize("value", ["1", "true", "True", "yes", "on", " ON "])
def test_offline_accepts_the_usual_truthy_spellings(tmp_path, server, monkeypatch, value):
    monkeypatch.setenv("GANZOO_OFFLINE", value)
    with card_package(tmp_path, {"remote-ring8": url_card(server, "/never")}):
        with pytest.raises(zoo.DownloadError, match="forbids downloads"):
            ganzoo.load_pretrained("remote-ring8", quiet=True)


def test_a_cache_that_is_a_file_is_one_line(tmp_path, server, online, monkeypatch, capsys):
    (tmp_path / "cachefile").write_text("not a folder")
    monkeypatch.setenv("GANZOO_CACHE", str(tmp_path / "cachefile"))
    with card_package(tmp_path, {"remote-ring8": url_card(server, "/ns.safetensors")}):
        assert main(["sample", "remote-ring8", "--out", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err.strip() == f"ganzoo: error: GANZOO_CACHE={tmp_path / 'cachefile'} is not a folder"


def test_stale_temp_files_of_killed_downloads_are_removed(tmp_path, server, online, offline_cache):
    weights = shipped_weights("nonsaturating-ring8")
    server.routes["/ns.safetensors"] = (weights, len(weights))
    offline_cache.mkdir()
    dead = offline_cache / f".remote-ring8.safetensors.{dead_pid()}.tmp"
    dead.write_bytes(b"half")
    with card_package(tmp_path, {"remote-ring8": url_card(server, "/ns.safetensors")}):
        ganzoo.load_pretrained("remote-ring8", quiet=True)
    assert not dead.exists()


def dead_pid() -> int:
    """A process id that no process has now."""
    import os

    pid = 4_000_000
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


@pytest.mark.parametrize("weights", ["../../etc/passwd", "/etc/passwd", "sub/generator.safetensors", ".."])
def test_card_weights_stay_inside_the_card_folder(tmp_path, weights):
    front = {**shipped_front("nonsaturating-ring8"), "weights": weights}
    with card_package(tmp_path, {"escape-ring8": (front, shipped_weights("nonsaturating-ring8"))}):
        with pytest.raises(BrokenPlugin, match="'weights': .*a file name in the card's folder"):
            ganzoo.load_pretrained("escape-ring8")


def test_invalid_yaml_front_matter_is_one_row_of_zoo_list(tmp_path, capsys):
    package = tmp_path / "zoo_test_bad_yaml"
    (package / "bad-ring8").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "bad-ring8" / "README.md").write_text("---\nlicense: [mit\nweights: x\n---\n# bad\n")
    with temporary_distribution(tmp_path, "zoo-bad", {"ganzoo.zoo": {"cards": "zoo_test_bad_yaml"}}):
        assert main(["zoo", "list", "bad-*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("bad-ring8") and "invalid YAML front matter" in out[1]


def test_a_third_party_generator_named_mlp_breaks_no_bundled_model(tmp_path):
    source = "import ganzoo\nclass Other(ganzoo.Generator):\n    '''Someone else's mlp.'''\n"
    with temporary_distribution(tmp_path, "other-nets", {"ganzoo.generators": {"mlp": "other_nets:Other"}},
                                modules={"other_nets": source}):  # fmt: skip
        with pytest.raises(AmbiguousPlugin):
            ganzoo.create_generator("mlp", sample_shape=(2,))
        for name in SHIPPED:  # their files name ganzoo/mlp or ganzoo/dcgan
            assert ganzoo.load_pretrained(name).sample(2).isfinite().all()


# --- exporting a run as a card --------------------------------------------------------------


def test_zoo_export_writes_a_card_that_loads_and_retrains_to_the_same_weights(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]
    assert main(["train", "--loss", "nonsaturating", *tiny, "--steps", "20", "--quiet", "--out", "run"]) == 0
    package = tmp_path / "site" / "zoo_exported_cards"
    assert main(["zoo", "export", "run", str(package / "tiny-ring8")]) == 0
    folder = package / "tiny-ring8"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "generator.safetensors", "sample.png"]
    said = capsys.readouterr().out
    assert f"ganzoo evaluate {folder}" in said and "huggingface-cli upload" in said and "ganzoo.zoo" in said
    # usable by its path before it is published: show, evaluate, sample, load
    assert main(["zoo", "show", str(folder)]) == 0 and "# tiny-ring8" in capsys.readouterr().out
    assert main(["evaluate", str(folder), "--json"]) == 0
    measured, recorded = json.loads(capsys.readouterr().out)["metrics"], zoo.model_card(str(folder)).metrics
    assert measured.keys() == recorded.keys() and measured["w1"] == pytest.approx(recorded["w1"])
    assert main(["sample", str(folder), "--out", str(tmp_path / "s.png")]) == 0
    assert ganzoo.load_pretrained(str(folder)).sample(2).isfinite().all()
    (package / "__init__.py").write_text("")
    with temporary_distribution(tmp_path / "site", "zoo-exported", {"ganzoo.zoo": {"cards": "zoo_exported_cards"}}):
        card = zoo.model_card("tiny-ring8")
        generator = ganzoo.load_pretrained("tiny-ring8")  # sha256 checked
        assert evaluate(generator, card.dataset, seed=0) == pytest.approx(card.metrics)
        assert card.training["command"] == "ganzoo train --config config.json --out runs/tiny-ring8"
    monkeypatch.chdir(folder)  # the card's command, run as written, trains the same weights
    assert main([*card.training["command"].split()[1:], "--quiet"]) == 0
    retrained = load_file(folder / "runs" / "tiny-ring8" / "generator.safetensors")
    shipped = load_file(folder / "generator.safetensors")
    assert retrained.keys() == shipped.keys() and all(torch.equal(retrained[k], shipped[k]) for k in shipped)


def test_zoo_export_refuses_an_unfinished_run_and_a_used_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["zoo", "export", str(tmp_path / "empty"), str(tmp_path / "card")]) == 2
    assert "holds no finished run" in capsys.readouterr().err


def test_zoo_export_refuses_a_run_resumed_for_longer_and_stopped(tmp_path, monkeypatch, capsys):
    """Resumed with more steps and interrupted, a run's generator.safetensors is the old one: a card
    made from it would claim the new step count for the old weights."""
    tiny = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]
    run = tmp_path / "run"
    assert main(["train", "--loss", "nonsaturating", *tiny, "--steps", "20", "--quiet", "--out", str(run)]) == 0
    monkeypatch.setattr(ganzoo.loop._StopFlag, "raised", True, raising=False)  # as if Ctrl-C came at once
    monkeypatch.setattr(ganzoo.loop._StopFlag, "__init__", lambda self, several: setattr(self, "several", several))
    assert main(["train", "--resume", str(run), "--steps", "100000", "--quiet"]) == 130
    capsys.readouterr()
    assert main(["zoo", "export", str(run), str(tmp_path / "card")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{run} is unfinished: its generator.safetensors was trained 20 steps" in err[0]
    assert not (tmp_path / "card").exists()


# --- weights on the Hugging Face Hub, served by a loopback stand-in through HF_ENDPOINT --------


class _Hub(BaseHTTPRequestHandler):
    """Answers GET /OWNER/REPO/resolve/REVISION/PATH from server.files (a body, or an HTTP status);
    records each request's path and Authorization header in server.requests."""

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Authorization")))
        body = self.server.files.get(self.path)
        if not isinstance(body, bytes):
            self.send_error(body or 404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hub(tmp_path, monkeypatch, online):
    pytest.importorskip("huggingface_hub")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hub)
    httpd.files, httpd.requests = {}, []
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_port}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # never the user's token or cache
    yield httpd
    httpd.shutdown()
    httpd.server_close()


HUB_PATH = "/owner/gans/resolve/v1/ring8/generator.safetensors"


def snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def hub_card(sha256: str | None = None, weights: str = "hf://owner/gans/ring8/generator.safetensors@v1") -> tuple[dict, None]:
    front = {**shipped_front("nonsaturating-ring8"), "weights": weights}
    return {**front, "sha256": sha256 or front["sha256"]}, None


def test_hub_weights_are_fetched_into_the_cache_and_checked(tmp_path, hub, monkeypatch, offline_cache):
    hub.files[HUB_PATH] = shipped_weights("nonsaturating-ring8")
    with card_package(tmp_path, {"hub-ring8": hub_card()}):
        assert not ganzoo.load_pretrained("hub-ring8", quiet=True).training
        [cached] = offline_cache.iterdir()  # ganzoo's own cache, by name and sha256
        assert cached.read_bytes() == hub.files[HUB_PATH]
        hub.files.clear()
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the cached file serves, no request made
        ganzoo.load_pretrained("hub-ring8", quiet=True)
    assert len(hub.requests) == 1


def test_hub_weights_with_another_sha256_are_refused(tmp_path, hub, offline_cache):
    hub.files[HUB_PATH] = shipped_weights("nonsaturating-ring8")
    with card_package(tmp_path, {"hub-ring8": hub_card(sha256="0" * 64)}):
        with pytest.raises(zoo.DownloadError, match="expects 0000.*nothing was kept"):
            ganzoo.load_pretrained("hub-ring8", quiet=True)
    assert not offline_cache.exists() or not list(offline_cache.iterdir())


@pytest.mark.parametrize("variable", ["HF_HUB_OFFLINE", "GANZOO_OFFLINE"])
def test_hub_offline_without_a_cached_file_is_one_line(tmp_path, hub, monkeypatch, capsys, variable):
    monkeypatch.setenv(variable, "1")
    with card_package(tmp_path, {"hub-ring8": hub_card()}):
        assert main(["sample", "hub-ring8", "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "GANZOO_OFFLINE or HF_HUB_OFFLINE forbids downloads" in err[0]
    assert not hub.requests


@pytest.mark.parametrize(
    "weights",
    [
        "hf://owner/gans/ring8/generator.safetensors@../../../../victim",
        "hf://owner/gans/ring8/generator.safetensors@refs/../../x",
        "hf://owner/gans/../../generator.safetensors@v1",
        "hf://owner/gans/ring8/.hidden@v1",
        "hf://own..er/gans/ring8/generator.safetensors@v1",
        "hf://owner/ga--ns/ring8/generator.safetensors@v1",
        "hf://owner/gans/ring8/gen erator.safetensors@v1",
        "hf://owner/gans/ring8/generator.safetensors@v1.lock",
    ],
)
def test_every_part_of_a_hub_reference_is_checked_before_any_request(tmp_path, hub, capsys, weights):
    """A revision with '..' once reached huggingface_hub, which wrote its refs file outside its cache."""
    hub.files[HUB_PATH] = shipped_weights("nonsaturating-ring8")
    (tmp_path / "victim").write_text("kept")
    before = snapshot(tmp_path)
    with card_package(tmp_path / "site", {"hub-ring8": hub_card(weights=weights)}):
        assert main(["sample", "hub-ring8", "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "card 'hub-ring8'" in err[0], err
    assert not hub.requests
    assert {p: d for p, d in snapshot(tmp_path).items() if "site" not in p.relative_to(tmp_path).parts} == before


def test_a_hub_error_is_one_line_without_retries(tmp_path, hub, capsys):
    hub.files[HUB_PATH] = 500
    with card_package(tmp_path, {"hub-ring8": hub_card()}):
        assert main(["sample", "hub-ring8", "--out", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("failed: HTTP 500 Internal Server Error"), err
    assert len(hub.requests) == 1


def test_a_hub_token_is_never_sent_over_plain_http(tmp_path, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    hub.files[HUB_PATH] = shipped_weights("nonsaturating-ring8")
    with card_package(tmp_path, {"hub-ring8": hub_card()}):
        ganzoo.load_pretrained("hub-ring8", quiet=True)
    assert hub.requests == [(HUB_PATH, None)]


def test_a_plain_http_endpoint_elsewhere_is_refused(tmp_path, hub, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "http://hub.example.invalid")
    with card_package(tmp_path, {"hub-ring8": hub_card()}):
        assert main(["sample", "hub-ring8", "--out", str(tmp_path / "x.png")]) == 1
    assert capsys.readouterr().err.strip() == (
        "ganzoo: error: HF_ENDPOINT=http://hub.example.invalid must be https:// (http:// only for 127.0.0.1 or localhost)"
    )


def test_a_trickling_hub_fails_by_the_rate_rule(tmp_path, hostile, online, monkeypatch, offline_cache):
    pytest.importorskip("huggingface_hub")
    monkeypatch.setattr(zoo, "DOWNLOAD_STALL_S", 0.6)  # the trickle sends ~3 bytes/s
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{hostile.server_port}")
    hostile.rewrite = "/trickle"
    with card_package(tmp_path, {"hub-ring8": hub_card()}):
        with pytest.raises(zoo.DownloadError, match=r"slower than 1024 bytes/s for 0.6 s"):
            ganzoo.load_pretrained("hub-ring8", quiet=True)
    assert not offline_cache.exists() or not list(offline_cache.iterdir())
