"""What a newcomer meets following the README and the docs on a fresh clone: `git status` stays
clean after the tour, the exported card's load line works as written, `ganzoo show NAME`,
DiffAugment's own policy spelling, sampling a checkpoint, and readable pictures."""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import ganzoo
from docs_pages import PAGES, ROOT, blocks, commands
from ganzoo.checkpoint import load_checkpoint_generator
from ganzoo.cli import cli, main


def default_out(command: str) -> str | None:
    """What a ganzoo command writes when it is given no --out (the click default), or None."""
    option = next((p for p in cli.commands[command].params if p.name == "out"), None)
    return option.default if option is not None and isinstance(option.default, str) else None


def written_by_command(argv: list[str]) -> list[str]:
    """The relative paths one documented command writes in the folder it runs in."""
    written = [value for flag, value in zip(argv, argv[1:]) if flag in ("--out", "--dir")]
    # a dataset's download folder, e.g. cifar10:root=data
    written += [option.split("=", 1)[1] for arg in argv for option in arg.partition(":")[2].split(",") if option.startswith("root=")]
    words = [a for a in argv if not a.startswith("-")]
    if argv[0] == "mkdocs" and "build" in argv:
        written.append("site")  # mkdocs' default site_dir; mkdocs.yml sets no other
    if argv[0] != "ganzoo" or len(words) < 2:
        return written
    command = words[1]
    if command == "train" and "--out" not in argv and "--resume" not in argv:
        written.append("runs/LOSS-DATA-TIME")
    elif command in ("sample", "interpolate", "plot") and "--out" not in argv:
        written.append(default_out(command))
    elif words[1:3] == ["zoo", "export"]:
        written.append(words[4])
    elif words[1:3] == ["study", "create"]:
        written.append(words[3])
    elif words[1:3] == ["plugin", "new"] and "--dir" not in argv:
        written.append(f"ganzoo-{words[3]}")
    return written


def written_by_python(body: str) -> list[str]:
    """The relative paths a documented Python block writes: its `"out"` settings and `Path("...")` roots."""
    written = []
    for node in ast.walk(ast.parse(body)):
        if isinstance(node, ast.Dict):
            written += [v.value for k, v in zip(node.keys, node.values)
                        if isinstance(k, ast.Constant) and k.value == "out" and isinstance(v, ast.Constant)]  # fmt: skip
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Path" and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                written.append(node.args[0].value)
    return written


def written_by_the_docs() -> set[str]:
    found = set()
    for page in PAGES:
        text = page.read_text()
        if "mkdocs build" in text:
            found.add("site")
        for block in blocks(page):
            if block.language == "bash":
                for argv, _ in commands(block.body):
                    found.update(written_by_command(argv))
            elif block.language == "python":
                found.update(written_by_python(block.body))
    return {path for path in found if not path.startswith("/")}  # an absolute path is the user's own place


@pytest.fixture(scope="module")
def git():
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git clone: .gitignore does not apply")
    return lambda *args: subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_what_the_docs_commands_write_is_ignored_by_git(git):
    written = written_by_the_docs()
    # the parse finds the tour's outputs, so an empty or broken parse cannot pass quietly
    assert {"runs/grid25", "grid25.png", "curves.png", "paths.png", "sngan.png", "my-cards/grid25", "site"} <= written
    # a name with a suffix is a file; any other a folder, which git matches by what lies in it
    probes = {path: path if PurePosixPath(path).suffix else f"{path}/file" for path in written}
    kept = [path for path in sorted(written) if git("check-ignore", "-q", "--no-index", probes[path]).returncode != 0]
    assert not kept, f"the docs' commands write these, and git would show them: {kept}; add them to .gitignore"


def test_gitignore_ignores_no_tracked_file(git):
    listed = git("ls-files", "--cached", "--ignored", "--exclude-standard")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == "", f"tracked files that .gitignore matches: {listed.stdout.split()[:10]}"
    for picture in ("docs/images/wgan-ring8.png", "docs/images/grid25.png", "model_cards/x/sample.png"):
        assert git("check-ignore", "-q", "--no-index", picture).returncode == 1, picture


