"""Training windows: (observation at t, action chunk t..t+C-1, task, labels at t) drawn from a store view.

Sampling is uniform over all steps of the view, with replacement, and a pure function of ``(seed, step)``:
the global batch of step ``k`` is ``PCG64([seed, k]).integers(0, N, B)`` over the N steps of the view, so a
resumed or re-sharded run sees exactly the same data. Rank ``r`` of ``w`` gets rows ``r::w`` and only reads
those rows' frames.

Low-dimensional data of the whole view (state, actions, flags, labels) is gathered into RAM once at
construction (bytes per step: 4 * (S + A + E) + a few), so a batch's action chunks are one vectorised
gather; frames are read from the episodes' memory maps, or decoded from their videos (only the frames a batch
needs, by frame index; each process keeps its own decoders for the most recently read episodes, so DataLoader
workers from ``batch_loader`` open their own). Chunk steps past the episode end repeat the last action and are
flagged in ``action_is_pad``.

torchrl's ``SliceSampler`` draws contiguous slices inside trajectories from a replay-buffer storage; it would
need every frame copied into that storage and draws from torch's global RNG, so windows here are indexed
directly (the benchmark compares against plain numpy memmap reads).
"""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tensordict import NonTensorData, NonTensorStack, TensorDict
from torch.utils.data import DataLoader, Dataset

from recap.data import keys
from recap.data.schema import EpisodeMeta
from recap.data.store import EpisodeStore
from recap.errors import ConfigError, LabelError

#: episodes whose frame readers (memory maps, open video decoders) a process keeps; older ones are closed
OPEN_EPISODES = 32


def text(batch: TensorDict, key: str) -> list[str]:
    """The strings of a text entry (``task``, ``subtask``) of a batch, one per row."""
    value = batch.get(key)
    n = batch.batch_size[0] if batch.batch_size else 1
    if isinstance(value, NonTensorStack):
        return [str(v) for v in value.tolist()]
    if isinstance(value, NonTensorData):
        value = value.data
    if isinstance(value, str):
        return [value] * n
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    raise TypeError(f"batch[{key!r}] is not text: found {type(value).__name__}")


