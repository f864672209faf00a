"""``label_store`` as torchrun runs it (``recap label`` under torchrun calls the same function):

torchrun --nproc-per-node 2 dist_label.py STORE VALUE_CKPT NAME BATCH_SIZE
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from recap.builtins.labeler import RecapLabelerConfig  # noqa: E402
from recap.data import EpisodeStore  # noqa: E402
from recap.train.labeling import label_store  # noqa: E402
from train.tiny_value import registry  # noqa: E402

if __name__ == "__main__":
    store, value, name, batch = sys.argv[1:5]
    label_store(
        EpisodeStore.open(store),
        value,
        RecapLabelerConfig(lookahead=5, positive_fraction=0.3),
        name=name,
        batch_size=int(batch),
        registry=registry(),
        progress=False,
    )
