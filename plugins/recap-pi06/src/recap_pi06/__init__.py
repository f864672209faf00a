"""recap-pi06: a pi0.6-style vision-language-action policy and its value-network variant for recap.

See ``docs/pi06.md``. The plugin registers policy ``pi06``, value network ``pi06-value`` and presets
``pi06-tiny``, ``pi06-small``, ``pi06`` (policy) and ``pi06-value-tiny``, ``pi06-value-small``, ``pi06-value``.
"""

from recap_pi06.config import DecoderShape, ExpertShape, Pi06Config, Pi06ValueConfig, VisionShape
from recap_pi06.policy import Pi06Policy
from recap_pi06.value import Pi06ValueNetwork

__all__ = [
    "DecoderShape",
    "ExpertShape",
    "Pi06Config",
    "Pi06Policy",
    "Pi06ValueConfig",
    "Pi06ValueNetwork",
    "VisionShape",
]
