"""The docs' promises: every command block and Python block of the README and of every page of the
docs site runs as written, in order, in a fresh folder (`ganzoo train` with a few steps: the smoke
mode the docs announce), its links lead somewhere, and the plugin guide covers every kind.

A block is left out only where the page marks it `<!-- docs-test: skip REASON -->` just above it
(an install, a download, a second machine). A command followed by a comment `# ganzoo: error: ...`
must fail with that line and exit 2."""

from __future__ import annotations

import inspect
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from docs_pages import PAGES, ROOT, TIMES, blocks, commands, duration, lines, relative, restate, with_times
from ganzoo.cli import main
from ganzoo.registry import GROUPS, ZOO_GROUP

GUIDE = ROOT / "docs" / "plugins.md"
# [text](target) and ![alt](target); the target ends at whitespace (a title may follow) or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)")
#: the generator steps a documented `ganzoo train` runs in the tests (resumed runs: a few more)
SMOKE_STEPS, SMOKE_RESUMED = 3, 6


def smoke(argv: list[str]) -> list[str]:
    """A `ganzoo train` command with a few steps: what its page calls long runs in seconds."""
    if not any(a == "ganzoo" and b == "train" for a, b in zip(argv, argv[1:])):
        return argv
    steps = SMOKE_RESUMED if "--resume" in argv else SMOKE_STEPS
    if "--steps" in argv:
        argv = list(argv)
        argv[argv.index("--steps") + 1] = str(steps)
        return argv
    return [*argv, "--steps", str(steps)]


def run(argv: list[str], expected_error: str | None, capsys) -> None:
    argv = smoke(argv)
    if argv[0] == "ganzoo":
        code = main(argv[1:])
        err = capsys.readouterr().err
    elif argv[0] in ("torchrun", "python"):
        program = [sys.executable, "-m", "torch.distributed.run"] if argv[0] == "torchrun" else [sys.executable]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        done = subprocess.run([*program, *argv[1:]], capture_output=True, text=True, env=env, timeout=600)
        code, err = done.returncode, done.stderr
    else:
        pytest.fail(f"a documented command the tests cannot run: {shlex.join(argv)} (mark its block docs-test: skip)")
    if expected_error is None:
        assert code == 0, f"{shlex.join(argv)} exited {code}: {err[-2000:]}"
    else:
        assert code == 2 and expected_error in err, f"{shlex.join(argv)}: expected {expected_error!r}, got {err[-500:]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_of_the_page_runs_in_order(tmp_path, monkeypatch, capsys, page):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # what a block writes with tempfile lands here too
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    namespace: dict = {"__name__": page.stem.replace("-", "_")}
    ran = 0
    for number, block in enumerate(blocks(page), 1):
        if block.skip or block.language not in ("bash", "python"):
            continue
        if block.language == "python":
            try:
                exec(compile(block.body, f"{page.name}, block {number}", "exec"), namespace)
            except Exception as exc:
                first = block.body.strip().splitlines()[0]
                pytest.fail(f"{page.name}: python block {number} ({first!r}) failed: {type(exc).__name__}: {exc}")
        else:
            for argv, expected_error in commands(block.body):
                run(argv, expected_error, capsys)
        ran += 1
    # The guide's own tests (a reader pastes them into a test file): pytest would call them; so do we.
    for name, test in {n: f for n, f in namespace.items() if n.startswith("test_") and callable(f)}.items():
        fixtures = {"tmp_path": tmp_path / name}
        test(**{arg: fixtures[arg] for arg in inspect.signature(test).parameters})
    if not ran:
        pytest.skip(f"{page.name}: every block is marked docs-test: skip")


def test_skipped_blocks_say_why_and_are_few():
    skipped = [(page.name, block.skip) for page in PAGES for block in blocks(page) if block.skip]
    assert all(len(reason.split()) >= 3 for _, reason in skipped), skipped
    assert len(skipped) <= 12, skipped


def test_long_commands_state_the_time_measured_for_them():
    """Each command of the docs has a time measured at full length, and each long one states it."""
    record = json.loads(TIMES.read_text())["pages"]
    fix = "run `python scripts/readme_blocks.py times` (it times the pages whose commands changed)"
    for page in PAGES:
        measured = record.get(relative(page), {})
        untimed = [line.command for block in blocks(page) if block.language == "bash" and not block.skip
                   for line in lines(block.body) if line.command not in measured]  # fmt: skip
        assert not untimed, f"{relative(page)}: no time measured for {untimed}: {fix}"
        assert with_times(page.read_text(), measured) == page.read_text(), f"{relative(page)} states a time it did not measure: {fix}"


def test_a_comment_states_a_long_time_in_its_unit_and_a_short_one_not_at_all():
    assert [duration(s) for s in (9.9, 10.0, 33.0, 89.0, 90.0, 1000.0)] == [None, "~10 s", "~35 s", "~90 s", "~2 min", "~17 min"]
    assert restate("the ring, ~3 min on one CPU thread", "~35 s") == "the ring, ~35 s on one CPU thread"
    assert restate("the ring", "~4 min") == "the ring, ~4 min"
    assert restate("", "~4 min") == "~4 min"
    assert restate("the ring, ~3 min on one CPU thread", None) == "the ring"
    text = "```bash\nganzoo train --loss wgan \\\n  --steps 9  # the ring, ~1 min\nganzoo list\n```\n"
    assert with_times(text, {"ganzoo train --loss wgan --steps 9": 50.0, "ganzoo list": 12.0}) == (
        "```bash\nganzoo train --loss wgan \\\n  --steps 9  # the ring, ~50 s\nganzoo list  # ~10 s\n```\n")


def relative_links(markdown: Path) -> list[str]:
    prose = re.sub(r"`[^`\n]*`", "", re.sub(r"^```.*?^```", "", markdown.read_text(), flags=re.S | re.M))  # code is not a link
    targets = (target.split("#", 1)[0] for target in LINK.findall(prose))
    return [t for t in targets if t and not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # skip https:, mailto:


@pytest.mark.parametrize("markdown", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(markdown):
    missing = [target for target in relative_links(markdown) if not (markdown.parent / target).exists()]
    assert not missing, f"{markdown.name} links to missing files: {missing}"


def test_the_guide_covers_every_kind_and_group():
    text = GUIDE.read_text()
    missing = [word for kind, group in GROUPS.items() for word in (kind, group) if word not in text]
    assert ZOO_GROUP in text and not missing, f"the guide never mentions {missing or ZOO_GROUP}"


def test_the_docs_site_builds_strictly(tmp_path):
    """mkdocs build --strict: broken links, missing pages and unresolved references fail it."""
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]'")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "cli" / "index.html").is_file()
