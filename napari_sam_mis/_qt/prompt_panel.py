"""The widget's prompt tools: box and click tools, negative clicks, commit / clear / undo / redo."""
from __future__ import annotations

from qtpy.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

SHORTCUTS = (
    ("Box tool", "draw a rectangle on the box layer (R)"),
    ("Click", "left click on the clicks layer: positive; Ctrl+click or 'negative' ticked: negative"),
    ("Enter", "commit the preview into the labels layer"),
    ("Escape", "clear the prompts of this slice"),
    ("Ctrl+Z", "undo the last commit"),
    ("Ctrl+Shift+Z", "redo"),
)
TOOLTIP = "SAM annotation. Shortcuts (with a prompt layer selected):\n" + "\n".join(f"  {k}: {v}" for k, v in SHORTCUTS)


class PromptPanel(QWidget):
    """Plain Qt buttons; the widget connects them."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.box_btn = QPushButton("Box tool")
        self.click_btn = QPushButton("Click tool")
        self.negative_check = QCheckBox("negative clicks")
        self.negative_check.setToolTip("New clicks are negative (background); Ctrl+click also makes a negative click")
        self.overwrite_check = QCheckBox("overwrite other labels")
        self.overwrite_check.setToolTip("Unticked, a commit never changes voxels that already hold another label")
        tools = QHBoxLayout()
        for w in (self.box_btn, self.click_btn, self.negative_check):
            tools.addWidget(w)

        self.commit_btn = QPushButton("Commit (Enter)")
        self.clear_btn = QPushButton("Clear (Esc)")
        self.undo_btn = QPushButton("Undo")
        self.redo_btn = QPushButton("Redo")
        self.undo_btn.setToolTip("Undo the last commit (Ctrl+Z)")
        self.redo_btn.setToolTip("Redo (Ctrl+Shift+Z)")
        actions = QHBoxLayout()
        for b in (self.commit_btn, self.clear_btn, self.undo_btn, self.redo_btn):
            actions.addWidget(b)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addLayout(actions)
        layout.addWidget(self.overwrite_check)
        shortcuts = QLabel("\n".join(f"{k}: {v}" for k, v in SHORTCUTS[2:]))
        shortcuts.setStyleSheet("color: gray")
        layout.addWidget(shortcuts)


def bind_shortcuts(layer, commit, clear, undo, redo) -> None:
    """The widget's keys on ``layer`` (they work while it is the selected layer)."""
    for key, func in (("Enter", commit), ("Escape", clear), ("Control-Z", undo), ("Control-Shift-Z", redo)):
        layer.bind_key(key, lambda _layer, f=func: f(), overwrite=True)
