"""Training photos: a COCO-style image folder (or annotations JSON) as a LightningDataModule.

* Images are found by a recursive scan of ``root``, or listed by a COCO annotations
  JSON (``images[].file_name``, relative to ``root``).
* Training samples: short side resized to ``image_size``, random square crop.
* The sample order is a deterministic, shuffled stream (a new permutation per pass
  over the data) indexed by the global sample position. Resuming from a checkpoint
  at step ``s`` restarts the stream at sample ``s * batch_size * accumulate``, so the
  data position is restored exactly, whatever the number of workers.
* An unreadable or corrupt file is replaced by the next readable one and reported;
  it never stops training.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, Sampler

from fastnst.errors import FastNSTError
from fastnst.imageio import ImageError, open_rgb
from fastnst.infer import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)


# Bad files are replaced by the next readable one; give up after this many in a row.
_MAX_CONSECUTIVE_BAD = 50


class DataError(FastNSTError):
    """A dataset setting or folder that cannot be used (one-line message)."""


def sample_photos_dir() -> Path:
    """The small set of public-domain / CC0 photos embedded in the package."""
    return Path(str(resources.files("fastnst") / "assets" / "sample_photos"))


def find_images(root: str | Path, annotations: str | Path | None = None, *, key: str = "data.root") -> list[Path]:
    """List the training images: recursive scan of ``root``, or the files a COCO JSON names.

    ``key`` is the setting that ``root`` comes from, named in the error messages.

    Raises:
        DataError: when the folder or JSON is missing, malformed or lists no usable images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"{key}={root}: {'not a folder' if root.exists() else 'no such folder'}")
    if annotations:
        return annotated_images(root, Path(annotations).expanduser())
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"{key}={root}: no images found ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return files


def _annotation_names(ann: Path) -> list[str]:
    """The ``images[].file_name`` entries of a COCO annotations JSON."""
    try:
        names = [entry["file_name"] for entry in json.loads(ann.read_text())["images"]]
    except FileNotFoundError as e:
        raise DataError(f"data.annotations={ann}: no such file") from e
    except OSError as e:
        raise DataError(f"data.annotations={ann}: cannot be read ({e})") from e
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise DataError(f"data.annotations={ann}: not a COCO annotations file with images[].file_name ({e})") from e
    for i, name in enumerate(names):
        if not isinstance(name, str):
            raise DataError(f"data.annotations={ann}: images[{i}].file_name is not a string ({name!r})")
    if not names:
        raise DataError(f"data.annotations={ann}: lists no images")
    return names


def annotated_images(root: Path, ann: Path) -> list[Path]:
    """The files an annotations JSON lists under ``root``, as resolved paths.

    An entry that resolves outside ``root`` (an absolute path, ``../``, a symlink whose target
    is elsewhere) is skipped and never read: an annotations file must not make training read
    files its user did not give it. Entries whose file is missing are skipped too. Both are
    reported in one warning each; an error when nothing is left.
    """
    base = root.resolve()
    files: list[Path] = []
    outside: list[str] = []
    missing: list[str] = []
    for name in _annotation_names(ann):
        path = (base / name).resolve()  # follows '..' and symlinks: where the file really is
        if not path.is_relative_to(base):
            outside.append(name)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(name)
    not_found = f"data.annotations={ann} lists {len(missing)} files not found under data.root={root}"
    if outside and (files or missing):
        log.warning(
            "data.annotations=%s: %d entries point outside data.root=%s; skipped, never read (first: %s)",
            ann,
            len(outside),
            root,
            outside[0],
        )
    if missing and files:
        log.warning("%s (first: %s); skipped", not_found, missing[0])
    if not files and missing:
        raise DataError(f"{not_found} (first: {missing[0]})")
    if not files:
        raise DataError(
            f"data.annotations={ann}: all {len(outside)} entries point outside data.root={root} "
            f"(first: {outside[0]}); nothing to train on"
        )
    return files


