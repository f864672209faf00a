"""``EpisodeIndex``: which episodes of a store are committed and readable, and their current metadata.

Committed episodes are the directories under ``episodes/``; each ``meta.json`` is read once (raw episodes
never change). An episode whose ``meta.json`` is unreadable, whose ``data.bin`` has the wrong size, or whose
arrays do not fit the store's spec is recorded as a problem instead of being listed, so one bad episode never
makes the rest unreadable. The current success label comes from the episode's label log when it has one
(re-read only when the log's size or mtime changes).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from recap.data import episode_files as ef
from recap.data import labels as label_files
from recap.data.schema import EpisodeMeta
from recap.data.spec import RobotSpec
from recap.errors import StoreError, did_you_mean

_META_FIELDS = ("task", "source", "policy_version", "robot_id", "fps", "length", "created")
#: Fields added after the first stores were written: absent from their ``meta.json``, read as ``None``.
_PROVENANCE_FIELDS = ("iteration", "stage", "seed")


class EpisodeIndex:
    def __init__(self, root: Path, spec: RobotSpec) -> None:
        self.root, self.spec = root, spec
        self.raw: dict[str, dict[str, Any]] = {}
        self.problems: dict[str, str] = {}
        self._success: dict[str, tuple[tuple[int, int], bool | None]] = {}
        self._success_dir = str(root / "success")

    def refresh(self) -> None:
        """Read the metadata of episodes committed since the last refresh (by any process)."""
        for d in (self.root / "episodes").iterdir():
            eid = d.name
            if eid in self.raw or eid in self.problems or eid.startswith("."):
                continue
            try:
                meta = ef.read_meta(d, eid)
                if meta["episode_id"] != eid:
                    raise StoreError(
                        f"episode {eid}: file {d / ef.META_FILE} names episode {meta['episode_id']}"
                    )
                ef.check_schema(d, meta, self.spec)
                ef.check_size(d, meta)
                self.raw[eid] = meta
            except StoreError as exc:
                self.problems[eid] = str(exc)

    def mark_bad(self, episode_id: str, why: str) -> None:
        self.raw.pop(episode_id, None)
        self.problems[episode_id] = why

    def get(self, episode_id: str) -> dict[str, Any]:
        """The raw ``meta.json`` of a readable episode, or ``StoreError`` saying why not."""
        if episode_id not in self.raw:
            self.refresh()
        if episode_id in self.problems:
            raise StoreError(self.problems[episode_id])
        if episode_id not in self.raw:
            raise StoreError(f"no episode {episode_id!r} in {self.root}.{did_you_mean(episode_id, self.raw)}")
        return self.raw[episode_id]

    def success_log(self, episode_id: str) -> Path:
        return self.root / "success" / f"{episode_id}.jsonl"

    def latest_success(self, eid: str) -> bool | None:
        # a string path and os.stat: this runs once per episode per listing (10,000 Path joins cost 0.2 s)
        path = os.path.join(self._success_dir, eid + ".jsonl")
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return self.raw[eid]["success"]
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._success.get(eid)
        if cached is None or cached[0] != stamp:
            events = label_files.read_success_log(Path(path))
            cached = (stamp, events[-1]["success"] if events else self.raw[eid]["success"])
            self._success[eid] = cached
        return cached[1]

    def to_meta(self, raw: dict[str, Any]) -> EpisodeMeta:
        eid = raw["episode_id"]
        return EpisodeMeta(
            episode_id=eid,
            success=self.latest_success(eid),
            **{f: raw[f] for f in _META_FIELDS},
            **{f: raw.get(f) for f in _PROVENANCE_FIELDS},
        )

    def metas(self) -> list[EpisodeMeta]:
        """Every readable episode, ordered by id (time of recording)."""
        self.refresh()
        return [self.to_meta(self.raw[eid]) for eid in sorted(self.raw)]
