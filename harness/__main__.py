"""The `hil` process's first lines (`python -m harness` and the `hil` script).

Importing the command line (click, rich, numpy, pyserial) takes most of a
second; Ctrl-C or SIGTERM in that time must end like any other interruption
(exit 130, no traceback) rather than as a KeyboardInterrupt traceback or a
process killed by SIGTERM. So the handlers are set before anything heavy is
imported, here and not in the package (importing `harness` as a library
must not take over the importer's signals).
"""

import faulthandler
import os
import signal
import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    # SIGTERM from the first instant takes the same path as Ctrl-C; both are
    # counted (harness/spawn.py), so a KeyboardInterrupt that CPython drops
    # still ends the run as interrupted. A SIGINT ignored by whoever started
    # hil (nohup, a background job) stays ignored.
    from harness.spawn import interrupt

    signal.signal(signal.SIGTERM, interrupt)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt)
    # `kill -USR1 <pid>` prints every thread's stack to stderr: what a run
    # that does not end is waiting for (the tests use it on a stuck run)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        from harness.cli import entry
    except KeyboardInterrupt:
        # Nothing has started yet. os._exit, because an interrupted import
        # can leave the interpreter marked as "ended by SIGINT", and it would
        # then kill itself with SIGINT on the way out instead of exiting 130.
        sys.stderr.write("interrupted before the run started\n")
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)
    entry()


if __name__ == "__main__":
    main()
