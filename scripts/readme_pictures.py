"""The README's pictures of its first sections, each made by the commands shown beside it.

    python scripts/readme_pictures.py            # runs the commands, writes docs/images/*.png

Each picture is listed with the exact commands the README shows above it and the file those
commands write; the script runs them as a user would (`ganzoo` in a fresh scratch folder, one
command after another) and copies the file into docs/images/. The test suite checks that the
README shows each listed command, so a picture cannot drift from its command again.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: picture in the repository -> (the README's commands, in order; the file they write, a glob
#: pattern where the run folder carries the time)
PICTURES = {
    "docs/images/wgan-ring8.png": (
        ["ganzoo train --loss wgan --constraint clip"],
        "runs/wgan-ring8-*/samples/step-0002000.png",
    ),
    "docs/images/curves-minimax-vs-wgan.png": (
        [
            "ganzoo train --loss minimax --out runs/minimax-ring8",
            "ganzoo train --loss wgan --constraint clip --out runs/wgan-ring8",
            "ganzoo plot runs/minimax-ring8 runs/wgan-ring8 --out compare.png",
        ],
        "compare.png",
    ),
}


def main() -> None:
    done: set[str] = set()  # a command two pictures share runs once
    with tempfile.TemporaryDirectory() as scratch:
        for picture, (commands, made) in PICTURES.items():
            for command in commands:
                if command not in done:
                    print(f"$ {command}", flush=True)
                    subprocess.run([sys.executable, "-m", *shlex.split(command)], cwd=scratch, check=True)
                    done.add(command)
            (written,) = Path(scratch).glob(made)
            shutil.copyfile(written, ROOT / picture)
            print(f"wrote {picture}")


if __name__ == "__main__":
    main()
