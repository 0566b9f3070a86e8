"""Fixtures for the app tests: a free port, the folder for test artefacts (screenshots)."""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float = 90.0, proc=None) -> None:
    """Poll ``url`` until it answers 200 (or fail, with the server's output when it died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"{url} did not answer within {timeout:.0f} s")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where tests leave files for people to look at (``$DISTILLERY_TEST_ARTIFACTS``, default
    ``test-artifacts/`` in the repo, gitignored)."""
    folder = Path(os.environ.get("DISTILLERY_TEST_ARTIFACTS", ROOT / "test-artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
