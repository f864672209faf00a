"""Check, as a user would, that the installed example plugin registers and trains by name.

Run after `pip install ./examples/recap-extractor-example` (the nox session `example_plugin` does this):
1. `recap plugins --json` must list extractor "filtered-bc" from distribution recap-extractor-example.
2. A config file naming it trains a small MLP flow policy through `recap train-policy` on a tiny store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

import torch
from tensordict import TensorDict

from recap.data import EpisodeStore, keys
from recap.data.spec import RobotSpec


def recap(*args: str) -> str:
    return subprocess.run(["recap", *args], check=True, capture_output=True, text=True).stdout


def main() -> int:
    listed = json.loads(recap("plugins", "--json"))
    entry = next(e for e in listed["entries"] if e["kind"] == "extractor" and e["name"] == "filtered-bc")
    expected = version("recap-extractor-example")
    assert entry["distribution"] == "recap-extractor-example" and entry["version"] == expected, entry
    print(f"registered: extractor filtered-bc from {entry['distribution']} {entry['version']}")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = EpisodeStore.create(
            tmp / "store", RobotSpec(cameras=(), state_dim=3, action_dim=2, joint_names=())
        )
        g = torch.Generator().manual_seed(0)
        labels = {}
        for i in range(4):
            steps = TensorDict(
                {
                    keys.STATE: torch.randn(16, 3, generator=g),
                    keys.ACTION: torch.randn(16, 2, generator=g),
                    keys.IS_INTERVENTION: torch.zeros(16, dtype=torch.bool),
                },
                batch_size=[16],
            )
            meta = store.add(steps, task="reach", source="autonomous", success=i % 2 == 0)
            ind = torch.arange(16) % 2 == i % 2
            labels[meta.episode_id] = {keys.ADVANTAGE: ind.float() - 0.5, keys.INDICATOR: ind}
        store.write_labels("hand-made", labels, {"note": "synthetic labels for the check"})
        (tmp / "run.toml").write_text(
            f'store = "{tmp / "store"}"\nout = "{tmp / "run"}"\nbatch_size = 16\nchunk_size = 4\n'
            'label_set = "hand-made"\n'
            '[policy]\nname = "mlp-flow"\nhidden = 32\ndepth = 1\nchunk_size = 4\n'
            '[extractor]\nname = "filtered-bc"\n'
            "[trainer]\nsteps = 20\nwarmup_steps = 2\ncheckpoint_every = 10\nlog_every = 5\nprogress = false\n"
        )
        print(recap("train-policy", "--config", str(tmp / "run.toml")).strip())
        lines = (tmp / "run" / "train" / "metrics.jsonl").read_text().splitlines()
        first, last = json.loads(lines[0]), json.loads(lines[-1])
        assert last["step"] == 20 and (tmp / "run" / "policy" / "model.safetensors").exists()
        print(
            f"trained filtered-bc by name: loss {first['loss']:.3f} (step {first['step']}) -> {last['loss']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
