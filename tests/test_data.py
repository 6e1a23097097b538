"""Tests of fastnst.training.data: the resumable sample stream, image discovery and decoding,
the photo dataset (crops, bad-file replacement) and the LightningDataModule.

All images are small synthetic files written to ``tmp_path`` (plus the sample photos
embedded in the package); everything runs on the CPU in a few seconds.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import fastnst.training.data as data
from fastnst.nn.images import load_image, to_pil, to_tensor
from fastnst.photos import DataError, find_images, sample_photos_dir
from fastnst.training.data import PhotoDataModule, PhotoDataset, ResumableSampler, collate, open_rgb

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def noise_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def save_noise(path: Path, w: int, h: int, seed: int = 0) -> Path:
    """A lossless (PNG) random-noise RGB image of size w x h."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise_array(h, w, seed)).save(path)
    return path


def save_solid(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (48, 32)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def save_jpeg(path: Path, w: int = 64, h: int = 48, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(noise_array(h, w, seed)).save(path, "JPEG", quality=90)
    return path


def save_truncated_jpeg(path: Path) -> Path:
    full = save_jpeg(path.with_name("full_" + path.name), 64, 48)
    raw = full.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    full.unlink()
    return path


def one_line(message: str) -> bool:
    return "\n" not in message and "\r" not in message


# ---------------------------------------------------------------------------
# ResumableSampler
# ---------------------------------------------------------------------------


def test_sampler_same_args_same_stream() -> None:
    a = list(ResumableSampler(num_items=11, length=50, seed=3))
    b = list(ResumableSampler(num_items=11, length=50, seed=3))
    assert a == b
    assert len(a) == 50
    assert all(isinstance(i, int) and isinstance(s, int) for i, s in a)
    assert all(0 <= i < 11 for i, _ in a)


@pytest.mark.parametrize("num_items", [1, 2, 7, 10])
def test_sampler_each_pass_is_a_permutation(num_items: int) -> None:
    passes = 5
    stream = [i for i, _ in ResumableSampler(num_items, length=num_items * passes, seed=1)]
    for p in range(passes):
        chunk = stream[p * num_items : (p + 1) * num_items]
        assert sorted(chunk) == list(range(num_items)), f"pass {p}: {chunk}"


def test_sampler_passes_use_different_permutations() -> None:
    n = 20
    stream = [i for i, _ in ResumableSampler(n, length=3 * n, seed=0)]
    pass0, pass1, pass2 = stream[:n], stream[n : 2 * n], stream[2 * n :]
    assert pass0 != pass1
    assert pass1 != pass2
    # Shuffled, not the identity order.
    assert pass0 != list(range(n))


@pytest.mark.parametrize("start", [0, 1, 6, 7, 15, 29])
def test_sampler_start_resumes_the_same_stream(start: int) -> None:
    length = 30
    fresh = list(ResumableSampler(num_items=7, length=length, seed=5))
    resumed = ResumableSampler(num_items=7, length=length, seed=5, start=start)
    assert list(resumed) == fresh[start:]
    # len() is that of the whole run, not the remaining part.
    assert len(resumed) == length


def test_sampler_start_at_end_is_empty() -> None:
    sampler = ResumableSampler(num_items=4, length=10, seed=0, start=10)
    assert list(sampler) == []
    assert len(sampler) == 10


@pytest.mark.parametrize("num_items", [6, 7])
def test_sampler_ranks_interleave_to_single_process_stream(num_items: int) -> None:
    local_length = 13
    single = list(ResumableSampler(num_items, length=2 * local_length, seed=9))
    rank0 = list(ResumableSampler(num_items, length=local_length, seed=9, rank=0, world_size=2))
    rank1 = list(ResumableSampler(num_items, length=local_length, seed=9, rank=1, world_size=2))
    assert len(rank0) == len(rank1) == local_length
    interleaved = [x for pair in zip(rank0, rank1, strict=True) for x in pair]
    assert interleaved == single
    # The two ranks see disjoint positions: no crop seed is shared.
    assert not {s for _, s in rank0} & {s for _, s in rank1}


def test_sampler_ranks_with_start_resume_consistently() -> None:
    full = list(ResumableSampler(5, length=12, seed=2, rank=1, world_size=2))
    resumed = list(ResumableSampler(5, length=12, seed=2, start=4, rank=1, world_size=2))
    assert resumed == full[4:]


def test_sampler_crop_seeds_distinct_and_deterministic() -> None:
    a = ResumableSampler(num_items=5, length=100, seed=4)
    b = ResumableSampler(num_items=5, length=100, seed=4)
    seeds_a = [s for _, s in a]
    assert seeds_a == [s for _, s in b]
    assert len(set(seeds_a)) == len(seeds_a)  # differ between positions
    # Same index at different positions (another pass) still gets a different crop seed.
    assert a.position(0)[1] != a.position(5)[1]
    assert all(0 <= s <= 0x7FFFFFFF for s in seeds_a)
    # position() is a pure function of the position.
    assert a.position(37) == b.position(37) == list(b)[37]


def test_sampler_different_seed_different_order() -> None:
    a = list(ResumableSampler(num_items=20, length=40, seed=0))
    b = list(ResumableSampler(num_items=20, length=40, seed=1))
    assert [i for i, _ in a[:20]] != [i for i, _ in b[:20]]
    assert [s for _, s in a] != [s for _, s in b]


# ---------------------------------------------------------------------------
# find_images
# ---------------------------------------------------------------------------


def test_find_images_recursive_case_insensitive_sorted(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    expected = [
        save_noise(root / "b.png", 8, 8),
        save_noise(root / "A.JPG", 8, 8),
        save_noise(root / "sub" / "c.Jpeg", 8, 8),
        save_noise(root / "sub" / "deeper" / "d.webp", 8, 8),
        save_noise(root / "z" / "e.PNG", 8, 8),
    ]
    (root / "notes.txt").write_text("not an image")
    (root / "sub" / "data.json").write_text("{}")
    (root / "README").write_text("no extension")
    (root / "folder.jpg").mkdir()  # a directory with an image-like name
    files = find_images(root)
    assert files == sorted(expected)
    assert all(p.is_file() for p in files)


def test_find_images_accepts_str_root(tmp_path: Path) -> None:
    path = save_noise(tmp_path / "x.png", 8, 8)
    assert find_images(str(tmp_path)) == [path]


def test_find_images_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=r"data\.root=") as info:
        find_images(missing)
    assert str(missing) in str(info.value)
    assert one_line(str(info.value))


def test_find_images_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"data\.root=") as info:
        find_images(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_find_images_coco_annotations(tmp_path: Path) -> None:
    root = tmp_path / "train2017"
    save_noise(root / "000000000009.jpg", 8, 8)
    save_noise(root / "sub" / "000000000001.jpg", 8, 8)
    names = ["000000000009.jpg", "sub/000000000001.jpg"]
    ann = tmp_path / "instances_train2017.json"
    ann.write_text(json.dumps({"images": [{"id": k, "file_name": n} for k, n in enumerate(names)], "annotations": []}))
    # An extra file in the folder that the JSON does not list is not used.
    save_noise(root / "extra.png", 8, 8)
    assert find_images(root, ann) == [root / n for n in names]
    assert find_images(str(root), str(ann)) == [root / n for n in names]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",  # malformed
        json.dumps({"annotations": []}),  # no images key
        json.dumps({"images": [{"id": 1}]}),  # no file_name
        json.dumps([1, 2, 3]),  # not an object
    ],
    ids=["malformed", "no-images", "no-file_name", "list"],
)
def test_find_images_bad_annotations(tmp_path: Path, content: str) -> None:
    save_noise(tmp_path / "a.jpg", 8, 8)
    ann = tmp_path / "ann.json"
    ann.write_text(content)
    with pytest.raises(DataError, match=r"data\.annotations=") as info:
        find_images(tmp_path, ann)
    assert str(ann) in str(info.value)
    assert one_line(str(info.value))


