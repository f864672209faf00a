"""The episode list: one summary row per episode, filtered, sorted and paged on the server.

A row is the episode's metadata plus the share of its steps under intervention. That share needs the
episode's arrays, so it is computed once per episode and kept in ``cache/review/summaries.json`` (raw episodes
never change, so the cache never goes stale; deleting it only costs a recomputation).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import numpy as np

from recap.data import keys
from recap.data.atomic_json import write_json_atomic
from recap.data.labels import success_name
from recap.data.schema import EpisodeMeta
from recap.data.store import EpisodeStore
from recap.errors import ConfigError, StoreError

#: Columns the list can be filtered on (exact match; "" matches episodes without a value).
FILTERS = ("task", "source", "policy_version", "iteration", "outcome")
#: Columns the list can be sorted by.
SORTS = ("episode_id", "task", "source", "policy_version", "iteration", "length", "outcome", "intervention")
MAX_PAGE = 500
_SUMMARIES = "summaries.json"


@attrs.frozen
class ListQuery:
    """What the list shows: exact-match filters, one sort column and a page."""

    filters: Mapping[str, str] = attrs.field(factory=dict)
    sort: str = "episode_id"
    descending: bool = False
    offset: int = 0
    limit: int = 50

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        """From URL query parameters (``task=..&outcome=unlabelled&sort=length&order=desc&offset=0&limit=50``)."""
        unknown = sorted(set(params) - {*FILTERS, "sort", "order", "offset", "limit"})
        if unknown:
            raise ConfigError(
                f"unknown list parameters {unknown}; filter on {list(FILTERS)}, or give sort/order/offset/limit"
            )
        sort = params.get("sort", "episode_id")
        if sort not in SORTS:
            raise ConfigError(f"sort: expected one of {list(SORTS)}, found {sort!r}")
        order = params.get("order", "asc")
        if order not in ("asc", "desc"):
            raise ConfigError(f"order: expected 'asc' or 'desc', found {order!r}")
        outcome = params.get("outcome")
        if outcome is not None and outcome not in ("success", "failure", "unlabelled"):
            raise ConfigError(f"outcome: expected success, failure or unlabelled, found {outcome!r}")
        return cls(
            filters={k: params[k] for k in FILTERS if k in params},
            sort=sort,
            descending=order == "desc",
            offset=_int_param(params, "offset", 0, 0, 10**9),
            limit=_int_param(params, "limit", 50, 1, MAX_PAGE),
        )


def _int_param(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}: expected an integer in {low}..{high}, found {raw!r}")
    return value


def _row(meta: EpisodeMeta, intervention: float | None) -> dict[str, Any]:
    iteration = getattr(meta, "iteration", None)  # loop provenance; absent in stores recorded before it
    return {
        "episode_id": meta.episode_id,
        "task": meta.task,
        "source": meta.source,
        "policy_version": meta.policy_version,
        "iteration": iteration,
        "length": meta.length,
        "duration_s": meta.duration_s,
        "outcome": success_name(meta.success),
        "intervention": intervention,
    }


def _sort_key(column: str) -> Callable[[dict[str, Any]], tuple]:
    if column in ("length", "intervention", "iteration"):
        # numbers sort as numbers; rows without a value (no loop iteration recorded) after those with one
        return lambda r: (r[column] is None, r[column] or 0, r["episode_id"])
    return lambda r: (str(r[column]), r["episode_id"])


class Catalog:
    """Summary rows of every episode in a store, with the intervention shares cached on disk."""

    def __init__(self, store: EpisodeStore) -> None:
        self.store = store
        self._cache_path = store.root / "cache" / "review" / _SUMMARIES
        self._lock = threading.Lock()
        self._shares: dict[str, float | None] = self._load_shares()

    def _load_shares(self) -> dict[str, float | None]:
        try:
            data = json.loads(self._cache_path.read_text())
            return {str(k): None if v is None else float(v) for k, v in data["intervention"].items()}
        except (FileNotFoundError, ValueError, KeyError, TypeError, AttributeError):
            return {}  # derived data: a missing or damaged cache is rebuilt, never an error

    def _share(self, episode_id: str) -> float:
        flags = np.asarray(self.store.arrays(episode_id)[keys.IS_INTERVENTION])
        return float(flags.mean()) if len(flags) else 0.0

    def rows(self) -> list[dict[str, Any]]:
        """Every readable episode's summary row, ordered by id (time of recording)."""
        metas = self.store.episodes()
        with self._lock:
            missing = [m.episode_id for m in metas if m.episode_id not in self._shares]
            for eid in missing:
                try:
                    self._shares[eid] = self._share(eid)
                except StoreError:
                    self._shares[eid] = None  # unreadable arrays: the episode page reports why
            if missing:
                self._cache_path.parent.mkdir(parents=True, exist_ok=True)
                write_json_atomic(self._cache_path, {"intervention": self._shares})
        return [_row(m, self._shares[m.episode_id]) for m in metas]

    def query(self, query: ListQuery) -> dict[str, Any]:
        """One page of the filtered, sorted list, the total it was cut from, and the values each filter can take."""
        rows = self.rows()
        facets = {
            k: sorted(
                ([_facet_value(v), n] for v, n in Counter(r[k] for r in rows).items()),
                key=lambda p: p[0],
            )
            for k in FILTERS
        }
        chosen = ordered(rows, query)
        return {
            "total": len(chosen),
            "store_total": len(rows),
            "unlabelled": sum(r["outcome"] == "unlabelled" for r in rows),
            "offset": query.offset,
            "rows": chosen[query.offset : query.offset + query.limit],
            "facets": facets,
        }

    def neighbours(self, episode_id: str, query: ListQuery) -> dict[str, Any]:
        """The episodes before and after ``episode_id`` in the list's order, and the next unlabelled one."""
        chosen = ordered(self.rows(), query)
        ids = [r["episode_id"] for r in chosen]
        at = ids.index(episode_id) if episode_id in ids else -1
        after = chosen[at + 1 :] + chosen[: max(at, 0)] if at >= 0 else chosen
        unlabelled = next((r["episode_id"] for r in after if r["outcome"] == "unlabelled"), None)
        return {
            "position": at,
            "total": len(ids),
            "previous": ids[at - 1] if at > 0 else None,
            "next": ids[at + 1] if 0 <= at < len(ids) - 1 else None,
            "next_unlabelled": unlabelled if unlabelled != episode_id else None,
        }


def _facet_value(value: Any) -> str:
    return "" if value is None else str(value)


def ordered(rows: list[dict[str, Any]], query: ListQuery) -> list[dict[str, Any]]:
    """The rows that pass every filter, sorted by the query's column."""
    chosen = [r for r in rows if all(_facet_value(r[k]) == v for k, v in query.filters.items())]
    return sorted(chosen, key=_sort_key(query.sort), reverse=query.descending)
