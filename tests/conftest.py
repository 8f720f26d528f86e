"""Session set-up shared by all tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Build firmware into a cache the test session owns, unless told otherwise."""
    if "HIL_CACHE_DIR" not in os.environ:
        os.environ["HIL_CACHE_DIR"] = str(tmp_path_factory.mktemp("hil-cache"))
    yield
