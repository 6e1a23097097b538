"""Training photos: a COCO-style image folder (or annotations JSON) as a LightningDataModule.

* Images are found by a recursive scan of ``root``, or listed by a COCO annotations
  JSON (``images[].file_name``, relative to ``root``).
* Training samples: short side resized to ``short_side`` (default ``image_size``: the whole
  photo), then a random ``image_size`` square crop. A ``short_side`` near the size photos are
  stylized at shows the network objects at the scale it will meet them, at the cost of a crop.
* Optional augmentation of each training crop (never of the previews): a left-right mirror
  (``flip``) and random colours (``color_jitter``), so that a few hundred photos show the network
  more than their own colours and layouts. The crop's seed draws them, so a resumed run sees the
  same samples.
* The sample order is a deterministic, shuffled stream (a new permutation per pass
  over the data) indexed by the global sample position. Resuming from a checkpoint
  at step ``s`` restarts the stream at sample ``s * batch_size * accumulate``, so the
  data position is restored exactly, whatever the number of workers.
* An unreadable or corrupt file is replaced by the next readable one and reported;
  it never stops training.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps
from torch.utils.data import DataLoader, Dataset, Sampler

from fastnst.nn.images import to_tensor
from fastnst.photos import DataError, find_images, sample_photos_dir
from fastnst.runtime.imageio import ImageError, open_rgb, resize_short_side

log = logging.getLogger(__name__)


# Bad files are replaced by the next readable one; give up after this many in a row.
_MAX_CONSECUTIVE_BAD = 50


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


def adjust_colors(
    image: Image.Image, brightness: float = 1.0, contrast: float = 1.0, saturation: float = 1.0, hue: float = 0.0
) -> Image.Image:
    """An RGB image with its brightness, contrast and saturation scaled by those factors (1: unchanged),
    then its hues turned by ``hue`` of the colour circle (1/3: red to green)."""
    image = ImageEnhance.Brightness(image).enhance(brightness)
    image = ImageEnhance.Contrast(image).enhance(contrast)
    image = ImageEnhance.Color(image).enhance(saturation)
    turn = round(hue * 256) % 256  # PIL's hue is 0..255 around the circle
    if turn == 0:
        return image
    hsv = np.array(image.convert("HSV"))
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + turn) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


def jitter_colors(image: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """:func:`adjust_colors` with random factors in ``[1 - strength, 1 + strength]`` and a hue turn of up
    to ``strength / 2`` of the circle either way."""
    factors = [rng.uniform(1 - strength, 1 + strength) for _ in range(3)]
    return adjust_colors(image, *factors, hue=rng.uniform(-strength / 2, strength / 2))


def augment(image: Image.Image, rng: random.Random, flip: bool, color_jitter: float) -> Image.Image:
    """A training crop mirrored left-right half of the time (``flip``) and its colours jittered."""
    if flip and rng.random() < 0.5:
        image = ImageOps.mirror(image)
    return jitter_colors(image, rng, color_jitter) if color_jitter > 0 else image


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
    short_side: int | None = None
    flip: bool = False
    color_jitter: float = 0.0
    _bad: set[int] = field(default_factory=set, repr=False)

    def __len__(self) -> int:
        return len(self.files)

    def _crop(self, img: Image.Image, seed: int | None) -> Image.Image:
        img = resize_short_side(img, self.short_side or self.image_size)
        w, h = img.size
        s = self.image_size
        if seed is None or not self.random_crop:
            left, top = (w - s) // 2, (h - s) // 2
            return img.crop((left, top, left + s, top + s))
        rng = random.Random(seed)
        left, top = rng.randint(0, w - s), rng.randint(0, h - s)
        return augment(img.crop((left, top, left + s, top + s)), rng, self.flip, self.color_jitter)

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
        tried = min(_MAX_CONSECUTIVE_BAD, len(self.files))
        if tried == len(self.files):
            example = skipped[0] if skipped else f"{self.files[index]}: unreadable"
            raise DataError(f"none of the {tried} images found is readable (e.g. {example}); check data.root")
        raise DataError(f"{tried} unreadable images in a row near {self.files[index]}; check data.root")


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
        image_size: training crop size (a random square crop).
        short_side: the photo's short side before the crop; ``None``: ``image_size`` (the whole photo).
        flip: mirror half of the training crops left-right.
        color_jitter: strength of random colour changes of the training crops (:func:`jitter_colors`); 0: none.
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
        short_side: int | None = None,
        flip: bool = False,
        color_jitter: float = 0.0,
        batch_size: int = 4,
        num_workers: int = 4,
        val_images: str | list[str] | None = None,
        num_val_images: int = 4,
        seed: int = 0,
    ) -> None:
        super().__init__()
        from fastnst.schema import check_ranges
        from fastnst.training.config import DataConfig

        # The same ranges as a run's config (the schema), for a DataModule built in Python.
        settings = {"image_size": image_size, "short_side": short_side, "color_jitter": color_jitter}
        settings |= {"batch_size": batch_size, "num_workers": num_workers, "num_val_images": num_val_images}
        check_ranges(DataConfig, settings, "data.", DataError)
        if short_side is not None and short_side < image_size:
            raise DataError(f"data.short_side={short_side}: smaller than the crop, data.image_size={image_size}")
        # Shown in TensorBoard's hparams tab and saved in checkpoints (datamodule_hyper_parameters).
        self.save_hyperparameters()
        self.root = root if root is not None else str(sample_photos_dir())
        self.annotations = annotations
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.short_side = short_side
        self.flip, self.color_jitter = flip, color_jitter
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
        dataset = PhotoDataset(
            self.train_files,
            self.image_size,
            short_side=self.short_side,
            flip=self.flip,
            color_jitter=self.color_jitter,
        )
        return self._loader(dataset, self.batch_size, sampler=sampler, drop_last=True)

    def val_dataloader(self) -> DataLoader:
        dataset = PhotoDataset(self.val_files, self.image_size, random_crop=False, short_side=self.short_side)
        # One batch: the preview grid shows every validation photo.
        return self._loader(dataset, len(self.val_files), shuffle=False)
