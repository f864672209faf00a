"""Episode store I/O: write throughput and training windows per second against a plain numpy-memmap loader, then
every image codec on rendered sim frames (three 480x640 cameras): disk per robot-hour, encode speed, and training
windows/s through 2 DataLoader workers.

    nice -n 10 python benchmarks/data_io.py      # defaults: 20 x 250 synthetic steps at 96x128; 3 sim episodes
    python benchmarks/data_io.py --sim-episodes 0  # skip the codec section (needs the recap-bimanual plugin)

Every figure is measured in this run. The baseline reads the same arrays from per-episode ``.npy`` files opened
with ``np.load(mmap_mode="r")``, one window at a time (state, padded action chunk, one frame per camera), the
way a per-item ``Dataset.__getitem__`` + collate would. The codec section records episodes of the scripted
demonstrator on the simulated bimanual robot into a raw store, adds the same episodes to a store of each codec
(timing the encode + commit), and reads batches of 64 windows (chunk 50, one frame per camera per window) with
``recap.data.sampler.batch_loader`` and 2 worker processes, timed after the first batch (worker start-up).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from recap.data import keys
from recap.data.sampler import WindowSampler, batch_loader
from recap.data.spec import aloha_spec
from recap.data.store import EpisodeStore
from recap.data.video import psnr


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


CODECS = (None, "zlib", "lossless", "av1", "h264")
ROBOT_STEPS_PER_HOUR = 50 * 3600


def rendered_store(root: Path, episodes: int, time_limit: int) -> EpisodeStore | None:
    """A raw store of ``episodes`` scripted-demonstrator episodes on the simulated bimanual robot, three 480x640
    cameras; None when the recap-bimanual plugin is not installed."""
    from recap.plugins import get_registry
    from recap.rollout import collect

    registry = get_registry()
    if "aloha-sim" not in registry.names("backend"):
        return None
    cameras = ("cam_high", "cam_left_wrist", "cam_right_wrist")
    config = registry.get("backend", "aloha-sim").config(cameras=cameras, image_height=480, image_width=640)
    robot = registry.build(config)
    actor = registry.build(registry.get("demonstrator", "scripted").config(), robot)
    with robot:
        store = EpisodeStore.create(root, robot.spec)
        collect(robot, actor, store, task="transfer_cube", seeds=range(episodes), time_limit=time_limit)
    return store


def loader_windows(store: EpisodeStore, batch: int, chunk: int, batches: int, workers: int) -> float:
    """Windows/s of ``batch_loader`` with ``workers`` processes, timed after the first batch arrives."""
    sampler = WindowSampler(store, chunk_size=chunk, batch_size=batch, seed=0)
    batches_iter = iter(batch_loader(sampler, range(batches + 1), num_workers=workers))
    next(batches_iter)
    t0 = time.perf_counter()
    for _ in batches_iter:
        pass
    return batch * batches / (time.perf_counter() - t0)


def codec_table(tmp: Path, args: argparse.Namespace) -> None:
    source = rendered_store(tmp / "rendered", args.sim_episodes, args.sim_time_limit)
    if source is None:
        print("\n(codec section skipped: install plugins/recap-bimanual for the simulated robot)")
        return
    metas = source.episodes()
    steps = sum(m.length for m in metas)
    print(
        f"\n## image codecs: {len(metas)} scripted sim episodes ({steps} steps), 3 cameras 480x640, "
        f"windows: batch {args.batch}, chunk {args.chunk}, {args.loader_batches} batches, {args.workers} workers"
    )
    print("codec     GB/robot-hour  x smaller  encode+commit steps/s  windows/s  x raw   worst PSNR dB")
    raw_bytes, raw_windows = None, None
    for codec in CODECS:
        store = EpisodeStore.create(tmp / f"codec-{codec}", source.spec, image_codec=codec)
        seconds = 0.0
        for m in metas:
            arrays = {
                k: np.asarray(v) for k, v in source.arrays(m.episode_id).items() if k != "subtask_index"
            }
            t0 = time.perf_counter()
            store.add(arrays, task=m.task, source=m.source, episode_id=m.episode_id)
            seconds += time.perf_counter() - t0
        size = sum(p.stat().st_size for p in (store.root / "episodes").rglob("*") if p.is_file())
        raw_bytes = raw_bytes or size
        windows = loader_windows(store, args.batch, args.chunk, args.loader_batches, args.workers)
        raw_windows = raw_windows or windows
        quality = min(
            psnr(
                np.asarray(source.arrays(m.episode_id)[c.key]), np.asarray(store.arrays(m.episode_id)[c.key])
            )
            for m in metas[:1]
            for c in source.spec.cameras
        )
        print(
            f"{str(codec):<9} {size / steps * ROBOT_STEPS_PER_HOUR / 1e9:13.2f}  {raw_bytes / size:9.1f}  "
            f"{steps / seconds:21.1f}  {windows:9.0f}  {windows / raw_windows:5.2f}   {quality:8.1f}"
        )
        shutil.rmtree(store.root)
    print(
        "targets: av1 >= 100x smaller than raw; video windows/s >= 0.3x raw; a codec encoding >= 50 steps/s "
        "(one robot in real time)"
    )


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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--length", type=int, default=250)
    p.add_argument("--height", type=int, default=96)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=30)
    p.add_argument(
        "--sim-episodes", type=int, default=3, help="episodes rendered for the codec section (0: skip)"
    )
    p.add_argument("--sim-time-limit", type=int, default=200, help="control steps per sim episode at most")
    p.add_argument("--loader-batches", type=int, default=20, help="batches timed per codec")
    p.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
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
        if args.sim_episodes:
            codec_table(tmp, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
