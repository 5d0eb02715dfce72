"""The pictures of the README and the getting-started page, each made by the commands shown above it.

    python scripts/readme_pictures.py            # runs the commands, writes docs/images/*.png
    python scripts/readme_pictures.py --only docs/images/sngan-fashion.png

Each picture is listed with its page, the exact commands the page shows above it and the file
those commands write; the script runs them as a user would (`ganzoo` in a fresh scratch folder,
one command after another) and copies the file into docs/images/. The test suite checks that the
page shows each listed command above the picture, so a picture cannot drift from its commands.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: picture in the repository -> (the page that shows it, the page's commands in order, the file they write)
PICTURES = {
    "docs/images/wgan-ring8.png": (
        "README.md",
        ["ganzoo train --loss wgan --constraint clip --out runs/wgan-ring8"],
        "runs/wgan-ring8/samples/step-0002000.png",
    ),
    "docs/images/curves-minimax-vs-wgan.png": (
        "docs/getting-started.md",
        [
            "ganzoo train --loss wgan --constraint clip --out runs/first",
            "ganzoo train --resume runs/first --steps 3000",
            "ganzoo train --loss minimax --out runs/minimax",
            "ganzoo plot runs/minimax runs/first --out compare.png",
        ],
        "compare.png",
    ),
    "docs/images/sngan-fashion.png": (
        "README.md",
        [
            "ganzoo train --loss hinge --constraint spectral-norm --data fashion-mnist --generator resnet:width=64 "
            "--critic resnet:width=64 --augment diffaugment --conditional --steps 300 --out runs/sngan",
            "ganzoo sample runs/sngan/generator.safetensors --out sngan.png",
        ],
        "sngan.png",
    ),
}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=PICTURES, help="make this picture alone")
    only = parser.parse_args().only
    done: set[str] = set()  # a command two pictures share runs once
    with tempfile.TemporaryDirectory() as scratch:
        for picture, (_, commands, made) in PICTURES.items():
            if only and picture != only:
                continue
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
