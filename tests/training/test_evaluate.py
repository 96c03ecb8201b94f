"""COCO evaluation, independent of any model: detections equal to the ground truth give AP 1, random boxes about 0,
none at all 0."""
import json

import numpy as np
import pytest

from spinescope.analysis.training.dataset import make_dataset
from spinescope.analysis.training.evaluate import METRICS, coco_metrics


@pytest.fixture(scope="module")
def truth(tmp_path_factory):
    directory = tmp_path_factory.mktemp("eval") / "set"
    make_dataset(directory, images=1, val_images=16, size=128, seed=5)
    return json.loads((directory / "annotations" / "val.json").read_text())


def test_ground_truth_as_detections_scores_one(truth):
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
                  for a in truth["annotations"]]
    metrics = coco_metrics(truth, detections)
    assert set(metrics) == set(METRICS)
    assert metrics["ap"] == pytest.approx(1.0) and metrics["ap50"] == pytest.approx(1.0)
    assert metrics["ap75"] == pytest.approx(1.0)
    assert all(value is None or value == pytest.approx(1.0) for value in metrics.values())


def test_wrong_class_scores_zero_and_half_the_boxes_scores_about_half(truth):
    wrong = [{"image_id": a["image_id"], "category_id": a["category_id"] % 3 + 1, "bbox": a["bbox"], "score": 1.0}
             for a in truth["annotations"]]
    assert coco_metrics(truth, wrong)["ap"] == 0.0
    # Every other object found (at score 1): recall stops near one half with precision 1, so AP is close to 0.5.
    half = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
            for a in truth["annotations"][::2]]
    assert 0.35 < coco_metrics(truth, half)["ap"] < 0.65


def test_boxes_shifted_to_iou_062_count_at_three_of_ten_thresholds(truth):
    # A box moved sideways by a fraction f of its width overlaps the original with IoU (1 - f) / (1 + f): 0.62 for
    # f = 0.38 / 1.62. It matches at IoU 0.50, 0.55 and 0.60 and not from 0.65 up: AP50 1, AP75 0, AP 3/10.
    shift = 0.38 / 1.62
    detections = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                   "bbox": [a["bbox"][0] + shift * a["bbox"][2], *a["bbox"][1:]]} for a in truth["annotations"]]
    metrics = coco_metrics(truth, detections)
    assert metrics["ap50"] == pytest.approx(1.0) and metrics["ap75"] == 0.0
    assert metrics["ap"] == pytest.approx(0.3, abs=0.01)


def test_random_boxes_score_about_zero(truth):
    rng = np.random.default_rng(0)
    detections = []
    for image in truth["images"]:
        for _ in range(20):
            x, y = rng.uniform(0, 100, size=2)
            w, h = rng.uniform(4, 28, size=2)
            detections.append({"image_id": image["id"], "category_id": int(rng.integers(1, 4)),
                               "bbox": [float(x), float(y), float(w), float(h)], "score": float(rng.uniform())})
    assert coco_metrics(truth, detections)["ap"] < 0.02


def test_no_detections_is_zero(truth):
    metrics = coco_metrics(truth, [])
    assert metrics["ap"] == 0.0 and metrics["ap50"] == 0.0


def test_torchvision_outputs_become_coco_results_in_pixels_and_categories(tmp_path):
    # A detector's output per image (x1, y1, x2, y2 boxes, labels 0..K-1) built from the ground truth by hand:
    # converted, it must score AP 1; the same boxes under the next label must score 0.
    import torch

    from spinescope.analysis.training.dataset import load_split
    from spinescope.analysis.training.train import coco_results

    make_dataset(tmp_path / "set", images=1, val_images=6, size=96, seed=2)
    split = load_split(tmp_path / "set", "val")
    outputs = [{"boxes": torch.tensor(t["boxes"]).reshape(-1, 4), "scores": torch.ones(len(t["labels"])),
                "labels": torch.tensor(t["labels"], dtype=torch.int64)} for t in split.targets]
    image_ids = [image["id"] for image in split.coco["images"]]
    assert coco_metrics(split.coco, coco_results(outputs, image_ids, split.category_ids))["ap"] == pytest.approx(1.0)
    shifted = [{**output, "labels": (output["labels"] + 1) % 3} for output in outputs]
    assert coco_metrics(split.coco, coco_results(shifted, image_ids, split.category_ids))["ap"] == 0.0
