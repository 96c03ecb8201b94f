"""A small synthetic COCO-format detection set with objects at many scales, and the reader of any COCO-format
detection directory.

Layout (COCO's): DIR/train/*.png, DIR/val/*.png, DIR/annotations/train.json and DIR/annotations/val.json, each
`{"images": [...], "annotations": [...], "categories": [...]}` with boxes as [x, y, width, height] in pixels (a
pixel column c spans [c, c + 1]). An image's `file_name` is read from DIR/<split>/ first, then from DIR/.

Synthetic images: a noise background with filled shapes (rectangle, ellipse, triangle: the classes), each shape's
size log-uniform from 10% to 80% of the image's shorter side (the smallest about as large as RetinaNet's
smallest anchors at P3 when the images are trained at their own size), so COCO's small (< 32^2 px), medium and
large (> 96^2 px) objects all occur from 128 px images up. Shapes do not overlap, and each box is the tight box of the
pixels drawn. Image i of a split is drawn from its own seed (seed, split, i): the same seed gives the same images
whatever the number asked for.
"""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spinescope.analysis.limits import ResourceLimitError, byte_text
from spinescope.analysis.training.png import png_bytes

SPLITS = ("train", "val")
SHAPES = ("rectangle", "ellipse", "triangle")  # category ids 1, 2, 3
MIN_SIDE, MAX_SIDE = 32, 1024  # image sides, pixels
MAX_IMAGES = 50_000  # per split
MAX_OBJECTS = 20  # per image
MAX_RAW_BYTES = 4 * 2**30  # uncompressed RGB pixels of all images together
MAX_ANNOTATION_BYTES = 512 * 2**20  # an annotations JSON read by `load_split`
SMALL_FRACTION, LARGE_FRACTION = 0.1, 0.8  # of the shorter side: the range of object sizes
PLACEMENT_TRIES = 50


class DatasetError(ValueError):
    """A dataset directory or file that cannot be used, or a request too large; the message is one line naming it."""


def _name(path: Path | str) -> str:
    return ascii(str(path))[1:-1]


def check_request(images: int, val_images: int, height: int, width: int, max_objects: int) -> int:
    """Raises DatasetError or ResourceLimitError (one line) for a dataset request outside the limits; returns
    the bytes of its uncompressed pixels (PNG files of noise are about that size)."""
    for what, value, low, high in (("images", images, 1, MAX_IMAGES), ("validation images", val_images, 1, MAX_IMAGES),
                                   ("image height", height, MIN_SIDE, MAX_SIDE),
                                   ("image width", width, MIN_SIDE, MAX_SIDE),
                                   ("objects per image", max_objects, 1, MAX_OBJECTS)):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DatasetError(f"{what} must be an integer from {low} to {high}, got {value!r:.40}")
    raw = (images + val_images) * height * width * 3
    if raw > MAX_RAW_BYTES:
        raise ResourceLimitError(f"refused: {images + val_images:,} images of {width}x{height} px are "
                                 f"{byte_text(raw)} of pixels, over the {byte_text(MAX_RAW_BYTES)} limit; ask for "
                                 "fewer or smaller images")
    return raw


def _shape_mask(kind: str, h: int, w: int) -> np.ndarray:
    """Returns the boolean mask (h, w) of a shape filling an h x w box."""
    ys = (np.arange(h) + 0.5)[:, None]
    xs = (np.arange(w) + 0.5)[None, :]
    if kind == "rectangle":
        return np.ones((h, w), bool)
    if kind == "ellipse":
        return ((xs - w / 2) / (w / 2)) ** 2 + ((ys - h / 2) / (h / 2)) ** 2 <= 1.0
    # triangle: apex at the top centre, base along the bottom
    return np.abs(xs - w / 2) <= (w / 2) * ys / h + 0.5


