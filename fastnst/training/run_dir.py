"""Run folders that belong to one run only, whatever the clock says.

Two ``python train.py`` started in the same second would otherwise share
``checkpoints/<style>/<timestamp>/``: one run's ``last.ckpt`` replaced by the other's, and
``train.log`` interleaving both. A folder is claimed atomically before Hydra writes into it;
if it is taken, the run gets ``<name>_2``, ``<name>_3``, ...

* ``python train.py``: the Hydra callback :class:`UniqueRunDir` claims ``hydra.run.dir``
  (the default pattern or an explicit ``hydra.run.dir=...``) before the run starts.
* ``python train.py -m``: each job's ``hydra.sweep.subdir`` goes through the
  ``fastnst_unique_dir`` resolver (sweep jobs are composed after any callback could act).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from fastnst.errors import FastNSTError

# Created atomically in a run folder to own it (Hydra writes its own files into it afterwards).
MARKER = ".hydra"
MAX_SUFFIX = 10_000
RESOLVER = "fastnst_unique_dir"

# A resolver may be evaluated more than once per job: the same request gets the same folder.
_claimed: dict[tuple[str, str], str] = {}


def claim(path: str | Path) -> bool:
    """Make ``path`` this process's run folder; False if another run has it.

    A folder is new if this call creates it, or if it exists and is empty (a folder made
    for the run beforehand). Ownership is the atomic creation of ``path/.hydra``: of several
    processes, exactly one succeeds. A folder holding other files is never claimed.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / MARKER).mkdir()
    except (FileExistsError, NotADirectoryError):
        return False
    if any(entry.name != MARKER for entry in os.scandir(path)):  # older files: not a new folder
        (path / MARKER).rmdir()
        return False
    return True


def unique_run_dir(path: str | Path) -> Path:
    """Claim ``path``, else ``path_2``, ``path_3``, ...; returns the claimed folder (absolute)."""
    path = Path(os.path.abspath(path))  # "." has no name to add a suffix to
    for n in range(1, MAX_SUFFIX):
        candidate = path if n == 1 else path.with_name(f"{path.name}_{n}")
        if claim(candidate):
            return candidate
    raise FastNSTError(f"hydra.run.dir={path}: {MAX_SUFFIX} runs of that name already exist; choose another folder")


def resolve_unique_dir(subdir: str, base: str = "") -> str:
    """The ``fastnst_unique_dir`` resolver: claim ``base/subdir`` (or a suffixed one), return the subdir."""
    key = (str(base), str(subdir))
    if key not in _claimed:
        claimed = unique_run_dir(Path(base) / subdir)
        _claimed[key] = str(Path(subdir).with_name(claimed.name))
    return _claimed[key]


def resolve_model_name(style_name: str, overrides: Any) -> str:
    """The ``fastnst_model_name`` resolver: the run folder's name, ``style.name`` or, for
    ``style=[a,b,...]``, the model's (see :func:`fastnst.training.style_set.model_name`)."""
    from fastnst.training.style_set import model_name

    return model_name(str(style_name), [str(o) for o in overrides])


def register_resolver() -> None:
    """Make ``${fastnst_unique_dir:subdir,base}`` and ``${fastnst_model_name:name,overrides}`` available
    to Hydra configs (idempotent)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, resolve_unique_dir)
    if not OmegaConf.has_resolver("fastnst_model_name"):
        OmegaConf.register_new_resolver("fastnst_model_name", resolve_model_name)


class UniqueRunDir(Callback):
    """Hydra callback: replace ``hydra.run.dir`` by a folder this run has claimed, before Hydra uses it."""

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf, read_write

        if int(os.environ.get("LOCAL_RANK") or 0) > 0:  # a DDP process started by Lightning: rank 0's folder
            return
        wanted = OmegaConf.select(config, "hydra.run.dir")  # resolves ${now:...}, ${style.name}
        with read_write(config.hydra):
            config.hydra.run.dir = str(unique_run_dir(wanted))
