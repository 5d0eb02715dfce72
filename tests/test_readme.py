"""The README's promises: CI runs its set-up commands, and the CLI it shows starts fast."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1).strip().splitlines()


def test_ci_runs_exactly_the_readme_commands():
    commands = setup_commands()
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert all(command in ci for command in commands)


def test_help_does_not_import_torch():
    probe = (
        "import sys; from ganzoo.cli import main; code = main(['--help']); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "train" in done.stdout and "list" in done.stdout


def readme_train_commands() -> list[list[str]]:
    """Every `ganzoo train` command in the README's bash blocks, continuation lines joined."""
    import shlex

    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.strip().startswith("ganzoo train ")]


def test_every_train_command_in_the_readme_parses():
    from ganzoo.cli import train

    commands = readme_train_commands()
    assert len(commands) >= 5
    for command in commands:
        train.make_context("train", command[2:])  # raises on an unknown flag or a bad value


def test_every_picture_is_made_by_the_commands_above_it():
    """scripts/readme_pictures.py makes each picture with commands its page shows above it."""
    import os
    import runpy
    import shlex

    pictures = runpy.run_path(str(ROOT / "scripts" / "readme_pictures.py"))["PICTURES"]
    for picture, (page, commands, _) in pictures.items():
        text = (ROOT / page).read_text()
        link = Path(os.path.relpath(ROOT / picture, (ROOT / page).parent)).as_posix()
        before = text[: text.index(f"]({link})")]
        shown = [shlex.join(shlex.split(line, comments=True))
                 for block in re.findall(r"```bash\n(.*?)```", before, re.S) for line in block.replace("\\\n", " ").splitlines()]  # fmt: skip
        assert all(command in shown for command in commands), (picture, commands)


def test_the_plugin_table_is_the_registrys():
    """The README's table of built-in plugins is what scripts/readme_blocks.py writes now."""
    from readme_blocks import plugin_table

    table = plugin_table()
    readme = (ROOT / "README.md").read_text()
    assert f"<!-- plugins:start -->\n{table}\n<!-- plugins:end -->" in readme
