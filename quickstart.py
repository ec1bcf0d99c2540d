"""Set up i2i and run the demo or the tests, on a machine with only Python >= 3.10 and git.

    python3 quickstart.py demo     # .venv with the requirements, then train + test the demo models
    python3 quickstart.py test     # .venv with the requirements, then the test suite (extra args go to pytest)

The virtual environment lives in .venv/ and is reused while requirements.txt is unchanged. pip is
upgraded to the newest release first; I2I_KEEP_PIP=1 keeps the pip that venv brings.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
STAMP = VENV / ".i2i-requirements"

DEMO_STEPS = [  # --overwrite_run: a second demo replaces the first one's runs
    ["train.py", "--model", "cycle_gan", "--overwrite_run"],
    ["test.py", "--model", "cycle_gan"],
    ["train.py", "--model", "pix2pix", "--overwrite_run"],
    ["test.py", "--model", "pix2pix"],
]


def run(cmd: list[str], **env: str) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **env})
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_venv() -> None:
    """Create .venv and install requirements.txt into it (skipped when already up to date)."""
    wanted = hashlib.sha256((ROOT / "requirements.txt").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = [str(PYTHON), "-m", "pip", "install"]
    if os.environ.get("I2I_KEEP_PIP") != "1":
        run([*pip, "--upgrade", "pip"])
    install_build_tools(pip)
    run([*pip, "-r", "requirements.txt"])
    STAMP.write_text(wanted + "\n")


def install_build_tools(pip: list[str]) -> None:
    """Put setuptools<81 into .venv and build Visdom's source package there, without build isolation.

    Visdom 0.2.4 ships only as an sdist whose setup.py imports pkg_resources, which setuptools 81 removed.
    An isolated build would fetch the newest setuptools, and whether a constraint reaches that isolated
    environment depends on the pip version (PIP_CONSTRAINT until pip 26, PIP_BUILD_CONSTRAINT since).
    Building in .venv itself with a pinned setuptools works the same with every pip.
    """
    run([*pip, "setuptools<81", "wheel"])
    # --no-cache-dir: a Visdom wheel cached by an earlier install would hide a build that fails today.
    run([*pip, "--no-build-isolation", "--no-cache-dir", "--no-deps", visdom_requirement()])


def visdom_requirement() -> str:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if line.strip().lower().startswith("visdom"):
            return line.strip()
    return "visdom"


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in ("demo", "test", "setup"):
        sys.exit(__doc__)
    ensure_venv()
    if argv[0] == "demo":
        for step in DEMO_STEPS:
            run([str(PYTHON), *step])
        print("\nDemo done. Open results/demo_cycle_gan/test_latest/index.html and "
              "results/demo_pix2pix/test_latest/index.html in a browser.")
    elif argv[0] == "test":
        run([str(PYTHON), "-m", "pytest", *argv[1:]])


if __name__ == "__main__":
    main(sys.argv[1:])
