"""Slice embeddings computed in a napari ``thread_worker``, so the GUI thread stays free.

The job is a generator: it yields after each slice, which is where napari's ``quit()`` (Cancel)
stops it. An ``EmbeddingPlan`` decides, batch by batch, which slices come next.
"""
from __future__ import annotations

from napari.qt.threading import thread_worker

from napari_sam_mis.embeddings.plan import EmbeddingPlan


@thread_worker
def embedding_worker(session, plan: EmbeddingPlan):
    """Yield each slice index as its embedding is stored; return the number of slices embedded."""
    while True:
        batch = plan.next_batch(session)
        if not batch:
            return session.n_embedded
        for z, _ in session.iter_embed(batch):
            yield z


class EmbeddingScheduler:
    """Runs one embedding worker at a time for the widget's current session.

    ``on_embedded(session, z)`` runs on the GUI thread after each slice; when the job ends with
    slices still ``pending`` (prompted, waiting for their embedding) it starts again for them.
    ``on_finished(session)`` runs when a job ends with nothing pending.
    """

    def __init__(self, on_embedded, on_finished, on_error):
        self.plan = EmbeddingPlan()
        self.pending: set[int] = set()
        self.worker = None
        self._on_embedded, self._on_finished, self._on_error = on_embedded, on_finished, on_error

    def new_plan(self, center: int, batch_size: int | None = None) -> None:
        self.plan = EmbeddingPlan(center=center, batch_size=batch_size or self.plan.batch_size)
        self.pending.clear()

    def wait_for(self, z: int) -> None:
        """A prompt on slice z waits for its embedding: it goes first."""
        self.pending.add(z)
        self.plan.prioritize(z)

    def start(self, session, background: bool = True) -> None:
        if background:
            self.plan.background = True
        if self.worker is not None and self.worker.is_running:
            return
        plan = self.plan
        worker = embedding_worker(
            session, plan,
            _connect={"yielded": lambda z: self._embedded(session, z),
                      "finished": lambda: self._finished(worker, session),
                      "errored": self._on_error},
            _start_thread=False,
        )
        self.worker = worker
        worker.start()

    def stop(self, wait_ms: int = 0) -> None:
        """Stop the job; with ``wait_ms``, also wait (at most that long) for its thread to end, so
        that nothing it still reports reaches a widget being closed."""
        if self.worker is not None:
            self.worker.quit()
            self.worker = None
            if wait_ms:
                from qtpy.QtCore import QThreadPool

                QThreadPool.globalInstance().waitForDone(wait_ms)

    def cancel(self) -> None:
        """Stop, and embed no more slices in the background (prompted ones still are)."""
        self.plan.background = False
        self.stop()

    def _embedded(self, session, z: int) -> None:
        ready = z in self.pending
        self.pending.discard(z)
        self._on_embedded(session, z, ready)

    def _finished(self, worker, session) -> None:
        if worker is not self.worker:
            return
        self.worker = None
        waiting = [z for z in self.pending if not session.has_embedding(z)]
        if waiting:  # a prompt arrived as the job ended
            for z in waiting:
                self.plan.prioritize(z)
            self.start(session, background=False)
            return
        self._on_finished(session)
