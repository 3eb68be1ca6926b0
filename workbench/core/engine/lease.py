"""A run's lease: one executor at a time, and a heartbeat that shows it is alive.

``RunLease`` takes the lease when entered (``RunBusyError`` while another live
executor holds it) and renews it from a daemon thread with its own connection,
so a long post-processing step on the run's thread never lets the lease lapse.
A run whose heartbeat stops (the process was killed) shows as ``interrupted``
and the next resume takes the lease over.  If the lease is lost anyway (this
process was stopped past the TTL and another took over), ``on_lost`` is called
once so the run can cancel instead of paying for items twice.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from workbench.core.store import HEARTBEAT_S, Store

log = logging.getLogger(__name__)


class RunLease:
    """Hold ``run_id``'s lease for the ``with`` block."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        *,
        interval: float = HEARTBEAT_S,
        on_lost: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.interval = interval
        self.on_lost = on_lost
        self.token = uuid.uuid4().hex
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RunLease:
        self.store.acquire_run_lease(self.run_id, self.token)
        self._thread = threading.Thread(
            target=self._beat, name=f"run-{self.run_id}-heartbeat", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.store.release_run_lease(self.run_id, self.token)

    def _beat(self) -> None:
        db = self.store.reopen()
        try:
            while not self._stop.wait(self.interval):
                try:
                    ours = db.heartbeat_run(self.run_id, self.token)
                except Exception:  # a busy or briefly unwritable file: try next beat
                    log.warning("run %s: heartbeat not written", self.run_id, exc_info=True)
                    continue
                if not ours:
                    self.lost = True
                    log.error("run %s: lease taken over by another executor", self.run_id)
                    if self.on_lost is not None:
                        self.on_lost()
                    return
        finally:
            db.close()
