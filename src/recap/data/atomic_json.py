"""One JSON writer for every file that readers must never see half-written (store info, episode metadata,
stage summaries of a run)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` so that a reader sees the old file or the new one, never a part.

    The text goes to a temporary file beside ``path`` (named per process and call, so concurrent writers do not
    share it), is fsynced, then renamed over ``path``. Paths and tensors/arrays (``tolist()``) are written as
    strings and lists; anything else that JSON cannot hold is a ``TypeError``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1, default=_jsonable)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left behind when the write failed


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")
