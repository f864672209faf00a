"""recap: improve robot policies by reinforcement learning from their own experience (pi*0.6 / Recap).

Layers, bottom to top (a layer imports only from layers below it):
``recap.data`` -> ``recap.rl`` -> ``recap.protocols`` -> ``recap.hookspecs`` / ``recap.plugins``
-> ``recap.train``, ``recap.rollout``, ``recap.loop`` -> ``recap.cli``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("recap")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
