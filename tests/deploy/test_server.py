"""The policy server in-process: request validation, batching, Recap fields, failure behaviour."""

from __future__ import annotations

import threading
import time
from itertools import pairwise

import numpy as np
import pytest
import torch
from tensordict import NonTensorStack, TensorDict
from websockets.sync.client import connect

from recap.data import keys
from recap.deploy import PolicyServer, PolicyService, ProtocolError, RemotePolicy, connect_policy
from recap.deploy.codec import pack, unpack
from recap.errors import ConfigError, PolicyUnavailableError
from recap.protocols import FlowPolicy, Inpainting
from recap.rollout import Execution, run_episode

from .clock import SPEC as CLOCK_SPEC
from .clock import ClockBackend, ClockPolicy
from .conftest import DEPLOYMENT, PROMPT, SPEC, make_policy


@pytest.fixture
def server():
    with PolicyServer(
        PolicyService(make_policy(), SPEC, deployment=DEPLOYMENT, policy_id="p"), port=0
    ) as srv:
        yield srv


def _request(rng=None, **overrides):
    rng = rng or np.random.default_rng(0)
    request = {
        "state": rng.normal(size=14).astype(np.float32),
        "images": {"cam_high": rng.integers(0, 256, size=(3, 24, 32), dtype=np.uint8)},
        "prompt": PROMPT,
    }
    request.update(overrides)
    return request


def _obs(request) -> TensorDict:
    obs = TensorDict(
        {
            keys.STATE: torch.from_numpy(request["state"]),
            keys.image_key("cam_high"): torch.from_numpy(request["images"]["cam_high"]).permute(1, 2, 0),
        },
        batch_size=[],
    ).unsqueeze(0)
    obs[keys.TASK] = NonTensorStack.from_list([PROMPT])
    return obs


def _error_for(url: str, payload) -> str:
    with connect(url, compression=None, max_size=None) as ws:
        unpack(ws.recv())
        ws.send(payload)
        answer = ws.recv()
    assert isinstance(answer, str)
    return answer


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"\xc1 not msgpack", "not valid msgpack"),
        ("a text frame", "expected a binary msgpack frame"),
        (pack([1, 2]), "must be a msgpack map"),
        (
            pack(_request(state=np.zeros(13, np.float32))),
            "field 'state': expected a float array of shape [14]",
        ),
        (pack(_request(images={"cam_high": np.zeros((3, 24, 32), np.float32)})), "field 'images/cam_high'"),
        (
            pack(_request(images={"cam_high": np.zeros((3, 480, 640), np.uint8)})),
            "shape [3, 24, 32], got uint8 array of shape [3, 480, 640]",
        ),
        (pack(_request(images={})), "field 'images/cam_high' is missing"),
        (pack(_request(wrist=np.zeros(3, np.float32))), "unknown field 'wrist'"),
        (pack(_request(prompt=3)), "field 'prompt'"),
        (pack(_request(recap={"indicator": "maybe"})), "field 'recap/indicator'"),
        (pack(_request(recap={"guidance": "high"})), "field 'recap/guidance'"),
        (pack(_request(recap={"noise": np.zeros((9, 14), np.float32)})), "field 'recap/noise'"),
        (pack(_request(recap={"inpaint": {"frozen": 1, "guided": 2}})), "'recap/inpaint/target' is missing"),
        (
            pack(
                _request(
                    recap={"inpaint": {"target": np.zeros((10, 14), np.float32), "frozen": 5, "guided": 2}}
                )
            ),
            "frozen (5) <= guided (2)",
        ),
        (pack(_request(recap={"temperature": 1.0})), "unknown field 'recap/temperature'"),
    ],
)
def test_malformed_requests_are_refused_by_field_and_others_still_served(server, payload, field):
    good = RemotePolicy(server.url)  # connected before, used after the bad client
    answer = _error_for(server.url, payload)
    assert answer.startswith("invalid request") and field in answer
    request = _request()
    np.testing.assert_allclose(
        good.infer(request)["actions"],
        make_policy().sample_actions(_obs(request), True, 1.5)[0].numpy(),
        atol=1e-5,
    )


def test_codec_refuses_object_arrays_and_inconsistent_data():
    with pytest.raises(ProtocolError, match="dtype object"):
        pack({"x": np.array([object()])})
    bad = {b"__ndarray__": True, b"data": b"\x00" * 7, b"dtype": "<f4", b"shape": [2]}
    with pytest.raises(ProtocolError, match="needs 8 bytes of data, got 7"):
        unpack(pack({"x": bad}))
    assert unpack(pack({"x": np.arange(3, dtype=np.int16)}))["x"].tolist() == [0, 1, 2]


def test_binding_beyond_loopback_needs_a_key():
    service = PolicyService(make_policy(), SPEC)
    with pytest.raises(ConfigError, match="set an API key"):
        PolicyServer(service, host="0.0.0.0")
    PolicyServer(service, host="0.0.0.0", api_key="k")  # allowed with a key (not started)


