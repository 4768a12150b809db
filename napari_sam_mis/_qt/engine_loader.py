"""Loading a model for the widget: once per (name, checkpoint, device), in a worker thread.

Importing torch's native extensions for the first time from a Qt pool thread crashes (see
torch_guard), so the model code is imported on the GUI thread first; building and running the
model in a worker is safe after that.
"""
from __future__ import annotations

import threading

from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info

from napari_sam_mis.model.engine import SamEngine
from napari_sam_mis.model.registry import get_spec

_ENGINES: dict[tuple, SamEngine] = {}
_ENGINES_LOCK = threading.Lock()


def load_engine(name: str, checkpoint: str | None, device: str) -> SamEngine:
    """Load (or reuse an already loaded) model; raises ModelError with a user-facing message."""
    key = (name, str(checkpoint or ""), device)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
    if engine is None:
        engine = SamEngine.load(name, checkpoint=checkpoint or None, device=device)
        with _ENGINES_LOCK:
            _ENGINES[key] = engine
    return engine


def forget_engines(name: str) -> None:
    """Drop the loaded engines of model ``name`` (its weights were replaced)."""
    with _ENGINES_LOCK:
        for key in [k for k in _ENGINES if k[0] == name]:
            del _ENGINES[key]


def preload_modules(name: str) -> None:
    """Import torch and the model code on the calling (GUI) thread."""
    from napari_sam_mis._qt.torch_guard import guard_triton_import

    guard_triton_import()
    import torch
    import torch._dynamo  # noqa: F401

    get_spec(name).family.import_modules()


@thread_worker
def load_engine_worker(name: str, checkpoint: str | None, device: str):
    return load_engine(name, checkpoint, device)


class EngineLoader:
    """The widget's model: one load at a time, a newer request makes an older one's result ignored."""

    def __init__(self):
        self._worker = None
        self.engine = None
        self.engine_key = None  # the (name, checkpoint, device) ``engine`` was loaded for

    def ensure(self, key: tuple, ready, say) -> None:
        """Call ``ready()`` once the model for ``key`` = (name, checkpoint, device) is loaded, at
        once when it is; ``say(text)`` shows where loading stands."""
        if self.engine is not None and self.engine_key == key:
            ready()
            return
        say(f"loading {key[0]} on {key[2]}…")

        def loaded(engine):
            say(f"model {engine.name} on {engine.device}")
            show_info(f"SAM: model {engine.name} on {engine.device}")
            ready()

        def failed(exc):
            say(f"model not loaded: {exc}")
            show_error(f"SAM: {exc}")

        self.load(key, loaded, failed)

    def load(self, key: tuple, on_loaded, on_failed) -> None:
        """Load ``key`` = (name, checkpoint, device); ``on_loaded(engine)`` or ``on_failed(exc)``
        runs on the GUI thread. A bad name fails at once."""
        self.cancel()
        name, checkpoint, device = key
        try:
            preload_modules(name)
        except Exception as exc:  # e.g. unknown model
            on_failed(exc)
            return

        def loaded(engine):
            if worker is self._worker:
                self._worker = None
                self.engine, self.engine_key = engine, key
                on_loaded(engine)

        def failed(exc):
            if worker is self._worker:
                self._worker = None
                on_failed(exc)

        worker = load_engine_worker(name, checkpoint or None, device,
                                    _connect={"returned": loaded, "errored": failed}, _start_thread=False)
        self._worker = worker
        worker.start()

    def finish(self, wait_ms: int = 30_000) -> None:
        """Wait (at most ``wait_ms``) for a running load to end, so that nothing it reports reaches
        a widget being closed; what it reports is ignored (its model stays loaded for the next request)."""
        if self._worker is not None:
            from qtpy.QtCore import QThreadPool

            self._worker = None
            QThreadPool.globalInstance().waitForDone(wait_ms)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.quit()
            self._worker = None