def _draw_image(rng: np.random.Generator, height: int, width: int, max_objects: int) -> tuple[np.ndarray, list]:
    """Returns (image uint8 (H, W, 3), [(category id, [x, y, w, h]), ...]) for one synthetic image."""
    base = rng.uniform(40, 215, size=3)
    image = base + rng.normal(0, 25, size=(height, width, 3))
    shorter = min(height, width)
    low, high = max(6.0, SMALL_FRACTION * shorter), LARGE_FRACTION * shorter
    count = int(rng.integers(1, max_objects + 1))
    sides = np.sort(np.exp(rng.uniform(math.log(low), math.log(high), size=count)))[::-1]  # large ones placed first
    taken = np.zeros((height, width), bool)
    objects = []
    for side in sides:
        aspect = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
        h = int(min(height, max(3, round(side / math.sqrt(aspect)))))
        w = int(min(width, max(3, round(side * math.sqrt(aspect)))))
        kind_index = int(rng.integers(len(SHAPES)))
        colour = rng.uniform(0, 255, size=3)
        for _ in range(PLACEMENT_TRIES):
            y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
            if not taken[y0:y0 + h, x0:x0 + w].any():
                break
        else:
            continue  # no free place for this one
        mask = _shape_mask(SHAPES[kind_index], h, w)
        region = image[y0:y0 + h, x0:x0 + w]
        region[mask] = colour + rng.normal(0, 8, size=(int(mask.sum()), 3))
        taken[y0:y0 + h, x0:x0 + w] = True
        rows, cols = np.nonzero(mask)
        box = [x0 + int(cols.min()), y0 + int(rows.min()), int(cols.max() - cols.min() + 1),
               int(rows.max() - rows.min() + 1)]
        objects.append((kind_index + 1, box))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), objects


@dataclass(frozen=True)
class DatasetSummary:
    """What `make_dataset` wrote: images and objects per split, the range of object sides (sqrt of box area, px)
    and the count of COCO's small / medium / large objects over both splits, and the bytes written."""

    directory: str
    images: dict
    objects: dict
    side_range: tuple[float, float]
    size_counts: dict
    bytes_written: int


def coco_size(area: float) -> str:
    """Returns COCO's size class of a box of `area` px^2: 'small' (< 32^2), 'medium' or 'large' (> 96^2)."""
    return "small" if area < 32 ** 2 else "medium" if area <= 96 ** 2 else "large"


def make_dataset(directory: str | Path, images: int = 64, val_images: int | None = None, size: int | tuple = 128,
                 seed: int = 0, max_objects: int = 6) -> DatasetSummary:
    """Writes the synthetic set into `directory` (new or empty): `images` training and `val_images` (default
    max(8, images // 4)) validation PNGs of `size` px (a side, or (height, width)) and their COCO annotations.
    Raises DatasetError / ResourceLimitError (one line) for a request outside the limits, a non-empty directory or
    too little disk space, before writing anything. Returns a DatasetSummary."""
    height, width = (size, size) if isinstance(size, int) else size
    val_images = max(8, images // 4) if val_images is None else val_images
    raw = check_request(images, val_images, height, width, max_objects)
    directory = Path(directory)
    try:
        if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
            raise DatasetError(f"{_name(directory)} exists and is not an empty directory; give a new one")
        existing = next(folder for folder in (directory, *directory.absolute().parents) if folder.exists())
        free = shutil.disk_usage(existing).free
        if raw * 1.1 > free:
            raise ResourceLimitError(f"refused: the images need about {byte_text(raw * 1.1)} and "
                                     f"{_name(existing)} has {byte_text(free)} free")
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatasetError(f"cannot create {_name(directory)} ({error.strerror or type(error).__name__})") from None
    written, counts, sides, size_counts = 0, {}, [], {"small": 0, "medium": 0, "large": 0}
    for split_index, (split, count) in enumerate(zip(SPLITS, (images, val_images))):
        (directory / split).mkdir()
        data = {"info": {"description": f"SpineScope synthetic shapes, seed {seed}", "version": "1"},
                "images": [], "annotations": [],
                "categories": [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(SHAPES)]}
        for index in range(count):
            rng = np.random.default_rng([seed, split_index, index])
            pixels, objects = _draw_image(rng, height, width, max_objects)
            file_name = f"{index:06d}.png"
            encoded = png_bytes(pixels, level=1)
            (directory / split / file_name).write_bytes(encoded)
            written += len(encoded)
            image_id = index + 1
            data["images"].append({"id": image_id, "file_name": file_name, "height": height, "width": width})
            for category, box in objects:
                area = box[2] * box[3]
                data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": image_id,
                                            "category_id": category, "bbox": box, "area": area, "iscrowd": 0})
                sides.append(math.sqrt(area))
                size_counts[coco_size(area)] += 1
        (directory / "annotations").mkdir(exist_ok=True)
        text = json.dumps(data)
        (directory / "annotations" / f"{split}.json").write_text(text)
        written += len(text)
        counts[split] = len(data["annotations"])
    return DatasetSummary(str(directory), {"train": images, "val": val_images}, counts,
                          (min(sides, default=0.0), max(sides, default=0.0)), size_counts, written)


