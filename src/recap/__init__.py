"""recap: improve robot policies by reinforcement learning from their own experience (pi*0.6 / Recap).

The packages are layers, each importing only from the layers below it: ``.importlinter`` at the repository
root states the order and ``nox -s lint`` checks it (docs/architecture.md explains it). ``recap.builtins`` is an
in-tree plugin: the core never imports it, nor any plugin package.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recap")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