def test_find_images_missing_annotations(tmp_path: Path) -> None:
    ann = tmp_path / "missing.json"
    with pytest.raises(DataError, match=r"data\.annotations=") as info:
        find_images(tmp_path, ann)
    assert str(ann) in str(info.value)
    assert "no such file" in str(info.value)


def test_find_images_annotations_with_no_images(tmp_path: Path) -> None:
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match=r"data\.annotations=.*: lists no images"):
        find_images(tmp_path, ann)


def test_find_images_annotations_is_a_directory(tmp_path: Path) -> None:
    ann = tmp_path / "annotations"
    ann.mkdir()
    with pytest.raises(DataError, match=r"data\.annotations="):
        find_images(tmp_path, ann)


# ---------------------------------------------------------------------------
# open_rgb / load_image
# ---------------------------------------------------------------------------


def test_open_rgb_grayscale(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.new("L", (20, 10), 77).save(path)
    img = open_rgb(path)
    assert img.mode == "RGB" and img.size == (20, 10)
    assert np.all(np.asarray(img) == 77)


def test_open_rgb_rgba(tmp_path: Path) -> None:
    path = tmp_path / "rgba.png"
    Image.new("RGBA", (20, 10), (10, 20, 30, 128)).save(path)
    img = open_rgb(path)
    assert img.mode == "RGB" and img.size == (20, 10)
    assert np.all(np.asarray(img) == (10, 20, 30))


def test_open_rgb_palette(tmp_path: Path) -> None:
    path = tmp_path / "pal.png"
    img = Image.new("P", (20, 10), 1)
    img.putpalette([0, 0, 0, 200, 100, 50] + [0] * (256 * 3 - 6))
    img.save(path)
    out = open_rgb(path)
    assert out.mode == "RGB" and out.size == (20, 10)
    assert np.all(np.asarray(out) == (200, 100, 50))


@pytest.mark.parametrize("ext", ["tif", "jpg"])
def test_open_rgb_cmyk(tmp_path: Path, ext: str) -> None:
    path = tmp_path / f"cmyk.{ext}"
    Image.new("CMYK", (20, 10), (255, 0, 0, 0)).save(path)  # pure cyan
    assert Image.open(path).mode == "CMYK"
    out = np.asarray(open_rgb(path)).astype(int)
    assert out.shape == (10, 20, 3)
    assert np.all(np.abs(out - (0, 255, 255)) <= 3)


def test_load_image_modes_are_three_channels(tmp_path: Path) -> None:
    for mode, color in [("L", 10), ("RGBA", (1, 2, 3, 4)), ("P", 0), ("CMYK", (0, 0, 0, 0)), ("LA", (5, 6))]:
        path = tmp_path / f"{mode}.{'tif' if mode == 'CMYK' else 'png'}"
        Image.new(mode, (24, 12), color).save(path)
        t = load_image(path)
        assert t.shape == (1, 3, 12, 24), mode
        assert t.dtype == torch.float32


def _exif_rotated(path: Path) -> Path:
    """A 64x32 (w x h) JPEG, red top-left quadrant, blue elsewhere, EXIF orientation 6."""
    img = Image.new("RGB", (64, 32), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 32, 16))
    exif = img.getexif()
    exif[0x0112] = 6
    img.save(path, exif=exif, quality=95)
    return path


