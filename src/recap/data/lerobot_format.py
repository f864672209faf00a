"""Facts of the LeRobot v3.0 on-disk format shared by the exporter and the importer.

Layout (paths relative to the dataset root)::

    meta/info.json                                  codebase_version "v3.0", fps, features, totals, path templates
    meta/stats.json                                 per feature: min, max, mean, std, count, q01, q99
    meta/tasks.parquet                              task (string, pandas index) -> task_index
    meta/subtasks.parquet                           subtask (string, pandas index) -> subtask_index (optional)
    meta/episodes/chunk-000/file-000.parquet        one row per episode (columns below)
    data/chunk-XXX/file-YYY.parquet                 one row per frame, many episodes per file
    videos/<camera key>/chunk-XXX/file-YYY.mp4      the frames of many episodes back to back

Episode rows: ``episode_index``, ``tasks`` (list of strings), ``length``, ``data/chunk_index``,
``data/file_index``, ``dataset_from_index``, ``dataset_to_index`` (global frame ``index`` range, end exclusive),
``videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp}``, ``meta/episodes/{chunk_index,file_index}``,
``stats/<feature>/<stat>``; recap adds ``success`` (nullable bool), ``source``, ``policy_version``,
``robot_id``, ``recap_episode_id``, ``recap_created`` and the loop provenance ``recap_iteration``,
``recap_stage`` and ``recap_seed``, which LeRobot ignores.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pyarrow as pa

from recap.data import keys

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"

#: recap per-step key -> LeRobot column (bool, one per frame)
INTERVENTION_COLUMN = "intervention"
INTERVENTION_ALIASES = ("intervention", "is_intervention", "complementary_info.is_intervention")
SUCCESS_COLUMN = "next.success"  # True on the last frame of a successful episode
DONE_COLUMN = "next.done"  # True on the last frame of every episode
SUBTASK_INDEX = "subtask_index"


def chunk_file(index: int) -> dict[str, int]:
    return {"chunk_index": index // CHUNKS_SIZE, "file_index": index % CHUNKS_SIZE}


def string_index_table(name: str, index_column: str, values: Sequence[str]) -> pa.Table:
    """A table pandas reads back with ``name`` as its index (as LeRobot writes tasks.parquet)."""
    table = pa.table({index_column: pa.array(range(len(values)), pa.int64()), name: pa.array(list(values))})
    pandas_meta = {
        "index_columns": [name],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            }
        ],
        "columns": [
            {
                "name": index_column,
                "field_name": index_column,
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {
                "name": name,
                "field_name": name,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": None,
            },
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def read_string_index(table: pa.Table, name: str, index_column: str) -> dict[int, str]:
    """index -> string from a tasks/subtasks table (the string column may be the pandas index)."""
    cols = table.column_names
    text_col = name if name in cols else next((c for c in cols if c != index_column), None)
    if index_column not in cols or text_col is None:
        raise ValueError(f"expected columns {index_column!r} and {name!r}, found {cols}")
    return dict(zip(table[index_column].to_pylist(), table[text_col].to_pylist(), strict=True))


def camera_from_key(key: str) -> str:
    return key[len(keys.IMAGE_PREFIX) :] if key.startswith(keys.IMAGE_PREFIX) else key.replace(".", "_")
