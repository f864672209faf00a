"""Every endpoint of the review app through Starlette's test client (no browser, no sockets)."""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator

import av
import pytest
from starlette.testclient import TestClient

from recap.data.store import EpisodeStore
from recap.review import BackgroundServer, create_app
from recap.review.catalog import MAX_PAGE
from recap.testing.synthetic_store import fill_store, synthetic_spec

LOCAL = "http://127.0.0.1"


@pytest.fixture
def client(store: EpisodeStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, reviewer="tester"), base_url=LOCAL) as c:
        yield c


def _label(client: TestClient, eid: str, **body) -> object:
    return client.post(f"/api/episodes/{eid}/label", json=body)


def test_pages_and_static_files_are_served(client: TestClient, store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    assert "recap review" in client.get("/").text
    assert "episode.js" in client.get(f"/episode/{eid}").text
    assert client.get("/static/episode.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/api/info").json()["label_set"] == "synthetic-values"


def test_list_filters_sorts_and_pages(client: TestClient, store: EpisodeStore) -> None:
    n_episodes = len(store.episodes())
    page = client.get("/api/episodes", params={"limit": 5}).json()
    assert (page["total"], page["store_total"], page["unlabelled"], len(page["rows"])) == (
        n_episodes,
        n_episodes,
        n_episodes,
        5,
    )
    ids = [m.episode_id for m in store.episodes()]
    assert [r["episode_id"] for r in page["rows"]] == ids[:5]
    second = client.get("/api/episodes", params={"limit": 5, "offset": 5}).json()
    assert [r["episode_id"] for r in second["rows"]] == ids[5:10]
    demos = client.get("/api/episodes", params={"source": "demonstration"}).json()
    assert demos["total"] == n_episodes // 3 and {r["source"] for r in demos["rows"]} == {"demonstration"}
    assert dict(map(tuple, page["facets"]["task"])) == {"open the drawer": 6, "pick up the cube": 6}
    store.set_success(ids[3], True)
    unlabelled = client.get("/api/episodes", params={"outcome": "unlabelled"}).json()
    assert unlabelled["total"] == n_episodes - 1 and ids[3] not in [
        r["episode_id"] for r in unlabelled["rows"]
    ]
    by_share = client.get("/api/episodes", params={"sort": "intervention", "order": "desc"}).json()["rows"]
    shares = [r["intervention"] for r in by_share]
    assert shares == sorted(shares, reverse=True) and shares[0] > 0 == shares[-1]
    later = client.get("/api/episodes", params={"iteration": "2"}).json()
    assert later["total"] == n_episodes // 3 and {r["iteration"] for r in later["rows"]} == {2}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"colour": "red"}, "unknown list parameters"),
        ({"sort": "nope"}, "sort: expected one of"),
        ({"order": "up"}, "order: expected"),
        ({"outcome": "maybe"}, "outcome: expected"),
        ({"limit": str(MAX_PAGE + 1)}, "limit: expected an integer"),
        ({"offset": "-1"}, "offset: expected an integer"),
        ({"offset": "x"}, "offset: expected an integer"),
    ],
)
def test_bad_list_parameters_get_400(client: TestClient, params: dict, message: str) -> None:
    response = client.get("/api/episodes", params=params)
    assert response.status_code == 400 and message in response.json()["error"]


