"""Run ``recap`` with the tiny in-test value estimator registered (a subprocess cannot see in-test plugins).

    python cli_runner.py [--kill-at K] recap-args...

``--kill-at K`` SIGKILLs the process while value training draws the batch of step K.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import tiny_value  # noqa: E402

import recap.train.value as value_training  # noqa: E402
from recap.cli.main import main  # noqa: E402
from recap.plugins import set_registry  # noqa: E402

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--kill-at"]:
        kill_at = int(args[1])
        args = args[2:]

        class KillingSampler(value_training.WindowSampler):
            def batch(self, step, rank=0, world_size=1):
                if step == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)
                return super().batch(step, rank, world_size)

        value_training.WindowSampler = KillingSampler
    set_registry(tiny_value.registry())
    sys.exit(main(args))
