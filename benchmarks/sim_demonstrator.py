"""Success and slowdown of the scripted demonstrator on the aloha-sim backend, flawless and flawed.

Runs ``--seeds`` episodes per setting (state only, no cameras) through ``recap.rollout.evaluate`` and prints,
per setting, the strict success rate, the failure rate, the mean time to success and its slowdown against the
flawless demonstrator measured in the same run, next to what the flaw configuration predicts.

    python benchmarks/sim_demonstrator.py --seeds 100
    python benchmarks/sim_demonstrator.py --seeds 100 --tasks insertion --settings flawless
    python benchmarks/sim_demonstrator.py --seeds 100 --expert        # the scripted expert's corrections

``--expert`` runs the settings of ``EXPERT_SETTINGS`` twice, without and with the ``scripted-expert``
teleoperator watching, and prints the success of each, the episodes it took over in and the mean duration.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig  # noqa: E402
from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig  # noqa: E402
from recap_bimanual.sim.expert import ScriptedExpert  # noqa: E402

from recap.rollout import evaluate  # noqa: E402

#: name -> (config, expected failure rate, expected slowdown of successes) — "expected" is what the setting is
#: configured to produce: the flaw probability for failure flaws, the time factor / pause time for slow ones.
SETTINGS: dict[str, tuple[ScriptedDemonstratorConfig, float, float]] = {
    "flawless": (ScriptedDemonstratorConfig(), 0.0, 0.0),
    "bad_grasp_0.3": (ScriptedDemonstratorConfig(bad_grasp_prob=0.3), 0.3, 0.0),
    "loose_grip_0.3": (ScriptedDemonstratorConfig(loose_grip_prob=0.3), 0.3, 0.0),
    "slowness_1.3": (ScriptedDemonstratorConfig(slowness=1.3), 0.0, 0.3),
    "hesitation_0.3x25": (ScriptedDemonstratorConfig(hesitation_prob=0.3, hesitation_steps=25), 0.0, None),
    "noise_0.003": (ScriptedDemonstratorConfig(action_noise=0.003), 0.0, 0.0),
}


#: the demonstrator flaws the scripted expert is measured against (its documented table)
EXPERT_SETTINGS: dict[str, ScriptedDemonstratorConfig] = {
    "none": ScriptedDemonstratorConfig(),
    "bad_grasp_0.3": ScriptedDemonstratorConfig(bad_grasp_prob=0.3),
    "loose_grip_0.3": ScriptedDemonstratorConfig(loose_grip_prob=0.3),
    "bad_grasp_0.3+loose_grip_0.3+hesitation_0.2": ScriptedDemonstratorConfig(
        bad_grasp_prob=0.3, loose_grip_prob=0.3, hesitation_prob=0.2
    ),
}


def expert_table(backend: AlohaSimBackend, task: str, seeds: int) -> None:
    """Per flaw setting: success without the expert, with it, the episodes it took over in, mean duration."""
    print(
        f"{'demonstrator flaws':<46} {'alone':>6} {'expert':>7} {'took over':>9} {'duration(s)':>11} {'wall(s)':>8}"
    )
    for name, config in EXPERT_SETTINGS.items():
        alone = evaluate(backend, ScriptedDemonstrator(config, backend), task=task, seeds=range(seeds))
        start = time.perf_counter()
        watched = evaluate(
            backend,
            ScriptedDemonstrator(config, backend),
            task=task,
            seeds=range(seeds),
            teleoperator=ScriptedExpert(None, backend),
        )
        wall = time.perf_counter() - start
        print(
            f"{name:<46} {alone.success_rate:>6.2f} {watched.success_rate:>7.2f} {watched.interventions:>9} "
            f"{watched.mean_duration_s:>11.2f} {wall:>8.1f}"
        )


def keyframes_before_success(backend: AlohaSimBackend, task: str, seeds: int = 10) -> float:
    """Mean number of keyframes started before success: with a 1-step pause before every keyframe, each one
    adds exactly one step to the flawless episode."""
    nominal = evaluate(backend, ScriptedDemonstrator(None, backend), task=task, seeds=range(seeds))
    paused_config = ScriptedDemonstratorConfig(hesitation_prob=1.0, hesitation_steps=1)
    paused = evaluate(backend, ScriptedDemonstrator(paused_config, backend), task=task, seeds=range(seeds))
    return sum(p.length - n.length for p, n in zip(paused.episodes, nominal.episodes, strict=True)) / seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--tasks", nargs="+", default=["transfer_cube", "insertion"])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    parser.add_argument("--time-limit", type=int, default=400)
    parser.add_argument("--expert", action="store_true", help="measure the scripted expert's corrections")
    args = parser.parse_args()
    for task in args.tasks:
        backend = AlohaSimBackend(AlohaSimConfig(task=task, cameras=(), time_limit=args.time_limit))
        if args.expert:
            print(f"\n== {task}: scripted expert, {args.seeds} seeds, time limit {args.time_limit} steps ==")
            expert_table(backend, task, args.seeds)
            backend.close()
            continue
        base_time = None
        print(f"\n== {task}: {args.seeds} seeds, time limit {args.time_limit} steps ==")
        print(
            f"{'setting':<20} {'success':>8} {'fail':>6} {'exp.fail':>8} {'t_succ(s)':>9} {'slowdown':>9} {'exp.slow':>8} {'wall(s)':>8}"
        )
        for name in args.settings:
            config, exp_fail, exp_slow = SETTINGS[name]
            demo = ScriptedDemonstrator(config, backend)
            start = time.perf_counter()
            report = evaluate(backend, demo, task=task, seeds=range(args.seeds))
            wall = time.perf_counter() - start
            if name == "flawless":
                base_time = report.mean_time_to_success_s
            slow = report.mean_time_to_success_s / base_time - 1 if base_time else float("nan")
            if exp_slow is None:  # a pause of hesitation_steps before each keyframe with hesitation_prob
                keyframes = keyframes_before_success(backend, task)
                exp_slow = config.hesitation_prob * config.hesitation_steps * keyframes / (base_time * 50)
            print(
                f"{name:<20} {report.success_rate:>8.2f} {1 - report.success_rate:>6.2f} {exp_fail:>8.2f} "
                f"{report.mean_time_to_success_s:>9.2f} {slow:>+9.2f} {exp_slow:>+8.2f} {wall:>8.1f}"
            )
        backend.close()


if __name__ == "__main__":
    main()
