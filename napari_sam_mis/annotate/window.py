"""Intensity windows: CT level/width presets and MR percentile scaling to display values 0..255.

The model input is always built from 0..255 display values, as in the official LiteMedSAM
preprocessing (CVPR24_LiteMedSAM_infer.py and its data-preparation script).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# name -> (level, width) in HU
CT_PRESETS: dict[str, tuple[float, float]] = {
    "soft tissue": (40.0, 400.0),
    "liver": (60.0, 160.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}
DEFAULT_CT_PRESET = "soft tissue"


@dataclass(frozen=True)
class Window:
    """How raw voxel values become 0..255.

    kind: "level_width" (CT), "percentile" (MR: 0.5-99.5 % of the non-zero voxels of the
    volume), or "identity" (values already 0..255, e.g. PNG or CVPR24 npz).
    """

    kind: str = "level_width"
    level: float = CT_PRESETS[DEFAULT_CT_PRESET][0]
    width: float = CT_PRESETS[DEFAULT_CT_PRESET][1]
    lower_pct: float = 0.5
    upper_pct: float = 99.5

    @classmethod
    def preset(cls, name: str) -> "Window":
        try:
            level, width = CT_PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown CT window preset {name!r}; choose one of {sorted(CT_PRESETS)}") from None
        return cls("level_width", level, width)

    @classmethod
    def for_volume(cls, volume, modality: str | None = None) -> "Window":
        """The default window for a Volume (of ``modality`` when given): identity for display
        values, MR percentiles, CT soft tissue."""
        if volume.windowed:
            return cls("identity")
        if (modality or volume.modality).upper() in ("MR", "MRI"):
            return cls("percentile")
        return cls.preset(DEFAULT_CT_PRESET)

    def bounds(self, volume_array: np.ndarray) -> tuple[float, float]:
        """(lower, upper) raw values mapped to 0 and 255."""
        if self.kind == "level_width":
            if not (np.isfinite(self.level) and np.isfinite(self.width) and self.width > 0):
                raise ValueError(f"a window needs a finite level and a positive width, got {self.level:g}/{self.width:g}")
            return self.level - self.width / 2, self.level + self.width / 2
        if self.kind == "percentile":
            nonzero = volume_array[np.isfinite(volume_array) & (volume_array > 0)]
            if nonzero.size == 0:
                return 0.0, 1.0
            lo, hi = np.percentile(nonzero, [self.lower_pct, self.upper_pct])
            return float(lo), float(max(hi, lo + 1e-6))
        if self.kind == "identity":
            return 0.0, 255.0
        raise ValueError(f"unknown window kind {self.kind!r}")

    def key(self) -> str:
        """A short stable description, used in cache signatures."""
        if self.kind == "level_width":
            return f"lw:{self.level:g}/{self.width:g}"
        if self.kind == "percentile":
            return f"pct:{self.lower_pct:g}-{self.upper_pct:g}"
        return self.kind


def window_summary(volume, window: Window, modality: str | None = None) -> str:
    """Which modality and window were chosen, and why, in one line."""
    if modality:
        why = "chosen by the user"
    else:
        modality = volume.modality
        why = volume.meta.get("modality_source") or ("from the file" if volume.source else "default")
    return f"modality {modality} ({why}); window {window.key()}"


def default_ct_contrast() -> tuple[float, float]:
    """(lower, upper) HU of the default CT window, for display contrast limits."""
    return Window.preset(DEFAULT_CT_PRESET).bounds(None)


def apply_window(array: np.ndarray, bounds: tuple[float, float], keep_zero: bool = False) -> np.ndarray:
    """Clip to ``bounds`` and scale to 0..255 (float32). RGB display values pass through.

    ``keep_zero`` keeps background voxels (raw value 0) at 0, as the MR recipe does.
    """
    lower, upper = bounds
    # Same operation order as the recipe, in float64, so the later uint8 truncation matches it.
    out = ((np.clip(array.astype(np.float64), lower, upper) - lower) / (upper - lower) * 255.0).astype(np.float32)
    if keep_zero:
        out[array == 0] = 0
    return out
