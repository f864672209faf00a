"""The openpi-client virtualenv the interoperability tests drive the server from.

openpi-client pins numpy < 2, so it cannot share recap's environment: the first test session builds
``.nox/openpi-client`` (python -m venv, then pip install from PyPI; about half a minute) and later sessions
reuse it. ``RECAP_OPENPI_CLIENT_PYTHON`` points at an existing interpreter instead. Without PyPI access the
tests that need it are skipped, saying why.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".nox" / "openpi-client"
#: the client release the tests were written against, and typing_extensions it imports without declaring
REQUIREMENTS = ("openpi-client==0.1.2", "typing_extensions")
CHECK = "import openpi_client.websocket_client_policy, openpi_client.action_chunk_broker"


def _works(python: Path) -> bool:
    return python.exists() and subprocess.run([str(python), "-c", CHECK], capture_output=True).returncode == 0


def openpi_client_python() -> tuple[Path | None, str]:
    """(interpreter with openpi-client, "") or (None, why it could not be built)."""
    override = os.environ.get("RECAP_OPENPI_CLIENT_PYTHON")
    if override:
        python = Path(override)
        return (
            (python, "")
            if _works(python)
            else (None, f"RECAP_OPENPI_CLIENT_PYTHON={override} lacks openpi-client")
        )
    python = VENV / "bin" / "python"
    if _works(python):
        return python, ""
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return (
                None,
                f"could not build the openpi-client virtualenv ({' '.join(step[:3])}): {' | '.join(tail)}",
            )
    return (python, "") if _works(python) else (None, "openpi-client installed but does not import")
