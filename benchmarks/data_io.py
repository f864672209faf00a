"""Episode store I/O: write throughput, training windows per second against a plain numpy-memmap loader, and
what one minute of 3-camera 480x640 50 Hz data costs on disk (raw, zlib, LeRobot MP4).

    python benchmarks/data_io.py                 # defaults: 20 episodes x 250 steps, 3 cameras 96x128
    python benchmarks/data_io.py --no-sim        # skip rendering MuJoCo frames for the disk-cost section

Every figure is measured in this run. The baseline reads the same arrays from per-episode ``.npy`` files opened
with ``np.load(mmap_mode="r")``, one window at a time (state, padded action chunk, one frame per camera), the
way a per-item ``Dataset.__getitem__`` + collate would.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from recap.data import keys
from recap.data.lerobot_export import export_lerobot
from recap.data.sampler import WindowSampler
from recap.data.spec import aloha_spec
from recap.data.store import EpisodeStore


def synthetic_steps(length: int, height: int, width: int, seed: int) -> dict[str, np.ndarray]:
    """Smooth moving patterns plus sensor-like noise (so compression is not trivially easy)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    t = np.arange(length)[:, None, None]
    steps = {}
    for c, cam in enumerate(("cam_high", "cam_left_wrist", "cam_right_wrist")):
        base = np.stack(
            [
                128 + 90 * np.sin((xx[None] + 3 * t + 40 * c) / 17.0) * np.cos(yy[None] / 23.0),
                128 + 90 * np.cos((yy[None] + 2 * t + seed) / 13.0),
                np.broadcast_to(60 + 0.3 * xx[None] + 0.2 * yy[None], (length, height, width)),
            ],
            axis=-1,
        )
        noise = rng.normal(0, 3, size=base.shape)
        steps[keys.image_key(cam)] = np.clip(base + noise, 0, 255).astype(np.uint8)
    steps[keys.STATE] = rng.normal(size=(length, 14)).astype(np.float32)
    steps[keys.ACTION] = rng.normal(size=(length, 14)).astype(np.float32)
    steps[keys.IS_INTERVENTION] = rng.random(length) < 0.1
    return steps


def sim_steps(n: int) -> dict[str, np.ndarray] | None:
    """``n`` steps of the gym-aloha transfer-cube scene rendered by its three 480x640 cameras, arms moving."""
    try:
        import gym_aloha  # noqa: F401
        import gymnasium as gym
    except ImportError:
        return None
    env = gym.make("gym_aloha/AlohaTransferCube-v0", obs_type="pixels_agent_pos")
    obs, _ = env.reset(seed=0)
    physics = env.unwrapped._env.physics
    home = np.asarray(obs["agent_pos"], dtype=np.float64)
    frames = {cam: [] for cam in ("top", "left_wrist", "right_wrist")}
    for t in range(n):
        env.step(home + 0.3 * np.sin(t / 8.0 + np.arange(14)))
        for cam in frames:
            frames[cam].append(physics.render(height=480, width=640, camera_id=cam))
    env.close()
    names = {"top": "cam_high", "left_wrist": "cam_left_wrist", "right_wrist": "cam_right_wrist"}
    steps = {keys.image_key(names[c]): np.stack(f) for c, f in frames.items()}
    rng = np.random.default_rng(0)
    steps[keys.STATE] = rng.normal(size=(n, 14)).astype(np.float32)
    steps[keys.ACTION] = rng.normal(size=(n, 14)).astype(np.float32)
    steps[keys.IS_INTERVENTION] = np.zeros(n, dtype=bool)
    return steps


def bench_write(root: Path, spec, episodes: list[dict], codec: str | None) -> tuple[EpisodeStore, float]:
    store = EpisodeStore.create(root, spec, image_codec=codec)
    start = time.perf_counter()
    for i, steps in enumerate(episodes):
        store.add(steps, task=f"task{i % 2}", source="autonomous", success=bool(i % 3))
    return store, time.perf_counter() - start


def baseline_windows(
    root: Path, store: EpisodeStore, chunk: int, batch: int, batches: int, seed: int, cameras: bool = True
) -> float:
    """Windows/s of the plain loader: per-episode .npy memmaps, one window at a time, then stacked."""
    eps = store.episodes()
    cams = [c.key for c in store.spec.cameras] if cameras else []
    files = []
    for m in eps:
        d = root / m.episode_id
        if not d.exists():
            d.mkdir(parents=True)
            arrays = store.arrays(m.episode_id)
            for key in [keys.STATE, keys.ACTION, *(c.key for c in store.spec.cameras)]:
                np.save(d / f"{key}.npy", np.asarray(arrays[key]))
        files.append({k: np.load(d / f"{k}.npy", mmap_mode="r") for k in [keys.STATE, keys.ACTION, *cams]})
    lengths = np.array([m.length for m in eps])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    t0 = time.perf_counter()
    for step in range(batches):
        rng = np.random.Generator(np.random.PCG64([seed, step]))
        rows = []
        for g in rng.integers(0, lengths.sum(), batch):
            e = int(np.searchsorted(starts, g, side="right") - 1)
            t = int(g - starts[e])
            a = files[e]
            act = np.asarray(a[keys.ACTION][t : t + chunk])
            pad = chunk - len(act)
            act = np.concatenate([act, np.repeat(act[-1:], pad, 0)]) if pad else act
            rows.append(
                {
                    "state": np.asarray(a[keys.STATE][t]),
                    "action": act,
                    "pad": np.arange(chunk) >= chunk - pad,
                    **{k: np.asarray(a[k][t]) for k in cams},
                }
            )
        _ = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    return batch * batches / (time.perf_counter() - t0)


