"""The board runs of `hil calibrate`: a Run that notes the host time around
every INVOKE (the windows a power analyser's samples are cut by). Its own
module so that `hil calibrate --help` need not import the runner."""

from __future__ import annotations

import time

from ..runner import Run


class TimedRun(Run):
    """A run that notes the host time around every INVOKE of a vector (link timing for the analyser)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spans: list[tuple[float, float]] = []

    def boot(self, *args, **kwargs):
        hello = super().boot(*args, **kwargs)
        if self.client is not None:
            self._time_invokes(self.client)
        return hello

    def _time_invokes(self, client) -> None:
        """Wrap the client's INVOKE methods (instance attributes, shadowing its class's) to note each window."""
        if not hasattr(client, "start_invoke"):  # a client whose INVOKE is one call
            inner = client.invoke

            def timed(*a, **kw):
                t0 = time.monotonic()
                answer = inner(*a, **kw)
                if not kw.get("empty") and kw.get("until") is None:
                    self.spans.append((t0, time.monotonic()))
                return answer
            setattr(client, "invoke", timed)
            return
        # INVOKE as a request sent (start_invoke) and its reply read (finish_invoke): the window runs from one
        # to the other (on a board they follow each other: its inputs go by SET_INPUT, never read by INVOKE)
        start, finish = client.start_invoke, client.finish_invoke
        sent_at: dict[int, float] = {}

        def timed_start(*a, **kw):
            t0 = time.monotonic()
            pending = start(*a, **kw)
            sent_at[id(pending)] = t0
            return pending

        def timed_finish(pending):
            answer = finish(pending)
            t0 = sent_at.pop(id(pending), None)
            if t0 is not None and not pending.empty and pending.until is None:
                self.spans.append((t0, time.monotonic()))
            return answer
        setattr(client, "start_invoke", timed_start)
        setattr(client, "finish_invoke", timed_finish)
