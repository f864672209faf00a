"""Advantage-weighted regression (Peng et al. 2019) as a recap policy extractor."""

from recap_awr.extractor import AWR, AWRConfig, awr_weights

__all__ = ["AWR", "AWRConfig", "awr_weights"]
