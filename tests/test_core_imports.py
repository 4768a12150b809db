"""The Qt-free layers stay Qt-free: importing every module of core/ and io/ loads neither napari nor Qt."""
import subprocess
import sys

CODE = r"""
import importlib, pkgutil, sys
import napari_sam_mis.core, napari_sam_mis.io, napari_sam_mis.cli
for pkg in (napari_sam_mis.core, napari_sam_mis.io):
    for m in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{m.name}")
bad = sorted(m for m in sys.modules if m.split('.')[0] in {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy"})
print(",".join(bad))
"""


def test_core_and_io_import_neither_napari_nor_qt():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt/napari imported by core/io: {out.stdout}"


def test_package_import_is_light():
    code = "import sys, napari_sam_mis; print(any(m in sys.modules for m in ('torch', 'napari', 'qtpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
