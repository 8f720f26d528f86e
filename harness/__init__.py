"""hil: hardware-in-the-loop tests for embedded ML firmware."""

import os as _os

# labgrid talks to its coordinator over gRPC, whose fork handlers can kill a
# child forked while gRPC threads run (hil forks QEMU, flashers and the
# reference interpreter with a preexec_fn, so fork + exec). Measured
# (tests/test_labgrid.py): 2-5 of 100 such forks failed while a gRPC channel
# was connecting, none with fork support off. Every child here execs at once and never uses gRPC, so the
# handlers have nothing to protect. Set before anything imports grpc.
_os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