def test_open_rgb_applies_exif_orientation(tmp_path: Path) -> None:
    path = _exif_rotated(tmp_path / "rot.jpg")
    assert Image.open(path).size == (64, 32)
    img = open_rgb(path)
    assert img.size == (32, 64)  # width/height swapped
    arr = np.asarray(img).astype(int)
    # Orientation 6 = rotate 90° clockwise for display: top-left moves to top-right.
    top_right, top_left = arr[4:28, 20:28].mean((0, 1)), arr[4:28, 4:12].mean((0, 1))
    assert top_right[0] > 200 and top_right[2] < 60
    assert top_left[2] > 200 and top_left[0] < 60


def test_load_image_exif_orientation_with_resize(tmp_path: Path) -> None:
    path = _exif_rotated(tmp_path / "rot.jpg")
    t = load_image(path)
    assert t.shape == (1, 3, 64, 32)
    t = load_image(path, size=16)
    assert t.shape == (1, 3, 32, 16)


@pytest.mark.parametrize(
    ("w", "h", "fmt"),
    [(300, 200, "JPEG"), (200, 300, "JPEG"), (100, 50, "PNG"), (40, 90, "PNG"), (64, 64, "PNG")],
)
def test_load_image_short_side_and_aspect(tmp_path: Path, w: int, h: int, fmt: str) -> None:
    path = tmp_path / f"img.{fmt.lower()}"
    Image.fromarray(noise_array(h, w)).save(path, fmt)
    t = load_image(path, size=64)
    assert t.ndim == 4 and t.shape[:2] == (1, 3)
    out_h, out_w = t.shape[2:]
    assert min(out_h, out_w) == 64
    assert abs(out_w / out_h - w / h) < 0.03
    assert (out_w >= out_h) == (w >= h)
    assert t.dtype == torch.float32
    assert t.min().item() >= 0.0 and t.max().item() <= 1.0


