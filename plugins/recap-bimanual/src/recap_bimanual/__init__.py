"""recap plugin for the ALOHA-style bimanual robot: the MuJoCo simulated twin (``recap_bimanual.sim``) and the
hardware driver (``recap_bimanual.hardware``)."""

__version__ = "0.1.0"
