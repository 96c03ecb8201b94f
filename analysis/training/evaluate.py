"""COCO's box evaluation (pycocotools' COCOeval) of detections against a COCO-format ground truth, returned as
numbers instead of printed."""
from __future__ import annotations

import contextlib
import copy
import io

METRICS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large")  # COCOeval.stats[0:6], in this order
LABELS = {"ap": "AP", "ap50": "AP50", "ap75": "AP75", "ap_small": "AP small", "ap_medium": "AP medium",
          "ap_large": "AP large"}


def _pycocotools():
    from spinescope.extras import MissingExtra

    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise MissingExtra("pycocotools is not installed: pip install 'spinescope[train]'") from None
    return COCO, COCOeval


def _ground_truth(coco: dict) -> dict:
    """A copy of `coco` with the fields COCOeval reads filled where a file leaves them out (an annotation's id,
    area = box area, iscrowd = 0)."""
    data = copy.deepcopy({key: coco[key] for key in ("images", "annotations", "categories")})
    for index, annotation in enumerate(data["annotations"]):
        annotation.setdefault("id", index + 1)
        annotation.setdefault("area", annotation["bbox"][2] * annotation["bbox"][3])
        annotation.setdefault("iscrowd", 0)
    return data


def coco_metrics(coco: dict, detections: list[dict]) -> dict:
    """Returns {"ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large"}: COCO's box AP@[.5:.95], at IoU 0.5 and
    0.75, and by object size (area < 32^2, 32^2-96^2, > 96^2 px), each in [0, 1] (100 detections per image), or None
    where the ground truth has no object of that kind. `coco` is a COCO-format ground truth (images, annotations,
    categories); `detections` are COCO results: {"image_id", "category_id", "bbox": [x, y, w, h], "score"}. No
    detection at all gives 0.0 wherever there is ground truth."""
    COCO, COCOeval = _pycocotools()
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):  # pycocotools prints its progress and its table
        truth = COCO()
        truth.dataset = _ground_truth(coco)
        truth.createIndex()
        if not detections:
            return {name: (0.0 if _has_objects(truth, name) else None) for name in METRICS}
        results = truth.loadRes([{key: detection[key] for key in ("image_id", "category_id", "bbox", "score")}
                                 for detection in detections])
        evaluation = COCOeval(truth, results, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return {name: (None if value < 0 else float(value)) for name, value in zip(METRICS, evaluation.stats[:6])}


def _has_objects(truth, name: str) -> bool:
    low, high = {"ap_small": (0, 32 ** 2), "ap_medium": (32 ** 2, 96 ** 2), "ap_large": (96 ** 2, 1e10)}.get(
        name, (0, 1e10))
    return any(low <= a["area"] < high and not a["iscrowd"] for a in truth.dataset["annotations"])
