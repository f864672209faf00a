"""Fixtures: a small flow-policy checkpoint in the ALOHA layout, `recap serve` on a loopback port, the openpi
client's interpreter and a runner for its driver script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recap.builtins.mlp_flow import FlowMLPConfig, FlowMLPPolicy
from recap.data.spec import CameraSpec, RobotSpec
from recap.protocols import DeploymentSettings
from recap.train.checkpoint import save_policy

from .openpi_env import openpi_client_python

HERE = Path(__file__).parent
SPEC = RobotSpec(cameras=(CameraSpec("cam_high", 24, 32),), fps=50)
DEPLOYMENT = DeploymentSettings(indicator=True, guidance=1.5)
PROMPT = "transfer_cube"
API_KEY = "test-key-123"


def make_policy(seed: int = 0) -> FlowMLPPolicy:
    torch.manual_seed(seed)
    config = FlowMLPConfig(hidden=64, depth=2, chunk_size=10, num_steps=4, camera="cam_high", image_size=16)
    return FlowMLPPolicy(config, SPEC).eval()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("served") / "policy"
    policy = make_policy()
    return save_policy(directory, policy, policy.config, SPEC, None, DEPLOYMENT)


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> Path:
    """Eight ALOHA-layout observations (state, cam_high CHW uint8) and initial noises, as the driver reads them."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("inputs") / "inputs.npz"
    np.savez(
        path,
        state=rng.normal(size=(8, 14)).astype(np.float32),
        cam_high=rng.integers(0, 256, size=(8, 3, 24, 32), dtype=np.uint8),
        noise=rng.normal(size=(8, 10, 14)).astype(np.float32),
    )
    return path


class Served:
    """A `recap serve` subprocess; ``url`` once it listens."""

    def __init__(self, checkpoint: Path, *args: str, env: dict[str, str] | None = None):
        # one inference thread: spinning BLAS threads on a busy machine would only fight the clients
        command = [
            sys.executable,
            "-m",
            "recap.cli.main",
            "serve",
            str(checkpoint),
            "--port",
            "0",
            "--threads",
            "1",
        ]
        command += list(args)
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:  # blocks until the server prints its URL (or exits)
            self.lines.append(line)
            found = re.search(r"on (ws://\S+)", line)
            if found:
                self.url = found.group(1)
                return
        raise RuntimeError("recap serve exited before listening:\n" + "".join(self.lines))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def served(checkpoint):
    server = Served(checkpoint)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def openpi_python() -> Path:
    python, why = openpi_client_python()
    if python is None:
        pytest.skip(why)
    return python


@pytest.fixture
def drive(openpi_python, tmp_path):
    """Run the openpi-client driver: ``drive(command, url, **spec) -> (arrays, info)``."""

    def run(command: str, url: str, **spec):
        spec_path, out = tmp_path / f"{command}.json", tmp_path / f"{command}.npz"
        spec_path.write_text(json.dumps({"command": command, "url": url, "prompt": PROMPT, **spec}))
        done = subprocess.run(
            [str(openpi_python), str(HERE / "openpi_driver.py"), str(spec_path), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(np.load(out)), json.loads(Path(str(out) + ".json").read_text())

    return run