def resize_short_side(img: Image.Image, size: int) -> Image.Image:
    """Resize so that the shorter side is ``size`` pixels (aspect ratio kept)."""
    w, h = img.size
    scale = size / min(w, h)
    new = (max(size, round(w * scale)), max(size, round(h * scale)))
    return img if new == (w, h) else img.resize(new, Image.Resampling.BICUBIC, reducing_gap=3.0)


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL RGB image -> float ``(3, H, W)`` tensor in [0, 1]."""
    array = np.asarray(img, dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div(255.0)


def to_pil(image: torch.Tensor) -> Image.Image:
    """Float ``(3, H, W)`` or ``(1, 3, H, W)`` tensor in [0, 1] -> PIL RGB image."""
    if image.ndim == 4:
        image = image[0]
    array = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, "RGB")


def load_image(path: str | Path, size: int | None = None) -> torch.Tensor:
    """Load an image file as a ``(1, 3, H, W)`` RGB [0, 1] tensor, short side resized to ``size``."""
    try:
        img = open_rgb(path, min_size=size)
    except ImageError as e:
        raise DataError(str(e)) from e
    if size is not None:
        img = resize_short_side(img, size)
    return to_tensor(img).unsqueeze(0)


class ResumableSampler(Sampler[tuple[int, int]]):
    """A shuffled, deterministic stream of ``(index, crop_seed)`` for one process.

    The stream is infinite in principle: pass ``p`` over the data uses its own
    permutation of ``range(num_items)``, drawn from ``(seed, p)``. With ``world_size``
    processes, process ``rank`` takes every ``world_size``-th position.

    ``length`` is the number of positions in the whole run; iteration begins at
    position ``start`` (> 0 when resuming), so ``len()`` stays that of the full run,
    as the training loop counts batches from the beginning of the run.
    """

    def __init__(self, num_items: int, length: int, seed: int = 0, start: int = 0, rank: int = 0, world_size: int = 1):
        self.num_items, self.length, self.seed = num_items, length, seed
        self.start, self.rank, self.world_size = start, rank, world_size
        self._perm_pass, self._perm = -1, torch.empty(0, dtype=torch.long)

    def _permutation(self, pass_index: int) -> torch.Tensor:
        if pass_index != self._perm_pass:
            # Mix seed and pass, so that runs with neighbouring seeds do not share passes.
            gen = torch.Generator().manual_seed((self.seed * 0x9E3779B97F4A7C15 + pass_index) % 2**63)
            self._perm, self._perm_pass = torch.randperm(self.num_items, generator=gen), pass_index
        return self._perm

    def position(self, local: int) -> tuple[int, int]:
        """The ``(index, crop_seed)`` at local position ``local`` of this process."""
        q = local * self.world_size + self.rank  # position in the global stream
        pass_index, offset = divmod(q, self.num_items)
        return int(self._permutation(pass_index)[offset]), (self.seed * 1_000_003 + q) & 0x7FFFFFFF

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for local in range(self.start, self.length):
            yield self.position(local)

    def __len__(self) -> int:
        return self.length


@dataclass
class PhotoDataset(Dataset):
    """Photos for training (random crops) or validation (center crops).

    Items are looked up with ``(index, crop_seed)`` keys (see :class:`ResumableSampler`)
    or plain indices (center crop). A file that cannot be read is replaced by the next
    readable one, and its path is returned in the sample's ``skipped`` list.
    """

    files: Sequence[Path]
    image_size: int
    random_crop: bool = True
    _bad: set[int] = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.files)

    def _crop(self, img: Image.Image, seed: int | None) -> Image.Image:
        img = resize_short_side(img, self.image_size)
        w, h = img.size
        s = self.image_size
        if seed is None or not self.random_crop:
            left, top = (w - s) // 2, (h - s) // 2
        else:
            rng = random.Random(seed)
            left, top = rng.randint(0, w - s), rng.randint(0, h - s)
        return img.crop((left, top, left + s, top + s))

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        skipped: list[str] = []
        for attempt in range(min(_MAX_CONSECUTIVE_BAD, len(self.files))):
            i = (index + attempt) % len(self.files)
            if i in self._bad:  # known bad in this worker: don't decode it again
                continue
            try:
                img = open_rgb(self.files[i], min_size=self.image_size)
                return {"image": to_tensor(self._crop(img, seed)), "skipped": skipped}
            except ImageError as e:
                self._bad.add(i)
                skipped.append(str(e))
        raise DataError(f"{_MAX_CONSECUTIVE_BAD} unreadable images in a row near {self.files[index]}; check data.root")


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images; concatenate the lists of skipped files."""
    return {
        "image": torch.stack([s["image"] for s in samples]),
        "skipped": [path for s in samples for path in s["skipped"]],
    }


