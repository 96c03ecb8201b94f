"""The synthetic COCO-format set: valid COCO (pycocotools loads it), boxes inside their images and tight around the
drawn shape, objects at many scales, reproducible from the seed; its PNGs decode with Pillow; bad directories and
files are refused with one line naming them."""
import io
import json
import math

import numpy as np
import pytest

from spinescope.analysis.limits import ResourceLimitError
from spinescope.analysis.training.dataset import DatasetError, load_split, make_dataset
from spinescope.analysis.training.png import png_bytes


def _pixels(path):
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def test_png_writer_round_trips_through_pillow():
    from PIL import Image

    image = np.random.default_rng(0).integers(0, 256, size=(7, 11, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(image))))
    assert decoded.shape == (7, 11, 3) and np.array_equal(decoded, image)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shapes") / "set"
    summary = make_dataset(directory, images=24, val_images=8, size=(128, 160), seed=3)
    return directory, summary


def test_pycocotools_loads_both_splits(dataset):
    from pycocotools.coco import COCO

    directory, summary = dataset
    for split, count in (("train", 24), ("val", 8)):
        coco = COCO(str(directory / "annotations" / f"{split}.json"))
        assert len(coco.getImgIds()) == count
        assert sorted(coco.getCatIds()) == [1, 2, 3]
        assert len(coco.getAnnIds()) == summary.objects[split] > count  # about 3.5 objects per image
        for image in coco.loadImgs(coco.getImgIds()):
            assert (image["height"], image["width"]) == (128, 160)
            assert _pixels(directory / split / image["file_name"]).shape == (128, 160, 3)


def test_boxes_are_inside_their_images_and_tight_around_the_shape(dataset):
    directory, _ = dataset
    data = json.loads((directory / "annotations" / "train.json").read_text())
    images = {image["id"]: image for image in data["images"]}
    for annotation in data["annotations"][:30]:
        image = images[annotation["image_id"]]
        x, y, w, h = annotation["bbox"]
        assert 0 <= x and 0 <= y and x + w <= image["width"] and y + h <= image["height"] and w > 0 and h > 0
        assert annotation["area"] == w * h
        pixels = _pixels(directory / "train" / image["file_name"]).astype(int)
        inside = pixels[y:y + h, x:x + w]
        # Each shape is one colour with a little noise: its first and last rows and columns hold shape pixels,
        # so the box's border rows and columns are not all background-like far from the shape's median colour.
        colour = np.median(inside[h // 2:h // 2 + 1, w // 2:w // 2 + 1].reshape(-1, 3), axis=0)
        near = np.abs(inside - colour).max(axis=2) < 40
        assert near[0].any() and near[-1].any() and near[:, 0].any() and near[:, -1].any()


def test_objects_span_a_range_of_scales(dataset):
    directory, summary = dataset
    sides = [math.sqrt(a["area"]) for split in ("train", "val")
             for a in json.loads((directory / "annotations" / f"{split}.json").read_text())["annotations"]]
    # Sizes are drawn from 10% to 80% of the 128 px side: 12.8-102 px before the aspect ratio.
    assert min(sides) < 20 and max(sides) > 60 and max(sides) / min(sides) > 4
    assert summary.size_counts["small"] > 0 and summary.size_counts["medium"] > 0
    assert sum(summary.size_counts.values()) == len(sides)


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    first = make_dataset(tmp_path / "a", images=4, val_images=2, size=64, seed=7)
    make_dataset(tmp_path / "b", images=6, val_images=2, size=64, seed=7)
    make_dataset(tmp_path / "c", images=4, val_images=2, size=64, seed=8)
    assert first.images == {"train": 4, "val": 2}
    for index in range(4):
        name = f"train/{index:06d}.png"
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a" / "annotations" / "val.json").read_bytes() == \
        (tmp_path / "b" / "annotations" / "val.json").read_bytes()
    assert (tmp_path / "a" / "train/000000.png").read_bytes() != (tmp_path / "c" / "train/000000.png").read_bytes()


def test_load_split_gives_boxes_as_corners_and_zero_based_labels(dataset):
    directory, _ = dataset
    split = load_split(directory, "val")
    data = json.loads((directory / "annotations" / "val.json").read_text())
    first = [a for a in data["annotations"] if a["image_id"] == data["images"][0]["id"]]
    x, y, w, h = first[0]["bbox"]
    assert split.targets[0]["boxes"][0] == [x, y, x + w, y + h]
    assert split.targets[0]["labels"][0] == first[0]["category_id"] - 1
    assert split.category_ids == [1, 2, 3]


def test_requests_too_large_are_refused_before_writing(tmp_path):
    with pytest.raises(ResourceLimitError, match="over the 4.0 GiB limit"):
        make_dataset(tmp_path / "big", images=40_000, size=1024)
    with pytest.raises(DatasetError, match="image height must be an integer from 32 to 1024"):
        make_dataset(tmp_path / "small", images=4, size=(16, 64))
    assert not (tmp_path / "big").exists() and not (tmp_path / "small").exists()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(DatasetError, match="exists and is not an empty directory"):
        make_dataset(tmp_path / "full", images=2, size=64)


def _write(directory, split, data):
    (directory / "annotations").mkdir(parents=True, exist_ok=True)
    path = directory / "annotations" / f"{split}.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_bad_annotation_files_are_one_line_naming_the_file(tmp_path):
    make_dataset(tmp_path / "ok", images=2, val_images=1, size=64, seed=0)
    good = json.loads((tmp_path / "ok" / "annotations" / "train.json").read_text())
    cases = [
        ('{"images": [', "not valid JSON"),
        ({"images": [], "annotations": [], "categories": []}, "no images"),
        ({**good, "annotations": [{**good["annotations"][0], "bbox": [60, 60, 10, 10]}]}, "outside its 64x64 image"),
        ({**good, "annotations": [{**good["annotations"][0], "category_id": 9}]}, "unknown category_id 9"),
        ({**good, "images": [{**good["images"][0], "file_name": "missing.png"}]}, "not found"),
        ([1, 2], "expected a JSON object"),
    ]
    for data, message in cases:
        path = _write(tmp_path / "ok", "train", data)
        with pytest.raises(DatasetError, match=message) as error:
            load_split(tmp_path / "ok", "train")
        assert str(path) in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(DatasetError, match="no such dataset directory"):
        load_split(tmp_path / "nowhere", "train")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="val.json: no such file"):
        load_split(tmp_path / "empty", "val")
