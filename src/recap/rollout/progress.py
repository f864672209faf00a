"""Progress of a batch of episodes, shown as training shows its steps: episodes done, successes so far and
the time left.

On a terminal it is a tqdm bar on stderr; otherwise (a log file, a CI job) one plain line every
``every_s`` seconds and a last one when the batch ends, so a stage that lasts hours on a robot still says
where it is without filling the log.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

LINE_EVERY_S = 30.0


class EpisodeProgress:
    """Counts finished episodes of a batch of ``total`` (``done`` of them finished before this run)."""

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        done: int = 0,
        successes: int = 0,
        enabled: bool = True,
        stream: TextIO | None = None,
        every_s: float = LINE_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total, self.desc = total, desc
        self.done, self.successes, self.labelled = done, successes, done
        self._start_done = done
        self._stream = stream if stream is not None else sys.stderr
        self._every_s, self._clock = every_s, clock
        self._started = self._last_line = clock()
        self._bar = None
        self._enabled = enabled
        if enabled and _is_terminal(self._stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=done, desc=desc, unit="ep", file=self._stream)
            self._bar.set_postfix_str(self._successes_text())

    def update(self, success: bool | None) -> None:
        """One more episode finished (``success`` None: the backend could not tell)."""
        self.done += 1
        if success is not None:
            self.labelled += 1
            self.successes += bool(success)
        if self._bar is not None:
            self._bar.set_postfix_str(self._successes_text(), refresh=False)
            self._bar.update(1)
        elif self._enabled and (self.done >= self.total or self._clock() - self._last_line >= self._every_s):
            self._line()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def seconds_left(self) -> float | None:
        """Remaining episodes at the mean pace of the episodes finished in this run (None before the first)."""
        ran = self.done - self._start_done
        if ran <= 0:
            return None
        return (self._clock() - self._started) / ran * (self.total - self.done)

    def _successes_text(self) -> str:
        return f"{self.successes}/{self.labelled} successes"

    def _line(self) -> None:
        self._last_line = self._clock()
        left = self.seconds_left()
        if self.done >= self.total:
            eta = f", done in {_duration(self._last_line - self._started)}"
        else:
            eta = "" if left is None else f", about {_duration(left)} left"
        print(
            f"[{self.desc}] {self.done}/{self.total} episodes, {self._successes_text()}{eta}",
            file=self._stream,
            flush=True,
        )


def _is_terminal(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds / 3600:.1f} h"