class PhotoDataModule(pl.LightningDataModule):
    """COCO-style photos for training and a few fixed photos for validation previews.

    Args:
        root: folder of training images (scanned recursively), or the image folder of ``annotations``;
            ``None`` trains on the photos embedded in the package (a demo, not a dataset).
        annotations: optional COCO annotations JSON listing the images (``images[].file_name``).
        image_size: training crop size (short side resized to it, then a random square crop).
        batch_size: images per batch and process.
        num_workers: DataLoader worker processes.
        val_images: folder or list of validation photos; ``None`` uses the embedded sample photos.
        num_val_images: how many validation photos to use.
        seed: seed of the sample order and crops.
    """

    def __init__(
        self,
        root: str | None,
        annotations: str | None = None,
        image_size: int = 256,
        batch_size: int = 4,
        num_workers: int = 4,
        val_images: str | list[str] | None = None,
        num_val_images: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for key, value, low in (
            ("image_size", image_size, 16),
            ("batch_size", batch_size, 1),
            ("num_workers", num_workers, 0),
            ("num_val_images", num_val_images, 1),
        ):
            if value < low:
                raise DataError(f"data.{key}={value}: must be a whole number >= {low}")
        self.root = root if root is not None else str(sample_photos_dir())
        self.annotations = annotations
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.val_images, self.num_val_images, self.seed = val_images, num_val_images, seed
        self.train_files: list[Path] = []
        self.val_files: list[Path] = []

    def setup(self, stage: str | None = None) -> None:
        if not self.train_files:
            self.train_files = find_images(self.root, self.annotations)
            log.info("%d training images in %s", len(self.train_files), self.root)
        if not self.val_files:
            if self.val_images is None or isinstance(self.val_images, str):
                self.val_files = find_images(self.val_images or sample_photos_dir(), key="data.val_images")
            else:
                self.val_files = [Path(p) for p in self.val_images]
            self.val_files = self.val_files[: self.num_val_images]

    def _loader(self, dataset: Dataset, batch_size: int, **kwargs: Any) -> DataLoader:
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=self.num_workers,
            collate_fn=collate,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            **kwargs,
        )

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        if trainer is None or trainer.max_steps <= 0:
            raise DataError("trainer.max_steps must be set (> 0): training length is counted in steps")
        per_step = self.batch_size * trainer.accumulate_grad_batches
        # The position in the sample stream is derived from the (restored) global step,
        # so a resumed run continues with exactly the samples it would have seen.
        sampler = ResumableSampler(
            num_items=len(self.train_files),
            length=trainer.max_steps * per_step,
            seed=self.seed,
            start=trainer.global_step * per_step,
            rank=trainer.global_rank,
            world_size=trainer.world_size,
        )
        dataset = PhotoDataset(self.train_files, self.image_size)
        return self._loader(dataset, self.batch_size, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        dataset = PhotoDataset(self.val_files, self.image_size, random_crop=False)
        # One batch: the preview grid shows every validation photo.
        return self._loader(dataset, len(self.val_files), shuffle=False)
