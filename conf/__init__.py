"""fastnst's Hydra configs, shipped in the wheel as ``fastnst.conf`` (``pkg://fastnst.conf``); see pyproject.toml."""
