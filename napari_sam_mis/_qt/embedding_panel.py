"""The widget's embedding progress: a bar with Cancel, over the ``EmbeddingScheduler``."""
from __future__ import annotations

from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QWidget

from napari_sam_mis._qt.embedding_worker import EmbeddingScheduler

CLOSE_WAIT_MS = 10_000  # longest wait for a slice being embedded when the widget closes


class EmbeddingPanel(QWidget):
    """Embeds the current session's slices in the background; ``on_ready(z)`` runs when a slice a
    prompt waited for is embedded; ``say(text)`` shows a status line."""

    def __init__(self, on_ready, say, parent=None):
        super().__init__(parent)
        self.session = None
        self._on_ready, self._say = on_ready, say
        self.scheduler = EmbeddingScheduler(self._embedded, self._done, self._failed)
        self.progress = QProgressBar()
        self.follow(None)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.setToolTip("Stop computing embeddings (a prompted slice is still computed)")
        self.cancel_btn.clicked.connect(self.cancel)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.progress)
        row.addWidget(self.cancel_btn)
        scheduler = self.scheduler
        # deleted with its viewer without a close event: the job stops, what it still reports is dropped
        self.progress.destroyed.connect(lambda *_: (setattr(self, "session", None), scheduler.stop(0)))

    @property
    def worker(self):
        return self.scheduler.worker

    def _engine(self) -> str:
        engine = self.session.engine
        return f"{engine.name} on {engine.device}"

    def follow(self, session) -> None:
        """Follow ``session`` (None: nothing to follow)."""
        self.session = session
        self.progress.setFormat("embeddings %v/%m slices" if session is not None else "embeddings: no image yet")
        self.progress.setMaximum(session.n_slices if session is not None else 1)
        self.progress.setValue(session.n_embedded if session is not None else 0)

    def start(self, background: bool = True) -> None:
        if self.session is None:
            return
        self.scheduler.start(self.session, background)
        self._say(f"{self._engine()}: computing embeddings…")

    def wait_for(self, z: int) -> None:
        """A prompt on slice z waits for its embedding: it goes first, and starts the job."""
        self.scheduler.wait_for(z)

    def stop(self, forget: bool = False, wait_ms: int = 0) -> None:
        """Stop the running job; ``forget``: and follow no session any more (a new image or model);
        ``wait_ms``: wait for its thread to end (closing)."""
        self.scheduler.stop(wait_ms)
        if forget:
            self.follow(None)

    def close_down(self) -> None:
        """The widget closes: stop, and wait for the job's thread to end."""
        self.stop(forget=True, wait_ms=CLOSE_WAIT_MS)

    def cancel(self) -> None:
        self.scheduler.cancel()
        if self.session is not None:
            self.progress.setValue(self.session.n_embedded)
            self._say(f"embeddings cancelled ({self.session.n_embedded}/{self.session.n_slices} ready)")

    def _embedded(self, session, z: int, prompted: bool) -> None:
        if session is not self.session:
            return
        self.progress.setValue(session.n_embedded)
        if prompted:
            self._on_ready(z)

    def _done(self, session) -> None:
        if session is not self.session:
            return
        n, total = session.n_embedded, session.n_slices
        if n == total:
            msg = f"{self._engine()}: embeddings ready ({n}/{total} slices)"
            self._say(msg)
            show_info(f"SAM: {msg}")

    def _failed(self, exc) -> None:
        show_error(f"SAM: embedding failed ({self.session.engine.name if self.session else 'model'}): {exc}")
