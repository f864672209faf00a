"""Unit tests are hermetic about plugins: no entry-point autoload; a test registers what it needs."""

import os

os.environ["RECAP_NO_ENTRYPOINTS"] = "1"
os.environ.setdefault("MUJOCO_GL", "egl")