def test_load_image_no_size_is_exact(tmp_path: Path) -> None:
    arr = noise_array(10, 14)
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    t = load_image(path)
    assert t.shape == (1, 3, 10, 14)
    expected = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(t[0], expected, atol=0, rtol=0)


def test_load_image_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "fake.jpg"
    path.write_text("this is\nnot an image\n")
    with pytest.raises(DataError) as info:
        load_image(path)
    message = str(info.value)
    assert str(path) in message
    assert one_line(message)


def test_load_image_truncated_jpeg(tmp_path: Path) -> None:
    path = save_truncated_jpeg(tmp_path / "cut.jpg")
    with pytest.raises(DataError) as info:
        load_image(path, size=32)
    message = str(info.value)
    assert str(path) in message
    assert "no such file" not in message
    assert one_line(message)


def test_load_image_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.png"
    with pytest.raises(DataError, match="no such file") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_load_image_16bit_grayscale_png(tmp_path: Path) -> None:
    gradient = np.linspace(0, 65535, 32 * 64).reshape(32, 64).astype(np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(gradient).save(path)
    t = load_image(path)
    assert t.shape == (1, 3, 32, 64)
    assert abs(t.mean().item() - 0.5) < 0.05


# ---------------------------------------------------------------------------
# to_tensor / to_pil
# ---------------------------------------------------------------------------


def test_to_tensor_to_pil_round_trip() -> None:
    arr = noise_array(13, 17, seed=3)
    img = Image.fromarray(arr)
    t = to_tensor(img)
    assert t.shape == (3, 13, 17) and t.dtype == torch.float32
    assert t.min().item() >= 0.0 and t.max().item() <= 1.0
    back = to_pil(t)
    assert back.mode == "RGB" and back.size == (17, 13)
    np.testing.assert_array_equal(np.asarray(back), arr)
    # Batched (1, 3, H, W) input too.
    np.testing.assert_array_equal(np.asarray(to_pil(t.unsqueeze(0))), arr)
    # The input image is untouched.
    np.testing.assert_array_equal(np.asarray(img), arr)


def test_to_pil_clamps_and_keeps_input() -> None:
    t = torch.tensor([[[-0.5, 0.0, 0.5, 1.0, 1.5]]]).expand(3, 2, 5).contiguous()
    original = t.clone()
    img = to_pil(t)
    torch.testing.assert_close(t, original, atol=0, rtol=0)
    arr = np.asarray(img)
    assert arr.shape == (2, 5, 3)
    np.testing.assert_array_equal(arr[0, :, 0], [0, 0, 128, 255, 255])


def test_to_pil_requires_grad_input() -> None:
    t = torch.rand(1, 3, 4, 4, requires_grad=True)
    original = t.detach().clone()
    img = to_pil(t)
    assert img.size == (4, 4)
    torch.testing.assert_close(t.detach(), original, atol=0, rtol=0)


# ---------------------------------------------------------------------------
# PhotoDataset
# ---------------------------------------------------------------------------


def test_dataset_random_crop_deterministic_and_varied(tmp_path: Path) -> None:
    path = save_noise(tmp_path / "wide.png", 96, 32)  # already short side 32: no resize
    arr = noise_array(32, 96)
    ds = PhotoDataset([path], image_size=32)
    a = ds[(0, 123)]["image"]
    b = PhotoDataset([path], image_size=32)[(0, 123)]["image"]
    assert a.shape == (3, 32, 32)
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    # Each crop is a genuine window of the photo.
    full = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    lefts = set()
    for seed in range(20):
        crop = ds[(0, seed)]["image"]
        matches = [left for left in range(96 - 32 + 1) if torch.equal(crop, full[:, :, left : left + 32])]
        assert len(matches) == 1, f"seed {seed}: not a window of the image"
        lefts.add(matches[0])
    assert len(lefts) >= 12  # different seeds give (mostly) different crops


@pytest.mark.parametrize(("w", "h"), [(40, 100), (100, 40), (50, 50), (20, 30)])
def test_dataset_output_is_square(tmp_path: Path, w: int, h: int) -> None:
    path = save_noise(tmp_path / "p.png", w, h)
    ds = PhotoDataset([path], image_size=32)
    for key in [0, (0, 1), (0, 99)]:
        sample = ds[key]
        assert sample["image"].shape == (3, 32, 32)
        assert sample["image"].dtype == torch.float32
        assert sample["skipped"] == []


def test_dataset_random_crop_varies_on_portrait(tmp_path: Path) -> None:
    path = save_noise(tmp_path / "tall.png", 32, 96)
    ds = PhotoDataset([path], image_size=32)
    crops = {ds[(0, seed)]["image"].sum().item() for seed in range(10)}
    assert len(crops) > 5


def test_dataset_int_key_is_center_crop(tmp_path: Path) -> None:
    arr = noise_array(32, 96)
    path = tmp_path / "wide.png"
    Image.fromarray(arr).save(path)
    ds = PhotoDataset([path], image_size=32)
    expected = torch.from_numpy(arr[:, 32:64]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(ds[0]["image"], expected, atol=0, rtol=0)
    # random_crop=False: seeded keys give the centre crop too.
    val = PhotoDataset([path], image_size=32, random_crop=False)
    torch.testing.assert_close(val[(0, 7)]["image"], expected, atol=0, rtol=0)
    # Portrait: vertical centre.
    tall = noise_array(96, 32, seed=1)
    path2 = tmp_path / "tall.png"
    Image.fromarray(tall).save(path2)
    expected2 = torch.from_numpy(tall[32:64]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(PhotoDataset([path2], 32)[0]["image"], expected2, atol=0, rtol=0)


def test_dataset_short_side_crops_the_photo_at_that_scale(tmp_path: Path) -> None:
    # short_side 64 on a 192x64 photo: no resize, so every crop is a 32-px window of the full photo,
    # shifted both ways (without short_side the photo is shrunk to a 32-px strip first).
    arr = noise_array(64, 192)
    path = tmp_path / "wide.png"
    Image.fromarray(arr).save(path)
    full = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    ds = PhotoDataset([path], image_size=32, short_side=64)
    tops, lefts = set(), set()
    for seed in range(20):
        crop = ds[(0, seed)]["image"]
        found = [(t, x) for t in range(33) for x in range(161) if torch.equal(crop, full[:, t : t + 32, x : x + 32])]
        assert len(found) == 1, f"seed {seed}: not a window of the photo"
        tops.add(found[0][0])
        lefts.add(found[0][1])
    assert len(tops) > 5 and len(lefts) > 5
    torch.testing.assert_close(ds[0]["image"], full[:, 16:48, 80:112], atol=0, rtol=0)  # centre crop
    # A larger photo is resized so its short side is 64, then cropped.
    big = save_noise(tmp_path / "big.png", 300, 100)
    assert PhotoDataset([big], image_size=32, short_side=64)[(0, 3)]["image"].shape == (3, 32, 32)


def test_datamodule_short_side_smaller_than_the_crop_is_refused() -> None:
    with pytest.raises(DataError, match=r"^data\.short_side=16: smaller than the crop, data\.image_size=32$"):
        PhotoDataModule(root=None, image_size=32, short_side=16)
    dm = PhotoDataModule(root=None, image_size=32, short_side=48, num_workers=0)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert batch["image"].shape[-2:] == (32, 32)


def _color_of(sample: dict) -> tuple[int, ...]:
    return tuple(round(v) for v in (sample["image"].mean((1, 2)) * 255).tolist())


def test_dataset_replaces_corrupt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good0 = save_solid(tmp_path / "0.png", (255, 0, 0))
    bad = save_truncated_jpeg(tmp_path / "1.jpg")
    good2 = save_solid(tmp_path / "2.png", (0, 255, 0))
    ds = PhotoDataset([good0, bad, good2], image_size=16)

    opened: list[Path] = []
    real_open_rgb = data.open_rgb

    def counting_open_rgb(path, *args, **kwargs):
        opened.append(Path(path))
        return real_open_rgb(path, *args, **kwargs)

    monkeypatch.setattr(data, "open_rgb", counting_open_rgb)

    sample = ds[(1, 5)]
    assert sample["image"].shape == (3, 16, 16)
    assert _color_of(sample) == (0, 255, 0)  # the next readable file
    assert len(sample["skipped"]) == 1
    assert str(bad) in sample["skipped"][0]
    assert "not a readable image (image file is truncated" in sample["skipped"][0]  # the reason
    assert opened.count(bad) == 1

    # The next access of the same bad index still works, without decoding it again.
    again = ds[(1, 6)]
    assert _color_of(again) == (0, 255, 0)
    assert again["image"].shape == (3, 16, 16)
    assert opened.count(bad) == 1
    assert again["skipped"] == []

    # Good indices are unaffected.
    assert _color_of(ds[0]) == (255, 0, 0)
    assert ds[2]["skipped"] == []


def test_dataset_skipped_names_the_reason(tmp_path: Path) -> None:
    fake = tmp_path / "a.jpg"
    fake.write_text("not an image")
    good = save_solid(tmp_path / "b.png", (0, 0, 255))
    sample = PhotoDataset([fake, good], image_size=16)[0]
    assert _color_of(sample) == (0, 0, 255)
    assert len(sample["skipped"]) == 1
    assert str(fake) in sample["skipped"][0]
    assert "not a readable image (cannot identify image file" in sample["skipped"][0]


def test_dataset_bad_last_file_wraps_around(tmp_path: Path) -> None:
    good = save_solid(tmp_path / "0.png", (255, 0, 0))
    missing = tmp_path / "deleted.png"  # listed but gone (e.g. removed after the scan)
    sample = PhotoDataset([good, missing], image_size=16)[(1, 0)]
    assert _color_of(sample) == (255, 0, 0)
    assert len(sample["skipped"]) == 1
    assert str(missing) in sample["skipped"][0]
    assert "no such file" in sample["skipped"][0]


def test_dataset_all_unreadable(tmp_path: Path) -> None:
    files = []
    for k in range(3):
        path = tmp_path / f"{k}.jpg"
        path.write_bytes(b"\x00" * 10)
        files.append(path)
    ds = PhotoDataset(files, image_size=16)
    with pytest.raises(DataError):
        ds[(0, 1)]
    # Still an error (not a crash) on a later access, when all are known bad.
    with pytest.raises(DataError):
        ds[2]


def test_dataset_sample_photos() -> None:
    files = find_images(sample_photos_dir())
    ds = PhotoDataset(files, image_size=32)
    assert len(ds) == 4
    for k in range(len(ds)):
        image = ds[(k, k)]["image"]
        assert image.shape == (3, 32, 32)
        assert image.min().item() >= 0.0 and image.max().item() <= 1.0
        assert image.std().item() > 0.01  # a real photo, not a blank crop


# ---------------------------------------------------------------------------
# collate
# ---------------------------------------------------------------------------


def test_collate() -> None:
    samples = [
        {"image": torch.full((3, 8, 8), 0.1), "skipped": ["a: OSError: x"]},
        {"image": torch.full((3, 8, 8), 0.2), "skipped": []},
        {"image": torch.full((3, 8, 8), 0.3), "skipped": ["b: OSError: y", "c: OSError: z"]},
    ]
    batch = collate(samples)
    assert batch["image"].shape == (3, 3, 8, 8)
    torch.testing.assert_close(batch["image"][:, 0, 0, 0], torch.tensor([0.1, 0.2, 0.3]))
    assert batch["skipped"] == ["a: OSError: x", "b: OSError: y", "c: OSError: z"]


# ---------------------------------------------------------------------------
# PhotoDataModule
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"image_size": 8}, {"image_size": 0}, {"batch_size": 0}, {"batch_size": -1}, {"num_workers": -1}],
)
def test_datamodule_invalid_settings(kwargs: dict) -> None:
    with pytest.raises(DataError) as info:
        PhotoDataModule(root=None, **kwargs)
    assert one_line(str(info.value))


