"""fastnst: train, export and run fast feed-forward style-transfer networks.

Importing ``fastnst`` is cheap (no torch): the training modules are imported on use,
and ``from fastnst import Stylizer`` needs only the base install (numpy, Pillow, onnxruntime);
training, export and optimization need ``pip install 'fastnst[train]'``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fastnst")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Stylizer", "__version__"]


def __getattr__(name: str) -> object:
    # Lazy: `from fastnst import Stylizer` imports onnxruntime, never torch.
    if name == "Stylizer":
        from fastnst.runtime.stylizer import Stylizer

        return Stylizer
    raise AttributeError(f"module 'fastnst' has no attribute {name!r}")
