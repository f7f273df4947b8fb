"""The package's version, written once: the package metadata (``pyproject.toml``) and the
``library`` context of every Segment message read it from here.

It imports nothing, so the lowest layers (``segment/payloads.py``) can name the version
without importing the package root.
"""

__version__ = "0.1.0"
