"""pigeonhole: put marketplace listings into the right category, with the whole MLOps lifecycle as code."""

# also in pyproject.toml (tests/test_namespace.py checks they agree): the service image runs the
# sources without installing the package, so its metadata cannot be read there
__version__ = "0.1.0"
__licence__ = "Apache-2.0"
