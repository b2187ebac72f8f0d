"""The web UI's line to its one editor: :class:`WorkQueue` (FIFO, one request at a time, a bounded line)."""

from __future__ import annotations

import contextlib
import threading

from regionedit.web.protocol import HTTPError


class WorkQueue:
    """A single worker in FIFO order: ``with queue.slot(): ...`` runs one at a time, in arrival order.

    At most ``max_pending`` requests may wait for or hold the slot; one more raises ``HTTPError(503)``
    at once instead of piling up threads.
    """

    def __init__(self, max_pending: int):
        if max_pending < 1:
            raise ValueError("max_pending must be >= 1")
        self.max_pending = max_pending
        self._cond = threading.Condition()
        self._next = 0  # next ticket to hand out
        self._serving = 0  # ticket that holds the slot

    @property
    def pending(self) -> int:
        """Requests in line, including the one being served."""
        with self._cond:
            return self._next - self._serving

    @contextlib.contextmanager
    def slot(self):
        with self._cond:
            n = self._next - self._serving
            if n >= self.max_pending:
                raise HTTPError(503, f"the server is busy: {n} requests are already queued for the editor "
                                     f"(limit {self.max_pending}); try again in a few seconds",
                                {"Retry-After": "5"})
            ticket = self._next
            self._next += 1
            while self._serving != ticket:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._serving += 1
                self._cond.notify_all()
