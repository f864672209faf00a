"""Control-step time of the aloha-sim backend against the stock gym-aloha step, measured in the same run.

The stock step (``gym_aloha.env.AlohaEnv``) renders three 480x640 cameras with 4x anti-aliasing and shadows on
every step; ours renders only the requested cameras at the requested size without either (unless asked).
Targets: one 96x128 camera <= 8 ms/step; three 224x224 cameras <= 25 ms/step.

    MUJOCO_GL=egl python benchmarks/sim_step.py [--steps 200]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from recap_bimanual.sim.backend import AlohaSimBackend, AlohaSimConfig  # noqa: E402

from recap.data.spec import ALOHA_CAMERAS  # noqa: E402


def time_stock(steps: int) -> tuple[float, float]:
    from gym_aloha.env import AlohaEnv

    env = AlohaEnv("transfer_cube", obs_type="pixels_agent_pos")
    obs, _ = env.reset(seed=0)
    action = np.asarray(obs["agent_pos"], dtype=np.float64)
    env.step(action)  # warm-up (GL context)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        env.step(action)
    return (time.perf_counter() - start) / steps * 1000, (time.process_time() - cpu) / steps * 1000


def time_ours(steps: int, config: AlohaSimConfig) -> tuple[float, float]:
    with AlohaSimBackend(config) as backend:
        obs = backend.reset("transfer_cube", 0)
        action = obs.get("observation.state").clone()
        backend.step(action)  # warm-up (GL context)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(steps):
            result = backend.step(action)
            if result.done:
                backend.reset("transfer_cube", 0)
        return (time.perf_counter() - start) / steps * 1000, (time.process_time() - cpu) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()
    stock = time_stock(max(args.steps // 4, 20))
    rows = [
        ("stock gym-aloha (3 cams 480x640, AA, shadows)", stock, None),
        ("aloha-sim physics only (no camera)", time_ours(args.steps, AlohaSimConfig(cameras=())), None),
        ("aloha-sim 1 cam 96x128", time_ours(args.steps, AlohaSimConfig(cameras=("cam_high",))), 8.0),
        (
            "aloha-sim 3 cams 224x224",
            time_ours(args.steps, AlohaSimConfig(cameras=ALOHA_CAMERAS, image_height=224, image_width=224)),
            25.0,
        ),
        (
            "aloha-sim 3 cams 224x224, AA + shadows",
            time_ours(
                args.steps,
                AlohaSimConfig(
                    cameras=ALOHA_CAMERAS, image_height=224, image_width=224, antialias=True, shadows=True
                ),
            ),
            None,
        ),
    ]
    print(
        f"load average before the run: {load[0]:.2f} on {os.cpu_count()} CPUs (wall times stretch under load;"
    )
    print("the CPU-time column counts this process's own work, all threads, and is steadier)")
    print(f"{'configuration':<46} {'ms/step':>8} {'cpu ms':>8} {'vs stock':>9} {'target':>10}")
    for name, (ms, cpu), target in rows:
        verdict = "" if target is None else (f"<= {target:.0f} " + ("ok" if ms <= target else "MISSED"))
        print(f"{name:<46} {ms:>8.2f} {cpu:>8.2f} {stock[0] / ms:>8.1f}x {verdict:>10}")


if __name__ == "__main__":
    main()
