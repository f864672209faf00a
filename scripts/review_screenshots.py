"""Screenshots of `recap review` for the docs, taken in headless Chromium (opt-in: CI never runs this).

    python scripts/review_screenshots.py runs/demo/store --out docs/images

writes ``review-list.png`` (the episode list) and ``review-episode.png`` (the page of ``--episode``, default
the first correction, else the first failure, else the first episode, paused at ``--at`` of its length). Only the store's
``cache/review/`` is written; labels are not touched.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from recap.data.store import EpisodeStore
from recap.review import BackgroundServer, create_app
from recap.testing.browser import chromium, chromium_missing, wait_for


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("store", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    parser.add_argument("--episode", default=None, help="episode id for the episode page")
    parser.add_argument("--labels", default=None, help="label set to show (default: the newest)")
    parser.add_argument(
        "--at", type=float, default=0.6, help="where to pause the video, as a share of its length"
    )
    args = parser.parse_args()
    if chromium_missing():
        raise SystemExit(f"cannot take screenshots: {chromium_missing()}")
    store = EpisodeStore.open(args.store)
    episodes = store.episodes()
    if not episodes:
        raise SystemExit(f"store {args.store} has no episodes")
    # a correction shows the most (intervention segments, forced I = 1); else a failure; else the first
    corrections = [m for m in episodes if m.source == "correction"]
    failed = [m for m in episodes if m.success is False]
    episode_id = args.episode or (corrections or failed or episodes)[0].episode_id
    args.out.mkdir(parents=True, exist_ok=True)
    app = create_app(store, reviewer="docs", label_set=args.labels)
    with BackgroundServer(app) as url, chromium(1400, 1000) as driver:
        driver.get(url + "/")
        wait_for(driver, "return document.body.dataset.ready")
        driver.save_screenshot(str(args.out / "review-list.png"))
        driver.get(f"{url}/episode/{episode_id}")
        wait_for(driver, "return document.body.dataset.ready")
        if store.spec.cameras:
            wait_for(driver, "return document.getElementById('video').readyState >= 2")
            driver.execute_script(
                "const v = document.getElementById('video'); v.currentTime = v.duration * arguments[0];",
                args.at,
            )
            ready = "const v = document.getElementById('video'); return !v.seeking && v.readyState === 4"
            wait_for(driver, ready)
            time.sleep(
                2
            )  # Chromium fades its loading spinner out after a seek; a picture needs no exact timing
        driver.save_screenshot(str(args.out / "review-episode.png"))
    print(
        f"wrote {args.out / 'review-list.png'} and {args.out / 'review-episode.png'} (episode {episode_id})"
    )


if __name__ == "__main__":
    main()
