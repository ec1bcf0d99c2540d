"""Set up i2i and run the demo or the tests, on a machine with only Python >= 3.10 and git.

    python3 quickstart.py demo     # .venv with the requirements, then train + test the demo models
    python3 quickstart.py test     # .venv with the requirements, then the test suite (extra args go to pytest)

The virtual environment lives in .venv/ and is reused while requirements.txt is unchanged.
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

DEMO_STEPS = [
    ["train.py", "--model", "cycle_gan"],
    ["test.py", "--model", "cycle_gan"],
    ["train.py", "--model", "pix2pix"],
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
    # visdom 0.2.4 builds with setuptools' pkg_resources, gone from setuptools >= 81; the constraint
    # reaches pip's isolated build environments through PIP_CONSTRAINT.
    constraints = str(ROOT / ".ci" / "constraints.txt")
    run([str(PYTHON), "-m", "pip", "install", "--upgrade", "pip"], PIP_CONSTRAINT=constraints)
    run([str(PYTHON), "-m", "pip", "install", "-r", "requirements.txt"], PIP_CONSTRAINT=constraints)
    STAMP.write_text(wanted + "\n")


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
