"""End to end in a real headless Chromium: list, filter, video, seeking, labelling keys, stale writes, tokens.

Skipped (with the reason) only when chromium / chromedriver / selenium are absent; `.ci/run` installs them.
"""

from __future__ import annotations

import os

import pytest

from recap.data.store import EpisodeStore
from recap.review import BackgroundServer, create_app
from recap.testing.browser import chromium, chromium_missing, wait_for

if chromium_missing() and os.environ.get("RECAP_REQUIRE_BROWSER"):  # CI sets it: never skip there
    raise RuntimeError(f"RECAP_REQUIRE_BROWSER is set, but {chromium_missing()}")
pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=str(chromium_missing()))

PAGE_READY = "return document.body.dataset.ready === '1' && location.pathname"


def _press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def _status(driver) -> str:
    return wait_for(driver, "const s = document.getElementById('status').textContent; return s || null")


def test_review_flow_in_chromium(store: EpisodeStore) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    ids = [m.episode_id for m in store.episodes()]
    store.set_success(ids[0], True, by="earlier")  # already labelled: the unlabelled filter hides it
    with BackgroundServer(create_app(store, reviewer="tester")) as url, chromium() as driver:
        driver.get(url + "/")
        wait_for(driver, PAGE_READY)
        assert len(driver.find_elements(By.CSS_SELECTOR, "#episodes tbody tr")) == len(ids)
        Select(driver.find_element(By.ID, "filter-outcome")).select_by_value("unlabelled")
        wait_for(driver, f"return document.querySelectorAll('#episodes tbody tr').length === {len(ids) - 1}")
        shown = [
            r.get_attribute("data-episode")
            for r in driver.find_elements(By.CSS_SELECTOR, "#episodes tbody tr")
        ]
        assert shown == ids[1:]

        driver.find_element(By.CSS_SELECTOR, "#episodes tbody tr").click()
        assert wait_for(driver, PAGE_READY) == f"/episode/{ids[1]}"
        # the video loads and plays
        driver.execute_script("document.getElementById('video').play()")
        wait_for(
            driver,
            "const v = document.getElementById('video'); return v.readyState >= 2 && v.currentTime > 0.3",
        )
        driver.execute_script("document.getElementById('video').pause()")
        # clicking three quarters along the timeline seeks the video there and moves the timeline's cursor
        timeline = driver.find_element(By.ID, "timeline")
        width = timeline.size["width"]
        ActionChains(driver).move_to_element_with_offset(timeline, int(width * 0.25), 0).click().perform()
        target = int(0.75 * store.meta(ids[1]).length)
        step = wait_for(
            driver,
            "const s = +document.getElementById('timeline').dataset.step;"
            f"return Math.abs(s - {target}) <= 1 && s",
        )
        video_time = driver.execute_script("return document.getElementById('video').currentTime")
        assert abs(video_time * 10 - (step + 0.5)) < 1e-3  # the cursor shows the frame on screen

        # label three episodes with the keys, moving on with j
        for i, (key, outcome) in enumerate([("s", "success"), ("f", "failure"), ("s", "success")]):
            assert wait_for(driver, PAGE_READY) == f"/episode/{ids[1 + i]}"
            _press(driver, key)
            assert _status(driver) == f"saved: {outcome}"
            if i < 2:
                _press(driver, "j")
                wait_for(driver, f"return location.pathname !== '/episode/{ids[1 + i]}'")
        # the list is still filtered to unlabelled episodes, so the two labelled before are no longer in it
        _press(driver, "k")
        wait_for(
            driver, "return document.getElementById('status').textContent.startsWith('this is the first')"
        )

    reopened = EpisodeStore.open(store.root)
    assert [reopened.meta(e).success for e in ids[:5]] == [True, True, False, True, None]
    assert {reopened.success_history(e)[-1]["by"] for e in ids[1:4]} == {"tester"}


def test_two_reviewers_on_one_episode_the_second_is_refused(store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    with (
        BackgroundServer(create_app(store, reviewer="tester")) as url,
        chromium() as first,
        chromium() as second,
    ):
        for driver in (first, second):
            driver.get(f"{url}/episode/{eid}")
            wait_for(driver, PAGE_READY)
        _press(first, "s")
        assert _status(first) == "saved: success"
        _press(second, "f")
        message = _status(second)
        assert message.startswith("not saved:") and "changed since you loaded it" in message
    assert [e["success"] for e in EpisodeStore.open(store.root).success_history(eid)] == [None, True]


def test_token_and_bad_ids_when_served_beyond_loopback(store: EpisodeStore) -> None:
    from selenium.webdriver.common.by import By

    app = create_app(store, reviewer="tester", token="s3cret-token")
    with BackgroundServer(app, host="0.0.0.0") as url, chromium() as driver:
        port = url.rsplit(":", 1)[1]
        base = f"http://127.0.0.1:{port}"
        driver.get(base + "/")
        assert "needs its token" in driver.find_element(By.TAG_NAME, "body").text
        driver.get(f"{base}/login?token=s3cret-token")
        wait_for(driver, PAGE_READY)  # the login link set the cookie and redirected to the list
        statuses = driver.execute_async_script(
            "const done = arguments[0];"
            "Promise.all(['/api/episodes/..%2Fstore.json', '/episode/..%2F..%2Fstore.json', '/api/episodes']"
            ".map((p) => fetch(p).then((r) => r.status))).then(done);"
        )
        assert 400 <= statuses[0] < 500 and 400 <= statuses[1] < 500 and statuses[2] == 200