# --- an exported card's README -------------------------------------------------------------------


TINY = ["--generator", "mlp:width=16,depth=1", "--critic", "mlp:width=16,depth=1", "--batch-size", "16"]


def python_blocks(markdown: str) -> list[str]:
    return [block.group(1) for block in re.finditer(r"^```python\n(.*?)^```", markdown, re.S | re.M)]


def test_an_exported_cards_load_line_runs_as_written_where_it_was_exported(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--loss", "nonsaturating", *TINY, "--steps", "4", "--quiet", "--out", "runs/tiny"]) == 0
    assert main(["zoo", "export", "runs/tiny", "my-cards/tiny-ring8"]) == 0  # as the README's tour does
    text = (tmp_path / "my-cards" / "tiny-ring8" / "README.md").read_text()
    (code,) = python_blocks(text)
    namespace: dict = {}
    exec(compile(code, "the card's README", "exec"), namespace)  # not published: no zoo knows the name
    assert tuple(namespace["samples"].shape) == (64, 2) and namespace["samples"].isfinite().all()
    assert 'ganzoo.load_pretrained("tiny-ring8")' in text  # and how it loads once published
    with pytest.raises(ganzoo.PluginNotFound):
        ganzoo.load_pretrained("tiny-ring8")


def test_an_exported_cards_load_line_quotes_an_odd_folder_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--loss", "nonsaturating", *TINY, "--steps", "2", "--quiet", "--out", "run"]) == 0
    folder = tmp_path / 'cards "a"' / "b's card"
    assert main(["zoo", "export", "run", str(folder)]) == 0
    (code,) = python_blocks((folder / "README.md").read_text())
    monkeypatch.chdir("/")
    namespace: dict = {}
    exec(compile(code, "the card's README", "exec"), namespace)
    assert tuple(namespace["samples"].shape) == (64, 2)


# --- ganzoo show [KIND] NAME ---------------------------------------------------------------------


def one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_show_finds_the_kind_of_a_name_that_only_one_kind_has(capsys):
    assert main(["show", "diffaugment"]) == 0
    assert capsys.readouterr().out.startswith("augment diffaugment: ")
    assert main(["show", "ganzoo/wgan"]) == 0  # DIST/NAME too
    assert capsys.readouterr().out.startswith("loss wgan: ")
    assert main(["show", "augment", "diffaugment"]) == 0  # the kind, where given, as before
    assert capsys.readouterr().out.startswith("augment diffaugment: ")


def test_show_of_a_name_several_kinds_have_lists_the_kinds_in_one_line(capsys):
    assert main(["show", "dcgan"]) == 2
    assert "'dcgan' is a plugin of several kinds (generator, critic); say which" in one_error(capsys)


@pytest.mark.parametrize(
    ("words", "needle"),
    [(["wgna"], "no plugin of any kind is named 'wgna' (did you mean 'wgan'?)"),
     (["loss"], "'loss' is a kind; name one of its plugins too: ganzoo show loss NAME"),
     (["loss", "wgan", "clip"], "show takes [KIND] NAME, got 3 words")],
)  # fmt: skip
def test_show_with_no_such_name_or_too_many_words_is_one_line(capsys, words, needle):
    assert main(["show", *words]) == 2
    assert needle in one_error(capsys)


def test_show_help_lists_every_kind(capsys):
    from ganzoo.registry import GROUPS

    assert main(["show", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "[KIND] NAME" in help_text
    assert all(kind in help_text for kind in GROUPS), [k for k in GROUPS if k not in help_text]


# --- DiffAugment's own spelling of its policy ----------------------------------------------------


def test_diffaugments_comma_policy_is_answered_with_the_plus_form_which_trains(tmp_path, capsys):
    tiny = ["--loss", "hinge", "--data", "digits", "--generator", "dcgan:width=8", "--critic", "dcgan:width=8",
            "--steps", "2", "--quiet"]  # fmt: skip
    spelled = "diffaugment:policy=color,translation,cutout,cutout=0.25"  # the paper's repository's way
    assert main(["train", *tiny, "--augment", spelled, "--out", str(tmp_path / "comma")]) == 2
    err = one_error(capsys)
    assert "option 'translation'" in err and "joins them by +, as in policy=color+translation+cutout" in err
    assert not (tmp_path / "comma").exists()
    fixed = err.split("as in ")[1].split()[0]  # the answer, pasted back
    assert main(["train", *tiny, "--augment", f"diffaugment:{fixed},cutout=0.25", "--out", str(tmp_path / "plus")]) == 0
    config = json.loads((tmp_path / "plus" / "config.json").read_text())
    assert config["augment"]["options"]["policy"] == "color+translation+cutout" and config["augment"]["options"]["cutout"] == 0.25


# --- sampling and scoring a checkpoint -----------------------------------------------------------


def trained(run: Path, *flags: str, steps: int = 6) -> Path:
    args = ["train", "--loss", "nonsaturating", *TINY, "--steps", str(steps), "--checkpoint-every", "3", "--quiet", "--out", str(run)]
    assert main([*args, *flags]) == 0
    return run


def test_sample_and_evaluate_take_a_checkpoint_and_draw_from_its_ema_generator(tmp_path, capsys):
    run = trained(tmp_path / "run", "--ema", "0.9")
    capsys.readouterr()
    last, middle = run / "checkpoints" / "step-0000006.safetensors", run / "checkpoints" / "step-0000003.safetensors"
    # the last checkpoint's EMA generator is the one the run exported
    from_checkpoint, which = load_checkpoint_generator(last)
    exported = ganzoo.load_generator(run / "generator.safetensors")
    z = torch.randn(5, exported.latent_dim)
    assert torch.equal(from_checkpoint(z), exported(z)) and not from_checkpoint.training
    assert which == f"the EMA generator of {last}, step 6"
    # an earlier one holds other weights: the run as it was then
    assert not torch.equal(load_checkpoint_generator(middle)[0](z), exported(z))
    assert main(["sample", str(middle), "--n", "100", "--out", str(tmp_path / "middle.png")]) == 0
    assert capsys.readouterr().out.splitlines() == [f"drew from the EMA generator of {middle}, step 3", f"wrote {tmp_path / 'middle.png'}"]
    assert Image.open(tmp_path / "middle.png").size[0] > 100
    assert main(["evaluate", str(last), "--json"]) == 0
    said = capsys.readouterr()
    measured, expected = json.loads(said.out)["metrics"], ganzoo.evaluate(exported, "ring8", seed=0)
    assert measured["w1"] == pytest.approx(expected["w1"]) and measured["modes"] == expected["modes"]
    assert said.err.strip() == f"drew from the EMA generator of {last}, step 6"  # stdout stays JSON


def test_a_checkpoint_of_a_run_without_ema_gives_its_generator_and_says_so(tmp_path, capsys):
    run = trained(tmp_path / "run")
    last = run / "checkpoints" / "step-0000006.safetensors"
    generator, which = load_checkpoint_generator(last)
    saved = load_file(last)
    assert all(torch.equal(v, saved[f"generator.{k}"]) for k, v in generator.state_dict().items())
    assert which == f"the generator (the run kept no EMA) of {last}, step 6"
    capsys.readouterr()
    assert main(["evaluate", str(last)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"drew from {which}" and out[1].startswith(f"{last} on ring8")


def test_a_conditional_checkpoint_samples_its_classes(tmp_path, capsys):
    args = ["train", "--loss", "nonsaturating", "--data", "digits", "--generator", "dcgan:width=8", "--critic",
            "dcgan:width=8", "--conditional", "--steps", "2", "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    checkpoint = tmp_path / "run" / "checkpoints" / "step-0000002.safetensors"
    assert main(["sample", str(checkpoint), "--classes", "0,3,7", "--out", str(tmp_path / "three.png")]) == 0
    assert load_checkpoint_generator(checkpoint)[0].classes == 10


def test_a_checkpoint_whose_data_reads_files_needs_that_data_given(tmp_path, monkeypatch, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        Image.fromarray(np.full((8, 8), 60 * i, dtype=np.uint8)).save(images / f"{i}.png")
    data = f"folder:path={images},size=8,channels=1"
    args = ["train", "--loss", "nonsaturating", "--data", data, "--generator", "dcgan:width=4", "--critic", "dcgan:width=4",
            "--batch-size", "4", "--steps", "2", "--quiet", "--out", str(tmp_path / "run")]  # fmt: skip
    assert main(args) == 0
    checkpoint = str(tmp_path / "run" / "checkpoints" / "step-0000002.safetensors")
    capsys.readouterr()
    assert main(["sample", checkpoint, "--out", str(tmp_path / "s.png")]) == 2
    assert "which reads files, and a file does not choose what ganzoo reads: give that data with --data" in one_error(capsys)
    assert main(["sample", checkpoint, "--data", data, "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").is_file()


def test_a_damaged_checkpoint_is_one_line(tmp_path, capsys):
    run = trained(tmp_path / "run", steps=3)
    checkpoint = run / "checkpoints" / "step-0000003.safetensors"
    tensors, metadata = load_file(checkpoint), safe_metadata(checkpoint)
    save_file({k: v for k, v in tensors.items() if not k.startswith("generator.")}, str(checkpoint), metadata=metadata)
    capsys.readouterr()
    assert main(["sample", str(checkpoint)]) == 2
    assert "does not fit the generator: missing" in one_error(capsys)


def safe_metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()


# --- readable pictures ---------------------------------------------------------------------------


def test_a_long_caption_wraps_inside_the_picture_at_a_readable_size():
    from PIL import ImageFont

    from ganzoo.pictures import captioned, image_grid

    grid = image_grid(torch.zeros(64, 1, 8, 8))
    caption = ("hinge + spectral-norm:power_iterations=1 on fashion-mnist, dcgan:latent_dim=100,width=64 / "
               "dcgan:width=64,norm=none, step 1,000, EMA generator")  # fmt: skip
    framed = captioned(grid, caption)
    font = ImageFont.load_default(size=13)  # 13 px: what a reader reads without a magnifier
    one_line = font.getlength(caption)
    assert one_line > grid.width  # in one line it would be cut at the right edge
    lines = math.ceil(one_line / (grid.width - 8))
    assert framed.width == grid.width and framed.height - grid.height >= lines * 17
    # every caption pixel lies inside the picture: the rightmost dark pixel of the strip is left of the edge
    strip = np.asarray(framed)[: framed.height - grid.height]
    assert strip.min() == 0 and np.nonzero((strip < 128).any(axis=0))[0].max() < framed.width - 2


def test_curve_panels_titles_and_legends_do_not_run_into_each_other(tmp_path, monkeypatch):
    import ganzoo.pictures as pictures

    drawn = []
    monkeypatch.setattr(pictures, "save_figure", lambda fig, path: drawn.append(fig) or path)
    record = lambda step, name: {"step": step, "critic_loss": 1.0 / step, "generator_loss": 0.5, "grad_norm_critic": 1.0}  # noqa: E731
    runs = {name: [record(s, name) for s in (2, 4, 6)] for name in
            ("wgan-clip-ring8-20261201-101300", "minimax-ring8-20261201-101200", "nonsaturating-grid25-long-name", "hinge-sn-x")}  # fmt: skip
    pictures.save_curves(tmp_path / "curves.png", runs)
    (fig,) = drawn
    fig.tight_layout()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title().startswith("losses")]
    assert len(panels) == 4
    boxes = [(ax.title.get_window_extent(renderer), ax.get_legend().get_window_extent(renderer)) for ax in panels]
    for (title_a, legend_a), (title_b, legend_b) in zip(boxes, boxes[1:]):
        assert not title_a.overlaps(title_b) and not legend_a.overlaps(legend_b)
    width = fig.get_size_inches()[0] * fig.dpi
    assert all(0 <= title.x0 and title.x1 <= width for title, _ in boxes)
    import matplotlib.pyplot as plt

    plt.close(fig)
