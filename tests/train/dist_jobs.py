"""The jobs the 2-rank tests start under torchrun: several trainings in one process group (each torchrun start
costs seconds), each writing ``OUT/<name>/final.safetensors`` and ``OUT/<name>/losses.json``.

    torchrun --nproc-per-node 2 dist_jobs.py variants OUT   # with recap-pi06: pi06-tiny runs too
    torchrun --nproc-per-node 2 dist_jobs.py killed OUT     # SIGKILLed at step 23 (checkpoints at 10 and 20)
    torchrun --nproc-per-node 2 dist_jobs.py resume OUT     # resumes OUT/killed and OUT/from_one_rank
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import torch.distributed as dist

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import toy_training  # noqa: E402

#: name -> (steps, dropout, trainer settings)
VARIANTS = {
    "fsdp2": (12, 0.0, {"strategy": "fsdp2"}),
    "fsdp2_ac": (12, 0.0, {"strategy": "fsdp2", "activation_checkpointing": True}),
    "fsdp2_accum": (12, 0.0, {"strategy": "fsdp2", "grad_accumulation": 2}),
    "ddp": (12, 0.0, {"strategy": "ddp"}),
    "fsdp2_bf16_mixed": (30, 0.0, {"strategy": "fsdp2", "precision": "bf16-mixed"}),
    "fsdp2_bf16": (30, 0.0, {"strategy": "fsdp2", "precision": "bf16"}),
    "fsdp2_frozen": (12, 0.0, {"strategy": "fsdp2", "freeze": ("input",)}),
    "fsdp2_ema": (12, 0.0, {"strategy": "fsdp2", "ema": 0.9}),
    "uninterrupted": (25, 0.1, {"strategy": "fsdp2"}),
}
KILLED = (25, 0.1, {"strategy": "fsdp2"})


def _run(
    out: Path, name: str, steps: int, dropout: float, settings: dict, kill_at: int | None = None
) -> None:
    settings = dict(settings)
    ema = settings.pop("ema", None)
    toy_training.run(out / name, steps, kill_at, ema, dropout=dropout, **settings)
    if dist.get_rank() == 0:
        lines = (out / name / "metrics.jsonl").read_text().splitlines()
        (out / name / "losses.json").write_text(json.dumps([json.loads(x)["loss"] for x in lines]))


def _run_pi06(out: Path) -> None:
    import pi06_job
    from safetensors.torch import save_file

    for name in pi06_job.RUNS:
        weights = pi06_job.run(out, name)
        if weights is not None:
            save_file(weights, str(out / name / "final.safetensors"))


def main(job: str, out: Path) -> None:
    dist.init_process_group("gloo")  # one group for every run of the job; the trainer joins it
    try:
        if job == "variants":
            for name, (steps, dropout, settings) in VARIANTS.items():
                _run(out, name, steps, dropout, settings)
            if importlib.util.find_spec("recap_pi06") is not None:
                _run_pi06(out)
        elif job == "killed":
            _run(out, "killed", *KILLED, kill_at=23)
        elif job == "resume":
            _run(out, "killed", *KILLED)
            _run(out, "from_one_rank", 20, 0.0, {"strategy": "fsdp2"})
        else:
            raise SystemExit(f"unknown job {job!r}")
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
