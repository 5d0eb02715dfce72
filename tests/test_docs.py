"""The plugin guide's promises: its Python blocks run as written, its links lead somewhere, it covers every kind."""

import inspect
import re
import tempfile
from pathlib import Path

import pytest

from ganzoo.registry import GROUPS, ZOO_GROUP

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "plugins.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
# [text](target) and ![alt](target); the target ends at whitespace (a title may follow) or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)")


def python_blocks(text: str) -> list[str]:
    return [body for language, body in FENCE.findall(text) if language == "python"]


def relative_links(markdown: Path) -> list[str]:
    prose = re.sub(r"`[^`\n]*`", "", FENCE.sub("", markdown.read_text()))  # code is not a link
    targets = (target.split("#", 1)[0] for target in LINK.findall(prose))
    return [t for t in targets if t and not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # skip https:, mailto:


def test_the_guide_python_blocks_run_in_order(tmp_path, monkeypatch):
    # Whatever a block writes, in its cwd or with tempfile, lands in pytest's tmp_path.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    namespace: dict = {"__name__": "plugins_md"}
    blocks = python_blocks(GUIDE.read_text())
    assert blocks, "the guide has no python blocks"
    for number, source in enumerate(blocks, 1):
        try:
            exec(compile(source, f"{GUIDE.name}, python block {number}", "exec"), namespace)
        except Exception as exc:
            first_line = source.strip().splitlines()[0]
            pytest.fail(f"python block {number} ({first_line!r}) failed: {type(exc).__name__}: {exc}")
    # The guide's own tests (a reader pastes them into a test file): pytest would call them; so do we.
    tests = {name: f for name, f in namespace.items() if name.startswith("test_") and callable(f)}
    assert tests, "the guide shows no tests"
    for name, test in tests.items():
        fixtures = {"tmp_path": tmp_path / name}  # the one fixture the guide's tests use
        test(**{arg: fixtures[arg] for arg in inspect.signature(test).parameters})


@pytest.mark.parametrize("markdown", [GUIDE, ROOT / "README.md"], ids=lambda path: path.name)
def test_relative_links_point_to_existing_files(markdown):
    missing = [target for target in relative_links(markdown) if not (markdown.parent / target).exists()]
    assert not missing, f"{markdown.name} links to missing files: {missing}"


def test_the_guide_covers_every_kind_and_group():
    text = GUIDE.read_text()
    missing = [word for kind, group in GROUPS.items() for word in (kind, group) if word not in text]
    assert ZOO_GROUP in text and not missing, f"the guide never mentions {missing or ZOO_GROUP}"
