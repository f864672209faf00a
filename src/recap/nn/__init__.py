"""Modules shared by policies and value networks (normalisation, the flow-matching draw)."""
