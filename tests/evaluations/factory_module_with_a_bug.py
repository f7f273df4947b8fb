"""A USER_FACTORY module that fails while it is imported, as a module with a bug does."""

raise RuntimeError("a bug at import time")