class WindowSampler:
    """Deterministic batches of training windows over a view of an ``EpisodeStore``.

    Args:
        store: the store to read.
        chunk_size: C, the length of the action chunk a_{t:t+C}.
        batch_size: B, rows of the global batch.
        seed: together with the step, fixes the batch.
        episodes: the view (default: every readable episode of the store).
        label_set: a label set (``recap label``) whose ``advantage`` / ``indicator`` at t are added.
        cameras: cameras to read (default: all cameras of the spec).
        label_columns: per-step labels computed by the caller, ``{episode_id: {key: [T]}}`` for every episode
            of the view; each key's value at t is added (training passes ``mc_return`` this way, computed
            by ``recap.train.returns`` above this layer).
    """

    def __init__(
        self,
        store: EpisodeStore,
        *,
        chunk_size: int,
        batch_size: int,
        seed: int = 0,
        episodes: Sequence[EpisodeMeta] | None = None,
        label_set: str | None = None,
        cameras: tuple[str, ...] | None = None,
        label_columns: Mapping[str, Mapping[str, np.ndarray | torch.Tensor]] | None = None,
    ) -> None:
        if chunk_size < 1 or batch_size < 1:
            raise ConfigError(f"chunk_size and batch_size must be >= 1, got {chunk_size} and {batch_size}")
        self.store, self.chunk_size, self.batch_size, self.seed = store, chunk_size, batch_size, seed
        self.episodes = list(store.episodes() if episodes is None else episodes)
        if not self.episodes:
            raise ConfigError(f"the view of {store.root} has no episodes to sample from")
        spec = store.spec
        self.cameras = spec.camera_names if cameras is None else tuple(cameras)
        for cam in self.cameras:
            spec.camera(cam)  # raises naming the known cameras
        self.label_set = label_set
        self.label_columns = label_columns
        lengths = np.array([m.length for m in self.episodes], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        self.lengths = lengths
        self.total_steps = int(lengths.sum())
        self._frames: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
        self._gather_low_dim()

    def __len__(self) -> int:
        return self.total_steps

    def _gather_low_dim(self) -> None:
        spec = self.store.spec
        low = [keys.STATE, keys.ACTION, keys.IS_INTERVENTION] + (
            [keys.ENV_STATE] if spec.env_state_dim else []
        )
        cols: dict[str, list[np.ndarray]] = {k: [] for k in low}
        subtask_ids: list[np.ndarray] = []
        vocab: dict[str, int] = {"": 0}
        tasks: dict[str, int] = {}
        self.episode_task = np.zeros(len(self.episodes), dtype=np.int64)
        for i, m in enumerate(self.episodes):
            arrays = self.store.arrays(m.episode_id)
            for k in low:
                cols[k].append(np.asarray(arrays[k]))
            local = [vocab.setdefault(s, len(vocab)) for s in self.store.subtask_vocab(m.episode_id)]
            if "subtask_index" in arrays:
                subtask_ids.append(np.asarray(local, dtype=np.int64)[np.asarray(arrays["subtask_index"])])
            else:
                subtask_ids.append(np.zeros(m.length, dtype=np.int64))
            self.episode_task[i] = tasks.setdefault(m.task, len(tasks))
        self.low = {k: np.concatenate(v) for k, v in cols.items()}
        self.subtask = np.concatenate(subtask_ids)
        self.subtask_vocab = list(vocab)
        self.task_vocab = list(tasks)
        # One read-only NonTensorData per distinct string, shared by every batch: building a fresh one per
        # row (NonTensorStack.from_list) cost more than reading the frames.
        self._task_text = [NonTensorData(s) for s in self.task_vocab]
        self._subtask_text = [NonTensorData(s) for s in self.subtask_vocab]
        self.labels: dict[str, np.ndarray] = {}
        if self.label_columns is not None:
            names = {k for per in self.label_columns.values() for k in per}
            self.labels.update(
                self._join(
                    self.label_columns, sorted(names), "label_columns", "pass a column for each of them"
                )
            )
        if self.label_set is not None:
            joined = self._join(
                self.store.read_labels(self.label_set),
                (keys.ADVANTAGE, keys.INDICATOR),
                f"label set {self.label_set!r}",
                "run `recap label` again to cover them, or restrict the sampler's episodes to labelled ones",
            )
            self.labels[keys.ADVANTAGE] = joined[keys.ADVANTAGE].astype(np.float32)
            self.labels[keys.INDICATOR] = joined[keys.INDICATOR].astype(bool)

    def _join(
        self, per_episode: Mapping[str, Mapping[str, Any]], names: Sequence[str], what: str, fix: str
    ) -> dict[str, np.ndarray]:
        """Columns ``names`` of ``{episode_id: {name: [T]}}`` concatenated in the view's step order."""
        missing = [m.episode_id for m in self.episodes if m.episode_id not in per_episode]
        if missing:
            raise LabelError(
                f"{what} has no labels for {len(missing)} episode(s) of the view, e.g. {missing[:3]}; {fix}"
            )
        out: dict[str, list[np.ndarray]] = {k: [] for k in names}
        for m in self.episodes:
            per = per_episode[m.episode_id]
            for k in names:
                if k not in per:
                    raise LabelError(f"{what}, episode {m.episode_id}: no {k!r} (has {sorted(per)})")
                column = np.asarray(per[k])
                if column.shape[:1] != (m.length,):
                    raise LabelError(
                        f"{what}, episode {m.episode_id}: {k!r} has shape {column.shape}, expected "
                        f"({m.length},) (one value per step)"
                    )
                out[k].append(column)
        return {k: np.concatenate(v) for k, v in out.items()}

    def _episode_frames(self, row: int) -> dict[str, Any]:
        frames = self._frames.get(row)
        if frames is None:
            arrays = self.store.arrays(self.episodes[row].episode_id)
            frames = {cam: arrays[keys.image_key(cam)] for cam in self.cameras}
            self._frames[row] = frames
            if len(self._frames) > OPEN_EPISODES:
                self._close_readers(self._frames.popitem(last=False)[1])
        else:
            self._frames.move_to_end(row)
        return frames

    @staticmethod
    def _close_readers(frames: dict[str, Any]) -> None:
        for reader in frames.values():
            if hasattr(reader, "close"):  # video decoders; memory maps close when dropped
                reader.close()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to a spawned DataLoader worker) without open readers: each process opens its own."""
        state = dict(self.__dict__)
        state["_frames"] = collections.OrderedDict()
        return state

    def indices(self, step: int) -> np.ndarray:
        """Global step indices (into the view's concatenated steps) of the global batch of ``step``."""
        rng = np.random.Generator(np.random.PCG64([self.seed, step]))
        return rng.integers(0, self.total_steps, self.batch_size)

    def batch(self, step: int, rank: int = 0, world_size: int = 1) -> TensorDict:
        """Rows ``rank::world_size`` of the global batch of ``step`` (see ``recap.data.keys``)."""
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size={world_size}), got {rank}")
        g = self.indices(step)[rank::world_size]
        return self.gather(g)

    def gather(self, g: np.ndarray) -> TensorDict:
        """The windows starting at global step indices ``g``."""
        ep = np.searchsorted(self.starts, g, side="right") - 1
        start, length = self.starts[ep], self.lengths[ep]
        t = g - start
        k = np.arange(self.chunk_size)
        chunk = t[:, None] + k[None, :]
        is_pad = chunk >= length[:, None]
        chunk_g = start[:, None] + np.minimum(chunk, length[:, None] - 1)
        b = len(g)
        out: dict[str, torch.Tensor] = {
            keys.STATE: torch.from_numpy(self.low[keys.STATE][g]),
            keys.ACTION: torch.from_numpy(self.low[keys.ACTION][chunk_g]),
            keys.ACTION_IS_PAD: torch.from_numpy(is_pad),
            keys.IS_INTERVENTION: torch.from_numpy(self.low[keys.IS_INTERVENTION][g]),
            keys.EPISODE_INDEX: torch.from_numpy(ep.astype(np.int64)),
            keys.FRAME_INDEX: torch.from_numpy(t.astype(np.int64)),
        }
        if keys.ENV_STATE in self.low:
            out[keys.ENV_STATE] = torch.from_numpy(self.low[keys.ENV_STATE][g])
        for key, values in self.labels.items():
            out[key] = torch.from_numpy(values[g])
        images = {
            cam: np.empty((b, *self.store.spec.camera(cam).shape), dtype=np.uint8) for cam in self.cameras
        }
        if self.cameras and b:
            order = np.argsort(ep, kind="stable")
            for rows in np.split(order, np.flatnonzero(np.diff(ep[order])) + 1):  # one episode at a time
                frames = self._episode_frames(int(ep[rows[0]]))
                for cam in self.cameras:
                    images[cam][rows] = frames[cam][t[rows]]
        for cam, img in images.items():
            out[keys.image_key(cam)] = torch.from_numpy(img)
        batch = TensorDict(out, batch_size=[b])
        batch[keys.TASK] = NonTensorStack(*[self._task_text[i] for i in self.episode_task[ep]])
        batch[keys.SUBTASK] = NonTensorStack(*[self._subtask_text[i] for i in self.subtask[g]])
        return batch


class _StepBatches(Dataset):
    """Item ``i`` is the batch of step ``steps[i]`` (rows ``rank::world_size``)."""

    def __init__(self, sampler: WindowSampler, steps: range, rank: int, world_size: int) -> None:
        self.sampler, self.steps, self.rank, self.world_size = sampler, steps, rank, world_size

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, i: int) -> TensorDict:
        return self.sampler.batch(self.steps[i], self.rank, self.world_size)


def _whole_batch(batch: TensorDict) -> TensorDict:
    return batch


def batch_loader(
    sampler: WindowSampler,
    steps: range,
    *,
    num_workers: int = 2,
    rank: int = 0,
    world_size: int = 1,
    prefetch_factor: int = 2,
) -> DataLoader:
    """A ``DataLoader`` yielding the batches of ``steps`` in order, read (and decoded) by ``num_workers``
    worker processes; the batches equal ``sampler.batch(step, rank, world_size)``."""
    if num_workers < 0:
        raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
    return DataLoader(
        _StepBatches(sampler, steps, rank, world_size),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_whole_batch,
        prefetch_factor=prefetch_factor if num_workers else None,
        persistent_workers=False,
    )
