"""``recap review``: a local web app to review and label the episodes of a store.

The list (filter, sort, page, jump to the next unlabelled), the episode page (cameras as video synchronised
with a timeline, state/action curves, a label set's value and advantage, interventions) and labelling keys
that write through ``EpisodeStore.set_success`` as compare-and-set writes. Depends only on ``recap.data``.
"""

from recap.review.app import create_app
from recap.review.server import BackgroundServer

__all__ = ["BackgroundServer", "create_app"]
