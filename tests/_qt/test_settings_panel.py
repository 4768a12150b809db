"""The settings panel's modality choice decides the automatic window."""
import numpy as np
import pytest

pytest.importorskip("pytestqt")


def test_modality_choice_overrides_the_image_and_emits_a_window_change(qtbot):
    from napari_sam_mis._qt.settings_panel import SettingsPanel
    from napari_sam_mis.volume import Volume

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    ct = Volume(np.full((2, 8, 8), -1000, np.int16), modality="CT")
    assert panel.modality is None and panel.window(ct).kind == "level_width"
    with qtbot.waitSignal(panel.window_changed):
        panel.modality_combo.setCurrentText("MR")
    assert panel.modality == "MR" and panel.window(ct).kind == "percentile"
    panel.modality_combo.setCurrentText("CT")
    mr = Volume(np.ones((2, 8, 8), np.int16), modality="MR")
    assert panel.window(mr).kind == "level_width"


def test_no_ct_window_is_offered_for_display_values(qtbot):
    from napari_sam_mis._qt.settings_panel import SettingsPanel
    from napari_sam_mis.volume import Volume

    panel = SettingsPanel()
    qtbot.addWidget(panel)
    panel.fit_to(Volume(np.zeros((1, 8, 8, 3), np.uint8), modality="OT", windowed=True))  # an RGB PNG
    assert not panel.window_combo.isEnabled() and not panel.modality_combo.isEnabled()
    panel.fit_to(Volume(np.full((2, 8, 8), -1000, np.int16), modality="CT"))
    assert panel.window_combo.isEnabled() and panel.modality_combo.isEnabled()
