"""Drives a policy server with the real openpi-client; runs inside the openpi-client virtualenv (numpy < 2).

    python openpi_driver.py SPEC.json OUT.npz

SPEC.json: {"command": "basic" | "api_key" | "load", "url": ..., "api_key": ..., "inputs": INPUTS.npz, ...}.
INPUTS.npz holds ``state`` [N, S], ``cam_high`` [N, 3, H, W] uint8 and optionally ``noise`` [N, H, A].
Results go to OUT.npz (arrays) and OUT.npz.json (everything else). It imports nothing from recap.
"""

import json
import sys
import threading
import time

import numpy as np
import websockets.sync.client
from openpi_client import action_chunk_broker, msgpack_numpy, websocket_client_policy


def observation(inputs, i, prompt, with_noise=False):
    obs = {"state": inputs["state"][i], "images": {"cam_high": inputs["cam_high"][i]}, "prompt": prompt}
    if with_noise:
        obs["recap"] = {"noise": inputs["noise"][i]}
    return obs


def basic(spec, inputs):
    client = websocket_client_policy.WebsocketClientPolicy(spec["url"], api_key=spec.get("api_key"))
    metadata = client.get_server_metadata()
    reply = client.infer(observation(inputs, 0, spec["prompt"], with_noise=True))
    horizon = int(metadata["action_horizon"])
    broker = action_chunk_broker.ActionChunkBroker(client, action_horizon=horizon)
    steps = [broker.infer(observation(inputs, 1, spec["prompt"]))["actions"] for _ in range(horizon + 1)]
    arrays = {"actions": reply["actions"], "broker": np.stack(steps)}
    timing = {"policy_timing": reply["policy_timing"], "server_timing": reply["server_timing"]}
    second = client.infer(observation(inputs, 0, spec["prompt"], with_noise=True))
    arrays["actions_again"] = second["actions"]
    return arrays, {"metadata": metadata, "timing": timing, "second_timing": second["server_timing"]}


def api_key(spec, inputs):
    outcomes = {}
    for name, key in (("none", None), ("wrong", "not-the-key"), ("right", spec["api_key"])):
        try:
            client = websocket_client_policy.WebsocketClientPolicy(spec["url"], api_key=key)
            client.infer(observation(inputs, 0, spec["prompt"]))
            outcomes[name] = "ok"
        except Exception as exc:  # the refusal surfaces as the websockets handshake error
            outcomes[name] = f"{type(exc).__name__}: {exc}"
    return {}, outcomes


def load(spec, inputs):
    clients, requests, distinct = spec["clients"], spec["requests"], len(inputs["state"])
    results = [None] * clients
    errors = []

    def run(c):
        try:
            client = websocket_client_policy.WebsocketClientPolicy(spec["url"])
            seen, first_rows, latencies = [], [], []
            for r in range(requests):
                i = (c * 7 + r) % distinct  # each client walks the observations in its own order
                start = time.perf_counter()
                reply = client.infer(observation(inputs, i, spec["prompt"]))
                latencies.append((time.perf_counter() - start) * 1000.0)
                seen.append(i)
                first_rows.append(np.asarray(reply["actions"]))
            results[c] = (np.array(seen), np.stack(first_rows), np.array(latencies))
        except Exception as exc:
            errors.append(f"client {c}: {type(exc).__name__}: {exc}")

    garbage = {"errors_seen": 0, "unexpected": []}

    def vandal():
        rng = np.random.default_rng(0)
        for _ in range(spec["garbage"]):
            try:
                with websockets.sync.client.connect(spec["url"], compression=None, max_size=None) as ws:
                    msgpack_numpy.unpackb(ws.recv())
                    ws.send(rng.integers(0, 256, size=64, dtype=np.uint8).tobytes())
                    answer = ws.recv()
                    if isinstance(answer, str) and "invalid request" in answer:
                        garbage["errors_seen"] += 1
                    else:
                        garbage["unexpected"].append(repr(answer)[:200])
            except websockets.ConnectionClosed:
                garbage["unexpected"].append("closed without an error text")

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    threads.append(threading.Thread(target=vandal))
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        return {}, {"errors": errors}
    arrays = {}
    for c, (seen, rows, lat) in enumerate(results):
        arrays[f"seen_{c}"], arrays[f"actions_{c}"], arrays[f"latency_{c}"] = seen, rows, lat
    return arrays, {"errors": [], "garbage": garbage, "wall_s": wall}


if __name__ == "__main__":
    spec_path, out_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as fh:
        spec = json.load(fh)
    inputs = dict(np.load(spec["inputs"]))
    arrays, info = {"basic": basic, "api_key": api_key, "load": load}[spec["command"]](spec, inputs)
    np.savez(out_path, **arrays)
    with open(out_path + ".json", "w") as fh:
        json.dump(info, fh, default=float)
