"""The peers' own virtualenv, `bench/.venv-peers`, made and filled by the harness with pip from
PyPI; reinstalled when `requirements-peers.txt` changes. Conveyor runs from the project's venv."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PEERS_VENV = BENCH / ".venv-peers"
REQUIREMENTS = BENCH / "requirements-peers.txt"


def peers_python() -> Path:
    """The peers venv's interpreter, installing first if the requirements changed."""
    python = PEERS_VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]
    stamp = PEERS_VENV / f".installed-{digest}"
    if stamp.exists() and python.exists():
        return python
    if not python.exists():
        print(f"bench: creating {PEERS_VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    print(f"bench: installing the peers from {REQUIREMENTS.name}", flush=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    done = subprocess.run([*pip, "-r", str(REQUIREMENTS)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: pip failed:\n{done.stdout}{done.stderr}")
    for old in PEERS_VENV.glob(".installed-*"):
        old.unlink()
    stamp.touch()
    return python
