"""The pages of the docs and their command blocks: what the tests run (tests/test_docs.py) and what
`readme_blocks.py times` runs at full length to write each long command's time into its comment."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").rglob("*.md") if "model_cards" not in p.parts
                                      and p.parent.name != "experiments")]  # fmt: skip
FENCE = re.compile(r"^(?:<!-- docs-test: skip (?P<skip>[^>]+) -->\n\n?)?```(?P<language>\w*)\n(?P<body>.*?)^```", re.S | re.M)
#: the measured times of the docs' commands, written by `readme_blocks.py times`
TIMES = ROOT / "docs" / "command-times.json"
#: the line that activates the venv: the tests and the timings run in an active one already
ACTIVATE = [".", ".venv/bin/activate"]
#: a command that runs this long (or longer) says so in its comment
LONG_S = 10.0
#: the time a comment states, as `duration` writes it
TIME = re.compile(r"~\d+ (?:s|min)\b")


@dataclass(frozen=True)
class Block:
    language: str
    body: str
    skip: str | None  # why the tests leave it out, or None
    start: int  # where the body starts in the page's text


@dataclass(frozen=True)
class Line:
    """One command line of a bash block: its continuation lines joined, its trailing comment apart."""

    command: str  # as written, continuations joined and spaces collapsed: what runs, and the key of its time
    comment: str  # the trailing comment without "#", or ""
    last: tuple[int, int]  # where its last physical line (which holds the comment) lies in the block's body


def blocks(page: Path) -> list[Block]:
    """Each fenced block of the page, in order."""
    return [Block(m["language"], m["body"], m["skip"], m.start("body")) for m in FENCE.finditer(page.read_text())]


def lines(body: str) -> list[Line]:
    """The command lines of a bash block (comment-only lines are not commands)."""
    found, start, pending = [], 0, ""
    for physical in body.splitlines(keepends=True):
        text, start = physical.rstrip("\n"), start + len(physical)
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        code, _, comment = (pending + text).partition(" #")
        pending = ""
        if code.strip() and not code.lstrip().startswith("#") and shlex.split(code) != ACTIVATE:
            end = start - len(physical) + len(text)
            found.append(Line(" ".join(code.split()), comment.strip(), (end - len(text), end)))
    return found


def commands(body: str) -> list[tuple[list[str], str | None]]:
    """Each command of a bash block (`&&` chains split) and the error line it must print, when the
    next line is a `# ganzoo: error:` comment."""
    found: list[tuple[list[str], str | None]] = []
    for line in body.replace("\\\n", " ").splitlines():
        stripped = line.strip()
        if stripped.startswith("# ganzoo: error:") and found:
            found[-1] = (found[-1][0], stripped[2:].rsplit(" (exit", 1)[0])
            continue
        for part in stripped.split("&&"):
            argv = shlex.split(part, comments=True)
            if argv and argv[:2] != ACTIVATE:
                found.append((argv, None))
    return found


def duration(seconds: float) -> str | None:
    """The time a command's comment states (`~35 s`, `~4 min`), or None for a short command."""
    if seconds < LONG_S:
        return None
    return f"~{round(seconds / 5) * 5} s" if seconds < 90 else f"~{round(seconds / 60)} min"


def stated(comment: str) -> str | None:
    """The time a comment states, or None."""
    found = TIME.search(comment)
    return found[0] if found else None


def restate(comment: str, time: str | None) -> str:
    """The comment with `time` in place of the time it states (added where it states none; removed
    with its "on one CPU thread" where `time` is None)."""
    if time is None:
        return re.sub(r"^[\s,:]+|[\s,:]+$", "", re.sub(TIME.pattern + r"(?: on one CPU thread)?", "", comment))
    if stated(comment):
        return TIME.sub(time, comment, count=1)
    return f"{comment}, {time}" if comment else time


def with_times(text: str, measured: dict[str, float]) -> str:
    """The page's text with each timed command's comment stating its measured time."""
    edits = []
    for found in FENCE.finditer(text):
        if found["language"] != "bash" or found["skip"]:
            continue
        for line in lines(found["body"]):
            if line.command not in measured:
                continue
            comment = restate(line.comment, duration(measured[line.command]))
            if comment != line.comment:
                start, end = (found.start("body") + at for at in line.last)
                code = text[start:end].partition(" #")[0]
                mark = " # " if line.comment else "  # "  # an existing comment keeps its column
                edits.append((start, end, f"{code}{mark}{comment}" if comment else code.rstrip()))
    for start, end, new in reversed(edits):
        text = text[:start] + new + text[end:]
    return text


def relative(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()