@dataclass(frozen=True)
class Split:
    """One split of a COCO-format directory, checked: `coco` is the annotations JSON as read; `paths` the image
    files in the order of `coco['images']`; `targets[i]` that image's boxes (x1, y1, x2, y2 in pixels) and labels
    (0..K-1, the categories in `category_ids` order); `category_ids[label]` is the COCO category id."""

    name: str
    annotations_file: str
    coco: dict
    paths: list
    targets: list
    category_ids: list


def _field(problem_file: str, where: str, message: str) -> DatasetError:
    return DatasetError(f"{problem_file}: {where}: {message}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def load_split(dataset_dir: str | Path, split: str) -> Split:
    """Returns the checked Split `split` ('train' or 'val') of the COCO-format directory `dataset_dir`. Raises
    DatasetError, one line naming the file, for a missing or unreadable directory or file, malformed JSON, a field
    missing or of the wrong type, a box outside its image or without area, an unknown image or category id, or an
    image file that does not exist."""
    root = Path(dataset_dir)
    if not root.is_dir():
        raise DatasetError(f"{_name(root)}: no such dataset directory (make one with spinescope make-dataset)")
    path = root / "annotations" / f"{split}.json"
    shown = _name(path)
    try:
        if path.stat().st_size > MAX_ANNOTATION_BYTES:
            raise DatasetError(f"{shown}: larger than {byte_text(MAX_ANNOTATION_BYTES)}")
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise DatasetError(f"{shown}: no such file (a COCO-format directory has annotations/train.json and "
                           "annotations/val.json)") from None
    except OSError as error:
        raise DatasetError(f"{shown}: cannot read ({error.strerror or type(error).__name__})") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{shown}: not valid JSON ({error.msg} at line {error.lineno} column {error.colno})") \
            from None
    except (UnicodeDecodeError, RecursionError, ValueError):
        raise DatasetError(f"{shown}: not valid JSON") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{shown}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{shown}: '{key}' must be a list")
    if not data["images"]:
        raise DatasetError(f"{shown}: no images")
    category_ids = []
    for i, category in enumerate(data["categories"]):
        if not isinstance(category, dict) or not _integer(category.get("id")):
            raise _field(shown, f"categories[{i}]", "needs an integer 'id'")
        category_ids.append(category["id"])
    if not category_ids or len(set(category_ids)) != len(category_ids):
        raise DatasetError(f"{shown}: categories must be a non-empty list of distinct ids")
    label_of = {category_id: index for index, category_id in enumerate(category_ids)}
    images, paths = {}, []
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not _integer(image.get("id")) or not isinstance(image.get("file_name"), str):
            raise _field(shown, f"images[{i}]", "needs an integer 'id' and a string 'file_name'")
        if not all(_integer(image.get(key)) and image[key] > 0 for key in ("width", "height")):
            raise _field(shown, f"images[{i}]", "needs positive integers 'width' and 'height'")
        if image["id"] in images:
            raise _field(shown, f"images[{i}]", f"image id {image['id']} appears twice")
        name = Path(image["file_name"])
        if name.is_absolute() or ".." in name.parts:
            raise _field(shown, f"images[{i}]", f"file_name {_name(image['file_name'])[:80]} must be relative")
        candidates = [root / split / name, root / name]
        found = next((candidate for candidate in candidates if candidate.is_file()), None)
        if found is None:
            raise _field(shown, f"images[{i}]", f"image file {_name(image['file_name'])[:80]} not found in "
                                                f"{_name(root / split)} or {_name(root)}")
        images[image["id"]] = (len(paths), image)
        paths.append(str(found))
    targets = [{"boxes": [], "labels": []} for _ in paths]
    for i, annotation in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(annotation, dict):
            raise _field(shown, where, "must be an object")
        if annotation.get("image_id") not in images:
            raise _field(shown, where, f"unknown image_id {annotation.get('image_id')!r:.40}")
        if annotation.get("category_id") not in label_of:
            raise _field(shown, where, f"unknown category_id {annotation.get('category_id')!r:.40}")
        box = annotation.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(_number(v) for v in box)):
            raise _field(shown, where, "bbox must be [x, y, width, height] numbers")
        index, image = images[annotation["image_id"]]
        x, y, w, h = box
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > image["width"] + 1e-6 or y + h > image["height"] + 1e-6:
            raise _field(shown, where, f"bbox {box} is empty or outside its {image['width']}x{image['height']} image")
        if annotation.get("iscrowd", 0):
            continue  # crowd regions are ignored by COCO's evaluation and not trained on
        targets[index]["boxes"].append([x, y, x + w, y + h])
        targets[index]["labels"].append(label_of[annotation["category_id"]])
    return Split(split, shown, data, paths, targets, category_ids)