def sampler_windows(
    store: EpisodeStore, chunk: int, batch: int, batches: int, seed: int, cameras: bool = True
) -> float:
    sampler = WindowSampler(
        store, chunk_size=chunk, batch_size=batch, seed=seed, cameras=None if cameras else ()
    )
    t0 = time.perf_counter()
    for step in range(batches):
        sampler.batch(step)
    return batch * batches / (time.perf_counter() - t0)


def minute_on_disk(tmp: Path, steps: dict[str, np.ndarray], label: str) -> None:
    n = len(steps[keys.ACTION])
    spec = aloha_spec(480, 640)
    per_minute = 60 * spec.fps / n
    print(
        f"\n## one minute of 3-camera 480x640 {spec.fps} Hz ({label}, {n} steps measured, scaled x{per_minute:.0f})"
    )
    raw = 60 * spec.fps * 3 * 480 * 640 * 3
    print(f"raw pixels (exact)           {raw / 1e9:7.2f} GB/min")
    for codec in (None, "zlib"):
        store, secs = bench_write(tmp / f"minute-{codec}", spec, [steps], codec)
        print(
            f"store codec={str(codec):<5}         {store.disk_usage() * per_minute / 1e9:7.2f} GB/min"
            f"   (write {n / secs:6.1f} steps/s)"
        )
        if codec is None:
            for video in ("av1", "lossless"):
                out = tmp / f"lerobot-{video}"
                t0 = time.perf_counter()
                export_lerobot(store, out, codec=video, progress=False)
                secs = time.perf_counter() - t0
                size = sum(p.stat().st_size for p in (out / "videos").rglob("*.mp4"))
                print(
                    f"LeRobot mp4 {video:<9}        {size * per_minute / 1e9:7.2f} GB/min"
                    f"   (encode {n / secs:6.1f} steps/s)"
                )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--length", type=int, default=250)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--minute-steps", type=int, default=25, help="480x640 steps measured for the disk section")
    p.add_argument("--no-sim", action="store_true", help="synthetic frames instead of MuJoCo renders")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="recap-bench-"))
    try:
        spec = aloha_spec(args.height, args.width)
        episodes = [synthetic_steps(args.length, args.height, args.width, i) for i in range(args.episodes)]
        n_steps = args.episodes * args.length
        print(
            f"## write: {args.episodes} episodes x {args.length} steps, 3 cameras {args.height}x{args.width}"
        )
        stores = {}
        for codec in (None, "zlib"):
            stores[codec], secs = bench_write(tmp / f"w-{codec}", spec, episodes, codec)
            print(
                f"codec={str(codec):<5} {n_steps / secs:9.0f} steps/s  {3 * n_steps / secs:9.0f} camera frames/s"
                f"  {stores[codec].disk_usage() / 2**20:8.1f} MiB on disk"
            )
        print(f"\n## training windows: batch {args.batch}, chunk {args.chunk}, {args.batches} batches")
        base = baseline_windows(tmp / "baseline", stores[None], args.chunk, args.batch, args.batches, 0)
        ours = sampler_windows(stores[None], args.chunk, args.batch, args.batches, 0)
        ours_zlib = sampler_windows(stores["zlib"], args.chunk, args.batch, args.batches, 0)
        print(f"numpy memmap baseline      {base:9.0f} windows/s")
        print(f"WindowSampler (raw)        {ours:9.0f} windows/s   ratio {ours / base:5.2f}x baseline")
        print(
            f"WindowSampler (zlib)       {ours_zlib:9.0f} windows/s   ratio {ours_zlib / base:5.2f}x baseline"
        )
        base = baseline_windows(
            tmp / "baseline", stores[None], args.chunk, args.batch, args.batches, 0, False
        )
        ours = sampler_windows(stores[None], args.chunk, args.batch, args.batches, 0, False)
        print("state + action chunk only (cameras=(), privileged-state experiments):")
        print(f"numpy memmap baseline      {base:9.0f} windows/s")
        print(f"WindowSampler              {ours:9.0f} windows/s   ratio {ours / base:5.2f}x baseline")
        steps = None if args.no_sim else sim_steps(args.minute_steps)
        label = "MuJoCo ALOHA renders"
        if steps is None:
            steps, label = synthetic_steps(args.minute_steps, 480, 640, 0), "synthetic frames"
        minute_on_disk(tmp, steps, label)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