def test_datamodule_embedded_sample_photos() -> None:
    dm = PhotoDataModule(root=None, image_size=32, batch_size=2, num_workers=0)
    dm.setup("fit")
    sample_dir = sample_photos_dir()
    assert len(dm.train_files) == 4
    assert dm.train_files == sorted(sample_dir.glob("*.jpg"))
    assert {p.name for p in dm.train_files} == {"astronaut.jpg", "chelsea.jpg", "coffee.jpg", "rocket.jpg"}
    assert len(dm.val_files) == 4
    assert all(p.parent == sample_dir for p in dm.val_files)


def test_datamodule_num_val_images(tmp_path: Path) -> None:
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0, num_val_images=2)
    dm.setup()
    assert dm.val_files == find_images(sample_photos_dir())[:2]
    assert len(dm.train_files) == 4  # not limited


def test_datamodule_val_images_list_used_as_is(tmp_path: Path) -> None:
    paths = [str(save_solid(tmp_path / name, (9, 9, 9))) for name in ["z.png", "a.png", "m.png"]]
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0, val_images=paths, num_val_images=4)
    dm.setup()
    assert dm.val_files == [Path(p) for p in paths]  # order kept, not re-sorted or scanned


def test_datamodule_val_images_folder(tmp_path: Path) -> None:
    folder = tmp_path / "val"
    expected = [save_solid(folder / f"{k}.png", (k, k, k)) for k in range(5)]
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0, val_images=str(folder), num_val_images=3)
    dm.setup()
    assert dm.val_files == expected[:3]


