"""fastnst: train, export and run fast feed-forward style-transfer networks.

Importing ``fastnst`` is cheap (no torch): the training modules are imported on use.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fastnst")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
