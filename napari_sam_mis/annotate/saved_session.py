"""A session's work on disk, so that nothing drawn is lost by a crash or a close (Qt-free).

One folder per image, named by the hash of its voxels (the embedding cache's ``volume_hash``),
so the session comes back whenever the same image is opened, from any path:

    <root>/<hash>/labels.nii.gz   the labels, on the image's grid (with labels.json: names, colours)
    <root>/<hash>/session.json    label list, selected label, locked slices, prompts, window, model

The labels are written first and session.json last, each through a temporary file and a rename,
so a killed save leaves the previous session or the new one. <root> is $NAPARI_SAM_MIS_SESSIONS,
else the user data directory + /sessions.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from napari_sam_mis.embeddings.store import volume_hash
from napari_sam_mis.errors import InputError
from napari_sam_mis.io import read_labels, write_labels
from napari_sam_mis.io.atomic import write_bytes_atomic
from napari_sam_mis.volume import Volume

SESSIONS_ENV = "NAPARI_SAM_MIS_SESSIONS"
FORMAT = 1


@dataclass
class SessionState:
    """What the widget needs to pick the work up again; the labels go in their own file."""

    segments: dict = field(default_factory=dict)  # {"1": {"name", "color": [r, g, b]}}
    selected: int | None = None
    axis: int = 0  # the axis the locks belong to
    locked: list[int] = field(default_factory=list)
    points: list[list[float]] = field(default_factory=list)  # clicks, in the image's array coordinates
    positive: list[bool] = field(default_factory=list)
    boxes: list[list[list[float]]] = field(default_factory=list)  # box corners, array coordinates
    window: dict = field(default_factory=dict)  # the widget's window and modality choices
    model: dict = field(default_factory=dict)  # name, checkpoint, device
    image: str = ""  # where the image was read from, for a person reading the folder
    saved_at: float = 0.0  # time.time() of the save


@dataclass
class SavedSession:
    labels: np.ndarray
    state: SessionState
    folder: Path


def sessions_root() -> Path:
    env = os.environ.get(SESSIONS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("napari-sam-mis")) / "sessions"


def session_folder(volume: Volume, root: Path | None = None) -> Path:
    """The folder of ``volume``'s session (hashing its voxels: find it once, then pass it on)."""
    return (root or sessions_root()) / volume_hash(volume.array)


def save_session(volume: Volume, labels: np.ndarray, state: SessionState, folder: Path) -> Path:
    """Write the labels and the state for ``volume`` into its ``folder``; returns the folder.
    OSError on a folder that can't be written (the caller tells the user: the work is still in memory)."""
    state.saved_at = time.time()
    state.image = volume.source
    write_labels(np.asarray(labels), volume, folder / "labels.nii.gz", segments=_segments(state.segments))
    text = json.dumps({"format": FORMAT, **asdict(state)}, indent=1)
    write_bytes_atomic(folder / "session.json", text.encode())
    return folder


def load_session(volume: Volume, folder: Path) -> SavedSession | None:
    """The session saved for ``volume`` in its ``folder``, or None when there is none. A damaged
    session raises InputError naming its file (the caller says so and starts afresh; the files stay)."""
    meta_path = folder / "session.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.pop("format", None) != FORMAT:
            raise ValueError("written by another version")
        state = SessionState(**meta)
    except (OSError, ValueError, TypeError) as exc:
        raise InputError(meta_path, f"the saved session can't be read ({exc})") from exc
    labels = read_labels(folder / "labels.nii.gz", volume)
    return SavedSession(labels.array.reshape(volume.shape), state, folder)


def forget_session(folder: Path) -> bool:
    """Remove the session in ``folder``; returns whether there was one."""
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


def _segments(segments: dict) -> dict:
    return {int(k): v for k, v in segments.items()}