def test_recap_fields_select_indicator_guidance_and_noise(server):
    client = connect_policy(server.url)
    assert isinstance(client, FlowPolicy) and client.deployment == DEPLOYMENT
    policy, request = make_policy(), _request()
    obs, noise = _obs(request), torch.randn(1, 10, 14)
    for indicator, guidance in [(None, 1.0), (False, 1.0), (True, 2.5)]:
        remote = client.sample_flow(obs, indicator, guidance, noise=noise)
        local = policy.sample_flow(obs, indicator, guidance, noise=noise)
        torch.testing.assert_close(remote, local, atol=1e-5, rtol=0)
    a = client.sample_flow(obs, True, 1.5, noise=noise)
    b = client.sample_flow(obs, False, 1.5, noise=noise)
    assert (a - b).abs().max() > 1e-3  # the indicator reaches the policy
    target = torch.randn(1, 10, 14)
    inpainting = Inpainting(target, frozen=3, guided=6)
    torch.testing.assert_close(
        client.sample_flow(obs, True, 1.5, noise=noise, inpainting=inpainting),
        policy.sample_flow(obs, True, 1.5, noise=noise, inpainting=inpainting),
        atol=1e-5,
        rtol=0,
    )


class _GatedPolicy(ClockPolicy):
    """Blocks its first call until released, so that later requests queue up behind it."""

    def __init__(self):
        super().__init__(8)
        self.gate, self.entered, self.batches = threading.Event(), threading.Event(), []

    def sample_actions(self, obs, indicator=True, guidance=1.0, *, generator=None):
        self.entered.set()
        self.gate.wait(timeout=60)
        self.batches.append(obs.batch_size[0])
        return super().sample_actions(obs, indicator, guidance)


def test_requests_queued_while_busy_are_batched():
    policy = _GatedPolicy()
    with PolicyServer(PolicyService(policy, CLOCK_SPEC), port=0, max_batch=3) as server:
        replies: dict[int, np.ndarray] = {}

        def ask(tick: int) -> None:
            state = np.zeros(14, np.float32)
            state[1] = tick
            replies[tick] = RemotePolicy(server.url).infer({"state": state, "prompt": "clock"})["actions"]

        first = threading.Thread(target=ask, args=(100,))
        first.start()
        assert policy.entered.wait(timeout=60)
        others = [threading.Thread(target=ask, args=(t,)) for t in range(4)]
        for t in others:
            t.start()
        deadline = time.monotonic() + 60
        while server.queued < 4 and time.monotonic() < deadline:  # waits for the queue, the outcome is fixed
            time.sleep(0.01)
        policy.gate.set()
        for t in [first, *others]:
            t.join(timeout=60)
    assert policy.batches == [1, 3, 1]  # max_batch caps the second batch
    assert sorted(replies) == [0, 1, 2, 3, 100]
    for tick, actions in replies.items():
        assert actions[:, 1].tolist() == [
            float(tick + i) for i in range(8)
        ]  # each reply is its own request's


def test_server_killed_mid_episode_holds_then_resumes_in_order():
    """The arm holds while the server is down, the runner reconnects, nothing runs twice or out of order."""
    service = PolicyService(ClockPolicy(8), CLOCK_SPEC, policy_id="clock")
    server = PolicyServer(service, port=0).start()

    def outage(tick: int) -> None:
        if tick == 15:
            server.stop()
        if tick == 40:
            server.start()

    remote = connect_policy(server.url)
    backend = ClockBackend(time_limit=90, on_tick=outage)
    try:
        record = run_episode(
            backend, remote, task="clock", chunk_execute=4, execution=Execution("naive", delay_ticks=2)
        )
    finally:
        server.stop()
    log, stamps = record.execution, torch.stack(backend.executed)[:, 1].tolist()
    assert len(log.outages) == 1
    lost, back = log.outages[0]
    assert (
        15 <= lost < 40 <= back
    )  # lost at the first request after the kill, back at the first after restart
    held = set(log.held_ticks)
    assert any(lost <= t < back for t in held)
    for t in held - set(range(2)):
        assert stamps[t] == stamps[t - 1]  # holding: the last action again
    executed = [s for t, s in enumerate(stamps) if t not in held]
    assert all(b > a for a, b in pairwise(executed))  # never twice, never backwards
    # after the outage the first chunk starts afresh; from the next one on the action for tick t runs at t
    joined = [c.start_tick for c in log.chunks if c.request_tick >= back][1]
    assert stamps[joined:] == [float(t) for t in range(joined, 90)]


def test_a_reply_that_does_not_come_counts_as_a_lost_server():
    policy = _GatedPolicy()  # never answers until released
    with PolicyServer(PolicyService(policy, CLOCK_SPEC), port=0) as server:
        remote = RemotePolicy(server.url, reply_timeout_s=0.2)
        with pytest.raises(PolicyUnavailableError, match="lost the policy server"):
            remote.infer({"state": np.zeros(14, np.float32), "prompt": "clock"})
        policy.gate.set()
        state = np.zeros(14, np.float32)
        state[1] = 7
        assert remote.infer({"state": state, "prompt": "clock"})["actions"][0, 1] == 7  # reconnected, fresh


def test_a_port_in_use_is_reported():
    service = PolicyService(ClockPolicy(8), CLOCK_SPEC)
    with (
        PolicyServer(service, port=0) as first,
        pytest.raises(ConfigError, match=f"cannot serve on 127.0.0.1:{first.port}"),
    ):
        PolicyServer(service, port=first.port).start()
