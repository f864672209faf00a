"""``BackgroundWriter``: commit episodes from a background thread, so a recording loop never waits for encoding.

Encoding three 480x640 cameras to video takes a good fraction of an episode's duration on a small CPU; done in
``EpisodeStore.add`` it would hold the robot between episodes. The writer takes finished episodes into a bounded
queue and commits them in order on one thread (PyAV encodes outside the GIL). When ``max_pending`` episodes are
already waiting, ``submit`` raises ``StoreError`` at once instead of letting memory grow without bound: the
disk or the encoder cannot keep up and the operator must know. Each commit is ``EpisodeStore.add``, as atomic
as ever.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

from tensordict import TensorDict

from recap.data.schema import EpisodeMeta
from recap.data.store import EpisodeStore
from recap.errors import ConfigError, StoreError


class BackgroundWriter:
    """Commits submitted episodes to ``store`` on a background thread, in submission order.

    ``submit(steps, **add_kwargs)`` returns a ``Future`` of the episode's ``EpisodeMeta``; the steps must not be
    modified afterwards. At most ``max_pending`` episodes wait while one is being written (each holds its frames
    in memory). ``close()`` (or leaving a ``with`` block) waits for every episode and raises the first error.
    """

    def __init__(self, store: EpisodeStore, max_pending: int = 2) -> None:
        if max_pending < 1:
            raise ConfigError(f"max_pending must be >= 1, got {max_pending}")
        self.store, self.max_pending = store, max_pending
        self._queue: queue.Queue[tuple[Any, dict[str, Any], Future] | None] = queue.Queue(maxsize=max_pending)
        self._futures: list[Future] = []
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="recap-episode-writer", daemon=True)
        self._thread.start()

    def submit(self, steps: TensorDict | Mapping[str, Any], **add_kwargs: Any) -> Future:
        """Queue one finished episode for ``store.add(steps, **add_kwargs)``."""
        if self._closed:
            raise StoreError("this BackgroundWriter is closed; create a new one")
        future: Future = Future()
        try:
            self._queue.put_nowait((steps, add_kwargs, future))
        except queue.Full:
            raise StoreError(
                f"the episode writer for {self.store.root} has {self.max_pending} episodes waiting while one is "
                f"being written (image codec {self.store.image_codec}): the disk or the encoder cannot keep up with "
                "recording; pause between episodes, use a faster codec (h264) or a larger max_pending"
            ) from None
        self._futures.append(future)
        return future

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            steps, add_kwargs, future = item
            try:
                future.set_result(self.store.add(steps, **add_kwargs))
            except BaseException as exc:  # delivered through the future; the writer keeps going
                future.set_exception(exc)

    def close(self) -> list[EpisodeMeta]:
        """Wait for every submitted episode; returns their metadata in order, or raises the first error."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        return [f.result() for f in self._futures]

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:  # finish what was queued, but let the error in the with block propagate
            with contextlib.suppress(Exception):
                self.close()
