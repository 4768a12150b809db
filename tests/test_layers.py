"""The Qt-free layers stay Qt-free: importing every module outside _napari/ and _qt/ loads neither
napari nor Qt, and no module imports one that imports it back."""
import subprocess
import sys

QT_FREE = ("io", "model", "embeddings", "annotate", "evaluation", "training", "batch", "cli")
CODE = r"""
import importlib, pkgutil, sys
import napari_sam_mis.volume, napari_sam_mis.errors
for name in %r:
    pkg = importlib.import_module(f"napari_sam_mis.{name}")
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(m.name)
bad = sorted(m for m in sys.modules if m.split('.')[0] in {"napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy"})
print(",".join(bad))
""" % (QT_FREE,)


def test_qt_free_packages_import_neither_napari_nor_qt():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"Qt/napari imported by a Qt-free package: {out.stdout}"


def test_package_import_is_light():
    code = "import sys, napari_sam_mis; print(any(m in sys.modules for m in ('torch', 'napari', 'qtpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


LAYERS = ("volume errors", "io", "model", "embeddings", "annotate", "evaluation", "training", "batch", "_napari", "_qt",
          "cli __main__")


def _imports():
    """{module: {imported napari_sam_mis modules}}, function-local imports included."""
    import ast
    import importlib.util
    from pathlib import Path

    root = Path(importlib.util.find_spec("napari_sam_mis").origin).parent
    out = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("napari_sam_mis"):
                base = node.module
                for alias in node.names:  # "from pkg import module" imports the module
                    sub = f"{base}.{alias.name}"
                    found.add(sub if (root.parent / (sub.replace(".", "/") + ".py")).exists() else base)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("napari_sam_mis")}
        out[name] = found - {name}
    return out


def _layer(module: str) -> int:
    top = (module.split(".") + [""])[1]
    return next((i for i, names in enumerate(LAYERS) if top in names.split()), 0)


def test_every_import_goes_down_a_layer_or_stays_in_its_package():
    upward = [(m, i) for m, deps in _imports().items() for i in deps if _layer(i) > _layer(m)]
    assert upward == []


def test_no_import_cycle_between_modules():
    graph = _imports()

    def reaches(start, goal, seen):
        for nxt in graph.get(start, ()):
            if nxt == goal or (nxt not in seen and (seen.add(nxt) or reaches(nxt, goal, seen))):
                return True
        return False

    cycles = sorted(m for m in graph if reaches(m, m, set()) and m != "napari_sam_mis")
    assert cycles == []
