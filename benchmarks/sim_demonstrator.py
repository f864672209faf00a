"""Success and slowdown of the scripted demonstrator on the aloha-sim backend, flawless and flawed.

Runs ``--seeds`` episodes per setting (state only, no cameras) through ``recap.rollout.evaluate`` and prints,
per setting, the strict success rate, the failure rate, the mean time to success and its slowdown against the
flawless demonstrator measured in the same run, next to what the flaw configuration predicts.

    python benchmarks/sim_demonstrator.py --seeds 100
    python benchmarks/sim_demonstrator.py --seeds 100 --tasks insertion --settings flawless
    python benchmarks/sim_demonstrator.py --seeds 100 --expert        # the scripted expert's corrections

``--expert`` runs the settings of ``EXPERT_SETTINGS`` of each task twice, without and with the
``scripted-expert`` teleoperator watching, and prints the success of each, how far the failed episodes got
alone (episodes per furthest stage), the episodes it took over in, the mean duration and, for insertion, the
episodes that ended with the socket down (on the table or tipped over). Its time limit is the task's
``EXPERT_TIME_LIMIT`` unless ``--time-limit`` is given: an insertion re-grasp needs about 5 s more.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig  # noqa: E402
from recap_bimanual.sim.demonstrator import ScriptedDemonstrator, ScriptedDemonstratorConfig  # noqa: E402
from recap_bimanual.sim.expert import UPRIGHT_DEG, ScriptedExpert, socket_tilt_deg  # noqa: E402

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


#: the demonstrator flaws the scripted expert is measured against, per task (its documented tables)
EXPERT_SETTINGS: dict[str, dict[str, ScriptedDemonstratorConfig]] = {
    "transfer_cube": {
        "none": ScriptedDemonstratorConfig(),
        "bad_grasp_0.3": ScriptedDemonstratorConfig(bad_grasp_prob=0.3),
        "loose_grip_0.3": ScriptedDemonstratorConfig(loose_grip_prob=0.3),
        "bad_grasp_0.3+loose_grip_0.3+hesitation_0.2": ScriptedDemonstratorConfig(
            bad_grasp_prob=0.3, loose_grip_prob=0.3, hesitation_prob=0.2
        ),
    },
    "insertion": {
        "none": ScriptedDemonstratorConfig(),
        "bad_grasp_0.6_yaw30": ScriptedDemonstratorConfig(bad_grasp_prob=0.6, bad_grasp_yaw=30.0),
        # the demo-insertion preset's demonstrator
        "bad_grasp_0.6_yaw30+hesitation_0.35x40": ScriptedDemonstratorConfig(
            bad_grasp_prob=0.6, bad_grasp_yaw=30.0, hesitation_prob=0.35, hesitation_steps=40
        ),
    },
}
EXPERT_TIME_LIMIT = {"transfer_cube": 400, "insertion": 600}


class SocketWatch:
    """A teleoperator that never acts (or wraps one that does) and counts the episodes that end with the
    socket down: touching the table with no left finger on it, or tipped over."""

    def __init__(self, backend: AlohaSimBackend, inner: ScriptedExpert | None = None):
        self.backend, self.inner = backend, inner
        self.down = 0
        self._down_now = False

    def reset(self, task: str, seed: int | None = None) -> None:
        self.down += self._down_now
        self._down_now = False
        if self.inner is not None:
            self.inner.reset(task, seed)

    def poll(self, obs):
        if self.backend.task == "insertion":
            rules = self.backend.rules
            touching = {b for a, b in rules.contact_pairs(self.backend.data) if a in rules.socket}
            on_table = rules.table in touching and not touching & rules.left_fingers
            self._down_now = on_table or socket_tilt_deg(self.backend) > UPRIGHT_DEG
        return None if self.inner is None else self.inner.poll(obs)

    def total(self) -> int:
        return self.down + self._down_now


def stages_of_failures(report) -> str:
    """Failed episodes per furthest stage reached, e.g. ``2:19 3:25``."""
    stages = sorted(e.max_stage for e in report.episodes if e.success is not True)
    return " ".join(f"{s}:{stages.count(s)}" for s in sorted(set(stages))) or "-"


def expert_table(backend: AlohaSimBackend, task: str, seeds: int) -> None:
    """Per flaw setting: success without the expert, with it, the episodes it took over in, mean duration."""
    print(
        f"{'demonstrator flaws':<46} {'alone':>6} {'failed at stage':>18} {'expert':>7} {'took over':>9} "
        f"{'duration(s)':>11} {'socket down':>12} {'wall(s)':>8}"
    )
    for name, config in EXPERT_SETTINGS[task].items():
        alone_watch = SocketWatch(backend)
        alone = evaluate(
            backend,
            ScriptedDemonstrator(config, backend),
            task=task,
            seeds=range(seeds),
            teleoperator=alone_watch,
        )
        start = time.perf_counter()
        watch = SocketWatch(backend, ScriptedExpert(None, backend))
        watched = evaluate(
            backend, ScriptedDemonstrator(config, backend), task=task, seeds=range(seeds), teleoperator=watch
        )
        wall = time.perf_counter() - start
        down = f"{alone_watch.total()} -> {watch.total()}"
        print(
            f"{name:<46} {alone.success_rate:>6.2f} {stages_of_failures(alone):>18} {watched.success_rate:>7.2f} "
            f"{watched.interventions:>9} {watched.mean_duration_s:>11.2f} {down:>12} {wall:>8.1f}"
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
    parser.add_argument(
        "--time-limit",
        type=int,
        default=None,
        help="steps per episode (default 400; --expert: EXPERT_TIME_LIMIT)",
    )
    parser.add_argument("--expert", action="store_true", help="measure the scripted expert's corrections")
    args = parser.parse_args()
    for task in args.tasks:
        limit = args.time_limit or (EXPERT_TIME_LIMIT[task] if args.expert else 400)
        backend = AlohaSimBackend(AlohaSimConfig(task=task, cameras=(), time_limit=limit))
        if args.expert:
            print(f"\n== {task}: scripted expert, {args.seeds} seeds, time limit {limit} steps ==")
            expert_table(backend, task, args.seeds)
            backend.close()
            continue
        base_time = None
        print(f"\n== {task}: {args.seeds} seeds, time limit {limit} steps ==")
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
