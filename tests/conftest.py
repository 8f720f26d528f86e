"""Session set-up shared by all tests."""

from __future__ import annotations

import os

import pytest

import harness  # noqa: F401  (before any test loads grpc: harness turns gRPC's fork handlers off)
from helpers import FIRMWARE, compile_host


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Build firmware into a cache the test session owns, unless told otherwise."""
    if "HIL_CACHE_DIR" not in os.environ:
        os.environ["HIL_CACHE_DIR"] = str(tmp_path_factory.mktemp("hil-cache"))
    yield


@pytest.fixture(scope="session")
def device_exe(tmp_path_factory):
    """The device side of the protocol built for the host (ASan/UBSan),
    speaking it on stdin/stdout: tests/test_protocol_c.py and
    tests/test_link_recovery.py drive it."""
    proto = FIRMWARE / "protocol"
    return compile_host(tmp_path_factory.mktemp("proto"), "proto_stdio",
                        [FIRMWARE / "tests" / "proto_stdio.c", proto / "proto.c",
                         proto / "cobs.c", proto / "crc32.c"])