def test_datamodule_train_root_and_annotations(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    save_noise(root / "a.png", 8, 8)
    save_noise(root / "b.png", 8, 8)
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps({"images": [{"file_name": "b.png"}]}))
    dm = PhotoDataModule(root=str(root), annotations=str(ann), image_size=32, num_workers=0)
    dm.setup()
    assert dm.train_files == [root / "b.png"]


def test_datamodule_missing_root(tmp_path: Path) -> None:
    dm = PhotoDataModule(root=str(tmp_path / "nope"), image_size=32, num_workers=0)
    with pytest.raises(DataError, match=r"data\.root="):
        dm.setup()


def test_datamodule_train_dataloader_needs_trainer() -> None:
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0)
    dm.setup()
    with pytest.raises(DataError, match=r"trainer\.max_steps"):
        dm.train_dataloader()


def _fake_trainer(**overrides) -> SimpleNamespace:
    settings = {"max_steps": 3, "accumulate_grad_batches": 1, "global_step": 0, "global_rank": 0, "world_size": 1}
    settings.update(overrides)
    return SimpleNamespace(**settings)


def test_datamodule_train_dataloader_unlimited_steps() -> None:
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0)
    dm.setup()
    dm.trainer = _fake_trainer(max_steps=-1)
    with pytest.raises(DataError, match=r"trainer\.max_steps"):
        dm.train_dataloader()


