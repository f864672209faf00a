"""The store-labelling pipeline and value training from a store, with a tiny in-test estimator."""

from __future__ import annotations

import pytest
import torch

from recap.builtins.labeler import RecapLabelerConfig
from recap.data import EpisodeStore, keys
from recap.errors import LabelError
from recap.testing.registry import process_registry
from recap.train import TrainerConfig, load_value, value_model_id
from recap.train.labeling import label_store, observation, predict_values
from recap.train.value import train_value

from .tiny_value import TASK, TinyValueConfig, make_store, registry

FAST = TrainerConfig(steps=30, lr=1e-2, warmup_steps=2, checkpoint_every=15, log_every=10, progress=False)


@pytest.fixture(scope="module")
def reg():
    r = registry()
    with process_registry(r):
        yield r


@pytest.fixture(scope="module")
def trained(tmp_path_factory, reg):
    root = tmp_path_factory.mktemp("trained")
    store = make_store(root / "store")
    result = train_value(store, value=TinyValueConfig(), trainer=FAST, out_dir=root / "run", batch_size=32)
    return store, result.checkpoint


def test_train_value_writes_a_loadable_checkpoint(trained, reg):
    store, ckpt = trained
    est = load_value(ckpt, reg)
    ep = store.load(store.episodes()[0].episode_id)
    v = est.predict(observation(ep.steps, TASK))["value"]
    assert v.shape == (ep.meta.length,) and (v <= 0).all() and (v >= -1).all()
    assert (ckpt.parent / "train" / "metrics.jsonl").exists()
    assert (ckpt.parent / "train" / "resolved_config.toml").exists() is False  # none given in-process


def test_batched_prediction_equals_frame_by_frame_across_episode_boundaries(trained, reg):
    store, ckpt = trained
    est = load_value(ckpt, reg)
    eps = [(m.episode_id, observation(store.load(m.episode_id).steps, m.task)) for m in store.episodes()[:3]]
    a = predict_values(est, eps, batch_size=17, progress=False)  # 17 does not divide any episode length
    b = predict_values(est, eps, batch_size=1, progress=False)
    assert list(a) == [e for e, _ in eps]
    for eid, obs in eps:
        assert a[eid].shape == (obs.batch_size[0],)
        torch.testing.assert_close(a[eid], b[eid])


def test_label_store_writes_a_label_set_keyed_by_the_value_model_and_labeler(trained, reg):
    store, ckpt = trained
    report = label_store(store, ckpt, RecapLabelerConfig(lookahead=5, positive_fraction=0.3), progress=False)
    assert report.label_set.startswith(value_model_id(ckpt) + "-")
    other = label_store(store, ckpt, RecapLabelerConfig(lookahead=5, positive_fraction=0.4), progress=False)
    assert other.label_set != report.label_set  # relabelling differently keeps the first set
    assert {report.label_set, other.label_set} <= set(store.label_sets())
    assert report.label_set in store.label_sets()
    labels = store.read_labels(report.label_set)
    assert set(labels) == {m.episode_id for m in store.episodes()}
    for m in store.episodes():
        assert set(labels[m.episode_id]) == {"value", "mc_return", "advantage", "indicator"}
        assert labels[m.episode_id]["advantage"].shape == (m.length,)
    meta = store.label_set_metadata(report.label_set)["metadata"]
    assert meta["thresholds"][TASK] == pytest.approx(report.thresholds[TASK])
    assert meta["value_model"] == value_model_id(ckpt)
    # about 30% positive before forcing, and every intervention step positive
    assert report.positive_fraction[TASK] == pytest.approx(0.3, abs=0.02)
    first = store.episodes()[0]
    flags = store.load(first.episode_id).steps[keys.IS_INTERVENTION]
    assert flags.sum() == 5 and labels[first.episode_id]["indicator"][flags].all()


def test_unlabelled_episodes_are_refused_or_skipped(tmp_path, reg):
    store = make_store(tmp_path / "store", episodes_per_kind=1, unlabelled=2)
    with pytest.raises(LabelError, match="recap data label-success") as err:
        train_value(store, value=TinyValueConfig(), trainer=FAST, out_dir=tmp_path / "run", batch_size=16)
    missing = [m.episode_id for m in store.episodes(success=None)]
    assert all(eid in str(err.value) for eid in missing) and "--skip-unlabelled" in str(err.value)
    result = train_value(store, value=TinyValueConfig(), trainer=FAST, out_dir=tmp_path / "run", batch_size=16,
                         skip_unlabelled=True)  # fmt: skip
    assert sorted(result.skipped_unlabelled) == sorted(missing)
    with pytest.raises(LabelError, match="label-success"):
        label_store(store, result.checkpoint, progress=False)
    report = label_store(
        store, result.checkpoint, RecapLabelerConfig(lookahead=5), skip_unlabelled=True, progress=False
    )
    assert sorted(report.skipped_unlabelled) == sorted(missing)
    assert not set(missing) & set(store.read_labels(report.label_set))


def test_fine_tuning_starts_from_the_given_checkpoint(trained, tmp_path, reg):
    store, ckpt = trained
    zero_lr = TrainerConfig(steps=1, lr=0.0, warmup_steps=0, progress=False)
    tuned = train_value(store, value=TinyValueConfig(hidden=99), trainer=zero_lr, out_dir=tmp_path / "ft",
                        init_from=ckpt, batch_size=8)  # fmt: skip
    a, b = (
        load_value(ckpt, reg),
        load_value(tuned.checkpoint, reg),
    )  # the checkpoint's config wins (hidden=16)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y, msg=k)


def test_store_reopened_sees_labels(trained, reg):
    store, ckpt = trained
    label_store(store, ckpt, RecapLabelerConfig(lookahead=5), name="mine", progress=False)
    assert "mine" in EpisodeStore.open(store.root).label_sets()


@pytest.mark.slow
def test_labelling_on_two_ranks_equals_one_process_exactly(trained, reg):
    """Batches of 7 frames cut across episodes and alternate between the ranks; thresholds use all values."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    store, ckpt = trained
    single = label_store(store, ckpt, RecapLabelerConfig(lookahead=5, positive_fraction=0.3), name="single",
                         batch_size=7, progress=False)  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = Path(__file__).parent / "dist_label.py"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node=2", f"--master-port={port}",
         "--master-addr=127.0.0.1", str(script), str(store.root), str(ckpt), "two", "7"],
        env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = EpisodeStore.open(store.root)
    a, b = store.read_labels("single"), store.read_labels("two")
    assert set(a) == set(b) == {m.episode_id for m in store.episodes()}
    for eid in a:
        for column in ("value", "mc_return", "advantage", "indicator"):
            assert torch.equal(a[eid][column], b[eid][column]), (eid, column)
    meta_a, meta_b = (store.label_set_metadata(n)["metadata"] for n in ("single", "two"))
    assert meta_a["thresholds"] == meta_b["thresholds"] == single.thresholds
    assert meta_a["positive_fraction"] == meta_b["positive_fraction"]


def test_batch_plan_cuts_the_step_stream_every_batch_size_frames():
    from types import SimpleNamespace

    from recap.train.labeling import batch_plan

    metas = [SimpleNamespace(episode_id=e, length=n) for e, n in (("a", 5), ("b", 9), ("c", 3))]
    plan = batch_plan(metas, 4)
    assert plan == [
        [("a", 0, 4)],
        [("a", 4, 5), ("b", 0, 3)],
        [("b", 3, 7)],
        [("b", 7, 9), ("c", 0, 2)],
        [("c", 2, 3)],
    ]
    with pytest.raises(ValueError, match="batch_size"):
        batch_plan(metas, 0)
