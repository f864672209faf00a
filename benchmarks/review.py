"""How `recap review` scales: time to first paint of the list and of an episode page, in headless Chromium.

Measured in one run, each against a small baseline, so the ratios show the scaling:

* the list of a store of ``--episodes`` (default 10,000) episodes vs one of ``--small-episodes`` (100):
  ``cold`` is the first load after the server starts (it reads every episode's metadata and computes the
  intervention shares, then caches them in the store's ``cache/review/``), ``warm`` the median of later loads;
* the page of a ``--cameras``-camera (3) episode of ``--steps`` (2,000) steps vs one of ``--small-steps``
  (200): the time until the curves are drawn, and until the video's first frame is shown (``cold``: the
  video is encoded on this first view; ``warm``: served from the cache).

Times are from the browser's navigation start to our ``performance.mark`` calls (rows in the table, curves
drawn, ``loadeddata`` of the video), plus the browser's first-contentful-paint. Needs chromium and
chromedriver (apt). Run: ``nice -n 10 python benchmarks/review.py --dir /tmp/review-bench`` (about 7 minutes on
a loaded 2-core box, 6 of them writing the 10,000-episode store; a second run with the same ``--dir`` reuses
the stores and takes about a minute).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from recap.data.store import EpisodeStore
from recap.review import BackgroundServer, create_app
from recap.testing.browser import chromium, chromium_missing, wait_for
from recap.testing.synthetic_store import (
    fill_store,
    synthetic_spec,
    synthetic_steps,
    write_synthetic_label_set,
)


def _mark(driver: Any, name: str, timeout: float = 600) -> float:
    script = f"const m = performance.getEntriesByName('{name}'); return m.length ? m[0].startTime : null"
    return float(wait_for(driver, script, timeout))


def _fcp(driver: Any) -> float:
    script = "const p = performance.getEntriesByName('first-contentful-paint'); return p.length ? p[0].startTime : null"
    return float(wait_for(driver, script))


def _list_times(driver: Any, url: str, repeats: int) -> dict[str, float]:
    loads = []
    for _ in range(repeats + 1):
        driver.get(url + "/")
        loads.append((_mark(driver, "recap-ready"), _fcp(driver)))
    return {
        "cold_ms": loads[0][0],
        "warm_ms": statistics.median(t for t, _ in loads[1:]),
        "fcp_ms": statistics.median(f for _, f in loads[1:]),
    }


def _episode_times(driver: Any, url: str, episode_id: str, repeats: int) -> dict[str, float]:
    loads = []
    for _ in range(repeats + 1):
        driver.get(f"{url}/episode/{episode_id}")
        loads.append((_mark(driver, "recap-painted"), _mark(driver, "recap-video"), _fcp(driver)))
    return {
        "curves_cold_ms": loads[0][0],
        "curves_warm_ms": statistics.median(t[0] for t in loads[1:]),
        "video_cold_ms": loads[0][1],
        "video_warm_ms": statistics.median(t[1] for t in loads[1:]),
        "fcp_ms": statistics.median(t[2] for t in loads[1:]),
    }


def _episode_store(root: Path, cameras: int, lengths: tuple[int, ...]) -> tuple[EpisodeStore, list[str]]:
    spec = synthetic_spec(cameras=cameras, height=64, width=96, fps=50)
    store = EpisodeStore.create(root, spec)
    rng = np.random.default_rng(0)
    ids = [
        store.add(synthetic_steps(spec, n, rng), task="pick up the cube", source="autonomous").episode_id
        for n in lengths
    ]
    write_synthetic_label_set(store, rng)
    return store, ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, default=10_000)
    parser.add_argument("--small-episodes", type=int, default=100)
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--small-steps", type=int, default=200)
    parser.add_argument("--cameras", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="warm loads per page (the median is reported)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where to build the stores (default: a temp dir)"
    )
    args = parser.parse_args()
    if chromium_missing():
        raise SystemExit(f"cannot run: {chromium_missing()}")
    work = args.dir or Path(tempfile.mkdtemp(prefix="recap-review-bench-"))
    list_spec = synthetic_spec(cameras=1, height=16, width=16)
    for name, n in (("small", args.small_episodes), ("large", args.episodes)):
        root = work / f"list-{name}"
        if (root / "store.json").is_file() and len(EpisodeStore.open(root).episodes()) == n:
            print(f"reusing the {n}-episode store in {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
            started = time.perf_counter()
            fill_store(root, n, 20, spec=list_spec, with_label_set=False)
            print(f"built a {n}-episode store in {time.perf_counter() - started:.0f} s", flush=True)
    shutil.rmtree(work / "episodes", ignore_errors=True)
    episodes, (long_id, short_id) = _episode_store(
        work / "episodes", args.cameras, (args.steps, args.small_steps)
    )
    for root in work.glob("*/cache/review"):
        shutil.rmtree(root)  # "cold" means no cached summaries or videos

    results: dict[str, dict[str, float]] = {}
    with chromium() as driver:
        for name in ("small", "large"):
            store = EpisodeStore.open(work / f"list-{name}")
            with BackgroundServer(create_app(store, reviewer="bench")) as url:
                results[f"list-{name}"] = _list_times(driver, url, args.repeats)
        with BackgroundServer(create_app(episodes, reviewer="bench")) as url:
            results["episode-short"] = _episode_times(driver, url, short_id, args.repeats)
            results["episode-long"] = _episode_times(driver, url, long_id, args.repeats)

    print(f"\nlist: {args.episodes} episodes vs {args.small_episodes} (ms from navigation start)")
    print(f"{'':>22} {'small':>9} {'large':>9} {'ratio':>7}")
    for key, label in (
        ("warm_ms", "rows painted (warm)"),
        ("cold_ms", "rows painted (cold)"),
        ("fcp_ms", "first paint"),
    ):
        small, large = results["list-small"][key], results["list-large"][key]
        print(f"{label:>22} {small:9.0f} {large:9.0f} {large / small:7.1f}x")
    print(f"\nepisode page: {args.cameras} cameras, {args.steps} steps vs {args.small_steps} (ms)")
    print(f"{'':>22} {'short':>9} {'long':>9} {'ratio':>7}")
    for key, label in (
        ("curves_warm_ms", "curves drawn (warm)"),
        ("curves_cold_ms", "curves drawn (cold)"),
        ("video_cold_ms", "video frame (encode)"),
        ("video_warm_ms", "video frame (cached)"),
        ("fcp_ms", "first paint"),
    ):
        short, long = results["episode-short"][key], results["episode-long"][key]
        print(f"{label:>22} {short:9.0f} {long:9.0f} {long / short:7.1f}x")
    print(f"\nstores in {work}")


if __name__ == "__main__":
    main()
