"""`recap serve` driven by the real openpi-client (its own virtualenv; see openpi_env.py)."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest
import torch
from tensordict import NonTensorStack, TensorDict

from recap.data import keys

from .conftest import API_KEY, DEPLOYMENT, PROMPT, SPEC, Served, make_policy


def _in_process(inputs_path, i: int, noise: bool) -> np.ndarray:
    """The same checkpoint's actions in this process for observation ``i`` (the served defaults)."""
    data = np.load(inputs_path)
    policy = make_policy()
    obs = TensorDict(
        {
            keys.STATE: torch.from_numpy(data["state"][i]),
            keys.image_key("cam_high"): torch.from_numpy(data["cam_high"][i]).permute(1, 2, 0),
        },
        batch_size=[],
    ).unsqueeze(0)
    obs[keys.TASK] = NonTensorStack.from_list([PROMPT])
    if noise:
        out = policy.sample_flow(
            obs, DEPLOYMENT.indicator, DEPLOYMENT.guidance, noise=torch.from_numpy(data["noise"][i])[None]
        )
    else:
        out = policy.sample_actions(obs, DEPLOYMENT.indicator, DEPLOYMENT.guidance)
    return out[0].numpy()


def test_metadata_infer_and_chunk_broker(served, drive, inputs):
    arrays, info = drive("basic", served.url, inputs=str(inputs))
    meta = info["metadata"]
    assert meta["action_horizon"] == 10 and meta["action_dim"] == 14 and meta["state_dim"] == 14
    assert meta["control_rate_hz"] == SPEC.fps and meta["policy_id"].startswith("policy-")
    assert meta["cameras"] == {"cam_high": [3, 24, 32]}
    assert meta["recap"]["indicator"] == "positive" and meta["recap"]["guidance"] == 1.5
    # same observation and initial noise: the served actions are the in-process policy's
    expected = _in_process(inputs, 0, noise=True)
    assert arrays["actions"].shape == (10, 14)
    np.testing.assert_allclose(arrays["actions"], expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(arrays["actions_again"], expected, atol=1e-5, rtol=0)
    # without noise the served defaults (indicator positive, beta 1.5) apply; the noise above mattered
    plain = _in_process(inputs, 1, noise=False)
    assert not np.allclose(_in_process(inputs, 1, noise=True), plain, atol=1e-3)
    # ActionChunkBroker: one row per call, the chunk's rows in order, a new inference after H rows
    np.testing.assert_allclose(arrays["broker"][:10], plain, atol=1e-5, rtol=0)
    np.testing.assert_allclose(arrays["broker"][10], plain[0], atol=1e-5, rtol=0)
    timing = info["timing"]
    assert timing["server_timing"]["infer_ms"] >= timing["policy_timing"]["infer_ms"] > 0
    assert "prev_total_ms" not in timing["server_timing"]  # the first request has no previous one
    assert info["second_timing"]["prev_total_ms"] > 0


def test_health_check(served):
    http_url = served.url.replace("ws://", "http://") + "/healthz"
    with urllib.request.urlopen(http_url, timeout=10) as response:
        assert response.status == 200 and response.read() == b"OK\n"


def test_api_key_is_required_when_set(checkpoint, drive, inputs):
    server = Served(checkpoint, env={"RECAP_API_KEY": API_KEY})
    try:
        _, outcomes = drive("api_key", server.url, inputs=str(inputs), api_key=API_KEY)
    finally:
        server.stop()
    assert "401" in outcomes["none"] and "401" in outcomes["wrong"]
    assert outcomes["right"] == "ok"


@pytest.mark.slow
def test_load_eight_clients_garbage_does_not_disturb(served, drive, inputs, capsys):
    """8 clients x 200 requests: every reply is its own request's chunk; a garbage sender gets errors only."""
    arrays, info = drive("load", served.url, inputs=str(inputs), clients=8, requests=200, garbage=20)
    assert info["errors"] == []
    assert info["garbage"] == {"errors_seen": 20, "unexpected": []}
    expected = np.stack([_in_process(inputs, i, noise=False) for i in range(8)])
    latencies = []
    for c in range(8):
        seen, actions = arrays[f"seen_{c}"], arrays[f"actions_{c}"]
        assert len(seen) == 200 and actions.shape == (200, 10, 14)
        np.testing.assert_allclose(actions, expected[seen], atol=1e-4, rtol=0)
        latencies.append(arrays[f"latency_{c}"])
    lat = np.concatenate(latencies)
    with capsys.disabled():  # the figures are part of what this test reports
        print(
            f"\nload: 1600 requests in {info['wall_s']:.1f} s, p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms"
        )