def test_episode_payload(client: TestClient, store: EpisodeStore) -> None:
    meta = next(
        m for m in store.episodes() if client.get(f"/api/episodes/{m.episode_id}").json()["intervention"]
    )
    data = client.get(f"/api/episodes/{meta.episode_id}").json()
    length = meta.length
    assert (data["length"], data["fps"], data["task"]) == (40, 10, meta.task)
    assert len(data["state"]) == 4 and len(data["state"][0]) == length and len(data["action"]) == 3
    [[start, end]] = data["intervention"]
    flags = store.load(meta.episode_id).steps["is_intervention"]
    assert flags[start:end].all() and int(flags.sum()) == end - start
    labels = data["labels"]
    assert labels["name"] == "synthetic-values" and labels["threshold"] == 0.0
    assert len(labels["value"]) == len(labels["indicator"]) == length
    assert data["label"] == {"outcome": "unlabelled", "version": 0, "history": data["label"]["history"]}
    assert client.get(f"/api/episodes/{meta.episode_id}", params={"labels": ""}).json()["labels"] is None
    missing = client.get(f"/api/episodes/{meta.episode_id}", params={"labels": "nope"})
    assert missing.status_code == 400 and "no label set 'nope'" in missing.json()["error"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/episodes/..%2Fstore.json",
        "/api/episodes/%2E%2E",
        "/api/episodes/..%2F..%2Fetc%2Fpasswd/video",
        "/episode/..%2Fstore.json",
        "/api/episodes/.hidden/label",
        "/static/..%2Fapp.py",
        "/static/../../store.json",
    ],
)
def test_path_tricks_get_4xx_and_never_a_file(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert 400 <= response.status_code < 500
    assert "recap-episode-store" not in response.text and "import" not in response.text


def test_unknown_episode_gets_404(client: TestClient) -> None:
    for path in (
        "/api/episodes/nope",
        "/api/episodes/nope/video",
        "/api/episodes/nope/neighbours",
        "/episode/nope",
    ):
        response = client.get(path)
        assert response.status_code == 404 and "no episode 'nope'" in response.json()["error"]
    assert _label(client, "nope", outcome="success", version=0).status_code == 404


def test_neighbours_follow_the_list_order(client: TestClient, store: EpisodeStore) -> None:
    ids = [m.episode_id for m in store.episodes()]
    store.set_success(ids[2], True)
    near = client.get(f"/api/episodes/{ids[1]}/neighbours").json()
    assert (near["previous"], near["next"], near["next_unlabelled"], near["position"]) == (
        ids[0],
        ids[2],
        ids[3],
        1,
    )
    backwards = client.get(f"/api/episodes/{ids[1]}/neighbours", params={"order": "desc"}).json()
    assert (backwards["previous"], backwards["next"]) == (ids[2], ids[0])
    assert backwards["next_unlabelled"] == ids[0]
    last = client.get(f"/api/episodes/{ids[-1]}/neighbours").json()
    assert last["next"] is None and last["next_unlabelled"] == ids[0]  # wraps round


def test_video_is_webm_with_one_frame_per_step_and_answers_ranges(
    client: TestClient, store: EpisodeStore
) -> None:
    eid = store.episodes()[0].episode_id
    length = store.meta(eid).length
    response = client.get(f"/api/episodes/{eid}/video")
    assert response.status_code == 200 and response.headers["content-type"] == "video/webm"
    with av.open(io.BytesIO(response.content)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == length and (frames[0].width, frames[0].height) == (96, 32)  # two 48-wide cameras
    # a white square crosses each camera left to right: in the first frame it sits at each camera's left edge
    first = frames[0].to_ndarray(format="rgb24")
    assert first[16, 1:6].min() > 200 and first[16, 49:54].min() > 200
    assert first[16, 20:44].max() < 230 and first[16, 68:92].max() < 230
    assert (store.root / "cache" / "review" / "video" / f"{eid}.webm").is_file()
    part = client.get(f"/api/episodes/{eid}/video", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100 and part.content == response.content[:100]


def test_a_store_without_cameras_has_pages_but_no_video(tmp_path) -> None:
    store = fill_store(tmp_path / "store", 2, 15, spec=synthetic_spec(cameras=0), with_label_set=False)
    eid = store.episodes()[0].episode_id
    with TestClient(create_app(store, reviewer="t"), base_url=LOCAL) as c:
        data = c.get(f"/api/episodes/{eid}").json()
        assert data["cameras"] == [] and data["labels"] is None and data["label_sets"] == []
        video = c.get(f"/api/episodes/{eid}/video")
        assert video.status_code == 404 and "records no cameras" in video.json()["error"]


def test_label_round_trip_and_stale_refusal(client: TestClient, store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    saved = _label(client, eid, outcome="failure", version=0, note="slipped", failure_time=1.2).json()
    assert saved["outcome"] == "failure" and saved["version"] == 1
    assert store.meta(eid).success is False
    event = store.success_history(eid)[-1]
    assert (event["by"], event["note"], event["failure_time"]) == ("tester", "slipped", 1.2)
    stale = _label(client, eid, outcome="success", version=0)
    assert stale.status_code == 409 and "changed since you loaded it" in stale.json()["error"]
    assert store.meta(eid).success is False
    assert (
        _label(client, eid, outcome="unlabelled", version=1, reviewer="ana").json()["outcome"] == "unlabelled"
    )
    assert store.success_history(eid)[-1]["by"] == "ana"
    history = client.get("/api/history").json()["history"]
    assert [(e["episode_id"], e["success"]) for e in history] == [(eid, None), (eid, False)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"outcome": "great", "version": 0}, "outcome: expected one of"),
        ({"outcome": True, "version": 0}, "outcome: expected one of"),
        ({"outcome": "success"}, "version: the label version"),
        ({"outcome": "success", "version": "0"}, "expected_version: expected an integer"),
        ({"outcome": "success", "version": 0, "failure_time": 1.0}, "only with success=False"),
        ({"outcome": "failure", "version": 0, "failure_time": 10.0}, "failure_time: expected 0"),
        ({"outcome": "success", "version": 0, "extra": 1}, "unknown fields ['extra']"),
        ({"outcome": "success", "version": 0, "reviewer": "x" * 200}, "reviewer: expected a name"),
        ({"outcome": "success", "version": 0, "note": 5}, "note: expected text"),
        (["success"], "must be a JSON object"),
    ],
)
def test_bad_label_requests_get_400_and_write_nothing(
    client: TestClient, store: EpisodeStore, body: object, message: str
) -> None:
    eid = store.episodes()[0].episode_id
    response = client.post(f"/api/episodes/{eid}/label", json=body)
    assert response.status_code == 400 and message in response.json()["error"]
    assert store.label_version(eid) == 0


def test_label_needs_a_json_body(client: TestClient, store: EpisodeStore) -> None:
    eid = store.episodes()[0].episode_id
    form = client.post(f"/api/episodes/{eid}/label", data={"outcome": "success", "version": "0"})
    assert form.status_code == 415  # a cross-site form post cannot label
    broken = client.post(
        f"/api/episodes/{eid}/label", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and "not JSON" in broken.json()["error"]
    assert client.get(f"/api/episodes/{eid}/label").status_code == 405
    assert store.label_version(eid) == 0


def test_loopback_server_refuses_other_host_names(store: EpisodeStore) -> None:
    """A page on another site that rebinds its name to 127.0.0.1 still sends its own Host header."""
    with TestClient(create_app(store, reviewer="t"), base_url="http://evil.example") as c:
        response = c.get("/api/episodes")
        assert response.status_code == 403 and "only on localhost" in response.text
    with TestClient(create_app(store, reviewer="t"), base_url="http://localhost:8765") as c:
        assert c.get("/api/episodes").status_code == 200


def test_token_is_required_beyond_loopback(store: EpisodeStore) -> None:
    app = create_app(store, reviewer="t", token="s3cret")
    with TestClient(app, base_url="http://review.lab:8765") as c:
        for path in ("/", "/api/episodes", "/static/list.js", "/api/history"):
            response = c.get(path)
            assert response.status_code == 401 and "needs its token" in response.text
        assert c.get("/api/episodes", headers={"X-Recap-Token": "wrong"}).status_code == 401
        assert c.get("/api/episodes", headers={"X-Recap-Token": "s3cret"}).status_code == 200
        assert c.get("/login", params={"token": "nope"}).status_code == 401
        login = c.get("/login", params={"token": "s3cret"}, follow_redirects=False)
        assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
        assert c.get("/api/episodes").status_code == 200  # the cookie now carries the token


def test_concurrent_label_requests_from_threads(store: EpisodeStore) -> None:
    """Reviewers posting at once on a real server: each accepted label was based on the latest version."""
    eid = store.episodes()[0].episode_id
    accepted: list[int] = []
    refused = []

    def post(version: int) -> None:
        request = urllib.request.Request(
            f"{url}/api/episodes/{eid}/label",
            data=json.dumps({"outcome": "success", "version": version}).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                accepted.append(json.loads(r.read())["version"])
        except urllib.error.HTTPError as exc:
            refused.append(exc.code)

    with BackgroundServer(create_app(store, reviewer="t")) as url:
        threads = [threading.Thread(target=post, args=(0,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert accepted == [1] and refused == [409] * 7  # exactly one writer wins version 0
    assert store.label_version(eid) == 1


def test_loop_iteration_column(tmp_path) -> None:
    """The list shows, filters and sorts by the loop iteration recorded with each episode."""
    import attrs
    import numpy as np

    from recap.data.schema import EpisodeMeta
    from recap.testing.synthetic_store import synthetic_steps

    if "iteration" not in attrs.fields_dict(EpisodeMeta):
        pytest.skip("this recap's EpisodeMeta records no loop iteration yet")
    spec = synthetic_spec(cameras=0)
    store = EpisodeStore.create(tmp_path / "store", spec)
    rng = np.random.default_rng(0)
    for iteration in (1, None, 0):
        store.add(synthetic_steps(spec, 10, rng), task="t", source="autonomous", iteration=iteration)
    with TestClient(create_app(store, reviewer="t"), base_url=LOCAL) as c:
        page = c.get("/api/episodes", params={"sort": "iteration"}).json()
        assert [r["iteration"] for r in page["rows"]] == [0, 1, None]
        assert dict(map(tuple, page["facets"]["iteration"])) == {"": 1, "0": 1, "1": 1}
        first = c.get("/api/episodes", params={"iteration": "1"}).json()["rows"]
        assert len(first) == 1 and c.get(f"/api/episodes/{first[0]['episode_id']}").json()["iteration"] == 1
