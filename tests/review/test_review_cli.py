"""`recap review` as a user starts it: prints its URL, serves the store, needs a token beyond loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from recap.cli.main import main
from recap.data.store import EpisodeStore


@contextmanager
def _review(*args: str, env: dict | None = None) -> Iterator[str]:
    """Run `recap review ...` in a subprocess; yield the URL it prints, stop it afterwards."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "recap.cli.main", "review", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            found = re.search(r"open (http://\S+)", line)
            if found:
                yield found.group(1)
                break
        else:
            raise AssertionError(f"recap review printed no URL: {''.join(lines)}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_review_serves_the_store_on_loopback(store: EpisodeStore) -> None:
    with _review(str(store.root), "--port", "0", "--reviewer", "ana") as url:
        assert url.startswith("http://127.0.0.1:")
        status, body = _get(url + "api/info" if url.endswith("/") else url + "/api/info")
        info = json.loads(body)
        assert status == 200 and info["reviewer"] == "ana" and info["label_set"] == "synthetic-values"


def test_review_beyond_loopback_prints_a_login_link_and_refuses_without_it(store: EpisodeStore) -> None:
    env = {"RECAP_REVIEW_TOKEN": "chosen-token"}
    with _review(str(store.root), "--host", "0.0.0.0", "--port", "0", env=env) as url:
        assert url.endswith("/login?token=chosen-token")
        port = re.search(r":(\d+)/", url).group(1)
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/api/episodes")[0] == 401
        assert _get(base + "/api/episodes", {"X-Recap-Token": "chosen-token"})[0] == 200


def test_review_refuses_a_missing_label_set(store: EpisodeStore, capsys: pytest.CaptureFixture) -> None:
    assert main(["review", str(store.root), "--labels", "nope"]) == 2
    assert "no label set 'nope'" in capsys.readouterr().err
