"""The three layers of the package, checked: a module never imports a layer above its own.

* no torch: ``fastnst/*.py`` and ``fastnst/runtime/`` (image I/O, the ONNX contract, ``Stylizer``,
  video, the infer CLI): numpy, Pillow, onnxruntime and PyAV only;
* torch: ``fastnst/nn/`` (networks, VGG, losses, optimization, export, the judge): no Lightning, no Hydra;
* Lightning and Hydra: ``fastnst/training/``.

Each layer's modules are imported in a fresh interpreter in which the packages above it raise
ImportError, so a lazy import inside a function is not enough to hide an upward import at module level.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "fastnst"

ABOVE = {
    "runtime": ["torch", "lightning", "hydra", "omegaconf", "tensorboard", "fastnst.nn", "fastnst.training"],
    "nn": ["lightning", "hydra", "omegaconf", "fastnst.training"],
}

IMPORT_WITH_BLOCKS = """
import importlib, sys

blocked = sys.argv[1].split(",")

class Block:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in blocked):
            raise ImportError(f"{name} is a layer above (blocked in this test)")
        return None

sys.meta_path.insert(0, Block())
for module in sys.argv[2:]:
    importlib.import_module(module)
print("imported", len(sys.argv) - 2)
"""


def layer_modules(layer: str) -> list[str]:
    """Importable names of a layer's modules (the no-torch layer includes the top-level modules)."""
    folders = {"runtime": [PACKAGE, PACKAGE / "runtime"], "nn": [PACKAGE / "nn"], "training": [PACKAGE / "training"]}
    names = []
    for folder in folders[layer]:
        prefix = ".".join(folder.relative_to(PACKAGE.parent).parts)
        names += [f"{prefix}.{p.stem}" if p.stem != "__init__" else prefix for p in sorted(folder.glob("*.py"))]
    return [n for n in names if n != "fastnst.__main__"]  # __main__ runs the CLI on import


@pytest.mark.parametrize("layer", ["runtime", "nn"])
def test_a_layer_imports_nothing_above_it(layer):
    modules = layer_modules(layer)
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WITH_BLOCKS, ",".join(ABOVE[layer]), *modules],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"imported {len(modules)}" in result.stdout


def test_the_training_layer_imports():
    modules = layer_modules("training")
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WITH_BLOCKS, "", *modules], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_block_catches_an_upward_import(tmp_path):
    """The check itself can fail: a torch-free module that imports torch is caught."""
    (tmp_path / "upward.py").write_text("import torch\n")
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_WITH_BLOCKS, ",".join(ABOVE["runtime"]), "upward"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode != 0 and "layer above" in result.stderr


def test_every_module_belongs_to_a_layer():
    listed = {m for layer in ("runtime", "nn", "training") for m in layer_modules(layer)}
    found = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts) for p in PACKAGE.rglob("*.py")}
    found = {m.removesuffix(".__init__") for m in found} - {"fastnst.__main__"}
    assert found == listed, found ^ listed
