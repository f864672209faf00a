"""Hermetic about plugins: no entry-point autoload; tests register what they need."""

import os

os.environ["RECAP_NO_ENTRYPOINTS"] = "1"
