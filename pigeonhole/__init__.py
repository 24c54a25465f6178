"""pigeonhole: put marketplace listings into the right category, with the whole MLOps lifecycle as code."""

__version__ = "0.1.0"