def test_datamodule_train_dataloader_resumes_stream() -> None:
    dm = PhotoDataModule(root=None, image_size=32, batch_size=2, num_workers=0, seed=7)
    dm.setup()
    dm.trainer = _fake_trainer(max_steps=3, accumulate_grad_batches=2, global_step=1)
    loader = dm.train_dataloader()
    sampler = loader.sampler
    assert isinstance(sampler, ResumableSampler)
    per_step = 2 * 2
    assert sampler.length == 3 * per_step
    assert sampler.start == 1 * per_step
    assert sampler.seed == 7
    assert sampler.num_items == 4
    fresh = list(ResumableSampler(4, length=3 * per_step, seed=7))
    assert list(sampler) == fresh[per_step:]

    batches = list(loader)
    assert len(batches) == (3 * per_step - per_step) // 2
    for batch in batches:
        assert batch["image"].shape == (2, 3, 32, 32)
        assert batch["skipped"] == []
    # The first batch is exactly the dataset items at the resumed positions.
    ds = PhotoDataset(dm.train_files, 32)
    expected = torch.stack([ds[key]["image"] for key in fresh[per_step : per_step + 2]])
    torch.testing.assert_close(batches[0]["image"], expected, atol=0, rtol=0)


def test_datamodule_train_dataloader_rank() -> None:
    dm = PhotoDataModule(root=None, image_size=32, batch_size=1, num_workers=0, seed=1)
    dm.setup()
    dm.trainer = _fake_trainer(max_steps=4, global_rank=1, world_size=2)
    sampler = dm.train_dataloader().sampler
    single = list(ResumableSampler(4, length=8, seed=1))
    assert list(sampler) == single[1::2]


def test_datamodule_val_dataloader_one_batch_center_crops() -> None:
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0, num_val_images=3)
    dm.setup()
    batches = list(dm.val_dataloader())
    assert len(batches) == 1
    assert batches[0]["image"].shape == (3, 3, 32, 32)
    # Deterministic centre crops.
    again = next(iter(dm.val_dataloader()))
    torch.testing.assert_close(batches[0]["image"], again["image"], atol=0, rtol=0)


