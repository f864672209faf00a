"""Plugin tests are hermetic: no entry-point autoload; tests register ``recap_bimanual.plugin`` explicitly."""

import os

os.environ["RECAP_NO_ENTRYPOINTS"] = "1"
os.environ.setdefault("MUJOCO_GL", "egl")
