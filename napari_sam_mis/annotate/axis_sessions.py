"""One AnnotationSession per slicing axis of one image and model, all with the same window."""
from __future__ import annotations

from napari_sam_mis.annotate.session import AnnotationSession


class AxisSessions:
    """Sessions made on first use of an axis. With ``cache_dir`` embeddings also go to the disk
    cache; where it can't be used (e.g. a read-only home) ``on_cache_error(exc)`` is told and
    the session keeps its embeddings in memory only."""

    def __init__(self, volume, engine, window, cache_dir=None, on_cache_error=None):
        self.volume, self.engine, self.window = volume, engine, window
        self.cache_dir = cache_dir
        self._on_cache_error = on_cache_error
        self._sessions: dict[int, AnnotationSession] = {}

    def get(self, axis: int) -> AnnotationSession:
        if axis not in self._sessions:
            try:
                session = AnnotationSession(self.volume, self.engine, self.window, axis=axis, cache_dir=self.cache_dir)
            except OSError as exc:
                if self.cache_dir is None:
                    raise
                if self._on_cache_error is not None:
                    self._on_cache_error(exc)
                session = AnnotationSession(self.volume, self.engine, self.window, axis=axis)
            self._sessions[axis] = session
        return self._sessions[axis]

    def set_window(self, window, axis: int) -> AnnotationSession:
        """A new window: ``axis``' session recomputes its embeddings, the other axes' are rebuilt when used."""
        self.window = window
        session = self.get(axis)
        session.set_window(window)
        self._sessions = {axis: session}
        return session