def test_neighbouring_seeds_do_not_share_passes() -> None:
    n = 50
    seed0 = [i for i, _ in ResumableSampler(n, length=2 * n, seed=0)]
    seed1 = [i for i, _ in ResumableSampler(n, length=n, seed=1)]
    assert seed0[n:] != seed1  # pass 1 of seed 0 is not pass 0 of seed 1


def test_adjust_colors_known_values() -> None:
    def pixel(color: tuple[int, int, int], **kwargs: float) -> list[int]:
        return np.array(data.adjust_colors(Image.new("RGB", (4, 4), color), **kwargs))[0, 0].tolist()

    assert pixel((200, 100, 50)) == [200, 100, 50]  # the defaults change nothing
    assert pixel((255, 0, 0), hue=1 / 3) == [0, 255, 0]  # a third of the circle: red to green
    assert pixel((255, 0, 0), hue=-0.5) == pixel((255, 0, 0), hue=0.5) == [0, 252, 255]  # cyan, 8-bit hues
    assert pixel((255, 0, 0), hue=1.0) == [255, 0, 0]  # the whole circle
    assert pixel((200, 100, 50), saturation=0) == [124, 124, 124]  # grey: ITU-R 601 luma
    assert pixel((100, 100, 100), brightness=1.5) == [150, 150, 150]
    # A grey has no hue or saturation to change, and a flat image no contrast.
    assert pixel((100, 100, 100), contrast=0.5, saturation=2, hue=0.25) == [100, 100, 100]


def test_jitter_colors_draws_factors_within_the_strength() -> None:
    grey = Image.new("RGB", (4, 4), (100, 100, 100))
    values = {np.array(data.jitter_colors(grey, random.Random(seed), 0.4))[0, 0, 0] for seed in range(50)}
    assert min(values) >= 60 and max(values) <= 140  # brightness factors in [0.6, 1.4]
    assert len(values) > 20
    assert np.array(data.jitter_colors(grey, random.Random(0), 0.0))[0, 0, 0] == 100


def test_dataset_flip_and_jitter_only_change_training_crops(tmp_path: Path) -> None:
    arr = noise_array(32, 32)
    path = tmp_path / "square.png"
    Image.fromarray(arr).save(path)
    photo = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    flipping = PhotoDataset([path], image_size=32, flip=True)
    crops = [flipping[(0, seed)]["image"] for seed in range(20)]
    mirrored = [torch.equal(c, photo.flip(-1)) for c in crops]
    assert all(torch.equal(c, photo) or m for c, m in zip(crops, mirrored, strict=True))
    assert 3 < sum(mirrored) < 17
    jittered = PhotoDataset([path], image_size=32, flip=True, color_jitter=0.5)
    assert not any(torch.equal(jittered[(0, seed)]["image"], crops[seed]) for seed in range(5))
    # The same key gives the same sample (a resumed run), and the previews are never augmented.
    assert torch.equal(jittered[(0, 3)]["image"], jittered[(0, 3)]["image"])
    assert torch.equal(jittered[0]["image"], photo)
    preview = PhotoDataset([path], image_size=32, random_crop=False, flip=True, color_jitter=0.5)
    assert torch.equal(preview[(0, 3)]["image"], photo)
    # Without augmentation the training crop is the photo's window, untouched.
    assert torch.equal(PhotoDataset([path], image_size=32)[(0, 3)]["image"], photo)


def test_datamodule_passes_augmentation_to_training_and_checks_its_range() -> None:
    with pytest.raises(DataError, match=r"^data\.color_jitter=1\.5: must be a number from 0 to 1$"):
        PhotoDataModule(root=None, color_jitter=1.5)
    dm = PhotoDataModule(root=None, image_size=32, num_workers=0, flip=True, color_jitter=0.3)
    dm.setup()
    dm.trainer = SimpleNamespace(max_steps=1, accumulate_grad_batches=1, global_step=0, global_rank=0, world_size=1)
    dataset = dm.train_dataloader().dataset
    assert (dataset.flip, dataset.color_jitter) == (True, 0.3)
    assert (dm.val_dataloader().dataset.flip, dm.hparams.color_jitter) == (False, 0.3)
