"""Short training as a proxy objective: torchvision's RetinaNet with a spec's backbone (`spinescope.detection`,
initialized as the authors' code initializes it) trained for a given number of steps on a COCO-format directory,
then evaluated on its val split with pycocotools.

The result is a *proxy* AP (short training on the given dataset), as in the paper's search: never COCO AP.
`train_proxy` keeps no global state and takes and returns picklable values, so it runs in a worker process or a
Ray task.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from spinescope.analysis.training.dataset import DatasetError, Split, load_split
from spinescope.spinenet.spec import Spec, spec_hash

MAX_STEPS = 1_000_000
MAX_BATCH = 256
MAX_LOADED_BYTES = 2 * 2**30  # decoded training and validation images held in memory (uint8)
HEADS = ("auto", "spec", "torchvision")  # the authors' head (a BN per level and conv) or torchvision's, both as
# initialized by the authors' code (`spinescope.detection.retinanet`). Measured on 64 shapes images of 128 px, widths
# x0.25, batch 8: 300 steps with the authors' head reached proxy AP 0.006 (loss 1.58 -> 1.07), 400 with
# torchvision's 0.0002 (1.72 -> 1.35), whose unnormalized 4-conv towers start with a tiny signal. But its batch
# norms need values: at batch 4 with 1 x 1 maps its loss rose over 24 steps where batch 8's fell by 40%.
MIN_BN_VALUES = 8  # 'auto' takes the authors' head when every level's batch norm sees this many values per channel
LEARNING_RATE = {"spec": 0.02, "torchvision": 0.08}  # per 8 images, scaled to the batch: the better of 0.02 and 0.08
# over 150 steps for each head
MOMENTUM, WEIGHT_DECAY, CLIP_NORM = 0.9, 4e-5, 10.0  # the authors' SGD, weight decay and gradient clip
WARMUP_FRACTION = 0.1  # linear warm-up over the first tenth of the steps
SCORE_THRESHOLD = 0.001  # lower than torchvision's 0.05: a short run's scores are low, and AP only gains from more
DETECTIONS_PER_IMAGE = 100  # COCO's maxDets
EVAL_BATCH = 8
MIN_WIDTH = 8  # endpoint channels after the width scale
BN_IMAGES = 64  # training images whose batch-norm statistics replace the running ones before evaluation


@dataclass(frozen=True)
class ProxyResult:
    """One proxy training run. `proxy_ap` is AP@[.5:.95] on the val split after `steps` steps, in [0, 1];
    `ap50`, `ap75` likewise; `ap_small` / `ap_medium` / `ap_large` by COCO's object sizes (None where the val split
    has no such object). `seconds`: the whole call, wall clock (images read, model built, trained, evaluated);
    `train_seconds` the steps alone, `eval_seconds` the batch-norm recalibration and evaluation;
    `images_per_second`: training images per second. `losses`: the training loss (classification + box
    regression) of each step; `final_loss` the mean of its last tenth (a second, smoother objective). `label`
    says what the figure is."""

    proxy_ap: float
    ap50: float
    seconds: float
    steps: int
    ap75: float = 0.0
    ap_small: float | None = None
    ap_medium: float | None = None
    ap_large: float | None = None
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    images_per_second: float = 0.0
    batch_size: int = 2
    image_size: tuple = (128, 128)
    width_scale: float = 1.0
    seed: int = 0
    device: str = "cpu"
    spec_name: str = ""
    spec_hash: str = ""
    dataset: str = ""
    learning_rate: float = 0.0
    head: str = "spec"
    final_loss: float = 0.0
    losses: list = field(default_factory=list)

    @property
    def label(self) -> str:
        return proxy_label(self.dataset)

    def to_dict(self) -> dict:
        """Returns the result as JSON-ready data (with `label`, and `image_size` as "WIDTHxHEIGHT")."""
        data = asdict(self)
        height, width = self.image_size
        data["image_size"] = f"{width}x{height}"
        data["label"] = self.label
        return data


def proxy_label(dataset: str) -> str:
    """Returns how a proxy AP is named: "proxy AP (short training on <dataset folder>)"."""
    return f"proxy AP (short training on {Path(dataset).name or dataset})"


def resolve_device(device: str) -> str:
    """Returns 'cuda' or 'cpu' for 'auto' (cuda when present), 'cpu' or 'cuda'; raises ValueError for another
    name or for 'cuda' without a GPU."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {ascii(device)[:40]}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device cuda: no CUDA GPU is available here; use --device cpu or auto")
    return device


def scale_width(spec: Spec, width_scale: float) -> Spec:
    """Returns `spec` with its widths times `width_scale` (1.0: unchanged): the endpoints' (and a head as wide as
    they are) and, for block-list families, the blocks' (`filter_size_scale`). ResNet-FPN's trunk has no width
    field, so only its FPN narrows. Raises ValueError (SpecError) where a width leaves the spec's limits."""
    from spinescope.spinenet.edits import set_scaling
    from spinescope.spinenet.registry import family_of
    from spinescope.spinenet.validate import check_spec

    if not (isinstance(width_scale, (int, float)) and not isinstance(width_scale, bool)
            and math.isfinite(width_scale) and 0 < width_scale <= 4):
        raise ValueError(f"width scale must be a number above 0 and at most 4, got {width_scale!r:.40}")
    if width_scale == 1:
        return spec
    endpoints = max(MIN_WIDTH, round(spec.scaling.endpoints_num_filters * width_scale))
    try:
        if family_of(spec).has_blocks:
            return set_scaling(spec, endpoints_num_filters=endpoints,
                               filter_size_scale=round(spec.scaling.filter_size_scale * width_scale, 6))
        follows = spec.head.width == spec.scaling.endpoints_num_filters
        head = replace(spec.head, width=endpoints) if follows else spec.head
        return check_spec(replace(spec, scaling=replace(spec.scaling, endpoints_num_filters=endpoints), head=head))
    except ValueError as error:
        raise ValueError(f"width scale {width_scale:g} takes {spec.name} outside the spec limits: {error}") from None


def _check_arguments(steps, batch_size, image_size, seed) -> tuple[int, int]:
    from spinescope.spinenet.validate import LIMITS

    for what, value, high in (("steps", steps, MAX_STEPS), ("batch size", batch_size, MAX_BATCH)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise ValueError(f"{what} must be an integer from 1 to {high}, got {value!r:.40}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer from 0 to 2**63 - 1, got {seed!r:.40}")
    low, high = LIMITS["min_input_size"], LIMITS["max_input_size"]
    if (not isinstance(image_size, (tuple, list)) or len(image_size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and low <= v <= high for v in image_size)):
        raise ValueError(f"image size must be (height, width) with integers from {low} to {high}, got "
                         f"{image_size!r:.60}")
    return int(image_size[0]), int(image_size[1])


def choose_head(spec: Spec, batch_size: int, size: tuple[int, int]) -> str:
    """Returns 'spec' (the authors' head) when each of its batch norms sees at least MIN_BN_VALUES values per
    channel in a training batch (batch_size x the coarsest output's height x width at `size`), else
    'torchvision'."""
    height, width = size
    coarsest = -(-height // 2 ** spec.max_level) * -(-width // 2 ** spec.max_level)
    return "spec" if batch_size * coarsest >= MIN_BN_VALUES else "torchvision"


def _padding(spec: Spec, height: int, width: int) -> tuple[int, tuple[int, int]]:
    """Returns (size_divisible, (padded height, padded width)): torchvision's transform pads a batch to a multiple
    of size_divisible, and the backbone is described at the padded size it will be fed. size_divisible is the
    coarsest output's stride (exact anchor strides on every level), but at most the largest power of two within the
    image's shorter side: a 64 px image is not padded to 128 px for P7, whose 1 x 1 map has one anchor location
    whatever its stride."""
    divisible = min(2 ** spec.max_level, 2 ** int(math.log2(min(height, width))))
    return divisible, (-(-height // divisible) * divisible, -(-width // divisible) * divisible)


def _load_images(split: Split):
    """Returns the split's images as uint8 tensors (3, H, W), RGB. Raises DatasetError naming a file that does not
    decode."""
    from torchvision.io import ImageReadMode, decode_image

    import torch

    images = []
    for path in split.paths:
        try:
            data = torch.frombuffer(bytearray(Path(path).read_bytes()), dtype=torch.uint8)
            images.append(decode_image(data, mode=ImageReadMode.RGB))
        except (OSError, RuntimeError, ValueError) as error:
            raise DatasetError(f"{ascii(path)[1:-1]}: cannot read the image ({str(error).splitlines()[0][:80]})") \
                from None
    return images


def _check_loaded_size(splits: list[Split]) -> None:
    from spinescope.analysis.limits import ResourceLimitError, byte_text

    total = sum(image["width"] * image["height"] * 3 for split in splits for image in split.coco["images"])
    if total > MAX_LOADED_BYTES:
        raise ResourceLimitError(f"refused: the dataset's images take {byte_text(total)} decoded, over the "
                                 f"{byte_text(MAX_LOADED_BYTES)} this trainer holds in memory; use fewer or smaller "
                                 "images")


def _targets(split: Split, device):
    import torch

    return [{"boxes": torch.tensor(t["boxes"], dtype=torch.float32).reshape(-1, 4).to(device),
             "labels": torch.tensor(t["labels"], dtype=torch.int64).to(device)} for t in split.targets]


def _batch(indices, images, targets, flips, device):
    """Returns (images as floats in [0, 1], targets), the images whose flip is True mirrored left to right."""
    batch_images, batch_targets = [], []
    for index, flip in zip(indices, flips):
        image = images[index].to(device).float().div_(255)
        target = targets[index]
        if flip:
            width = image.shape[-1]
            image = image.flip(-1)
            boxes = target["boxes"].clone()
            boxes[:, [0, 2]] = width - target["boxes"][:, [2, 0]]
            target = {"boxes": boxes, "labels": target["labels"]}
        batch_images.append(image)
        batch_targets.append(target)
    return batch_images, batch_targets


def _train(model, images, targets, steps, batch_size, learning_rate, seed, device, progress) -> list[float]:
    import torch

    generator = torch.Generator().manual_seed(seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=learning_rate, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    warmup = max(1, int(WARMUP_FRACTION * steps))
    order: list[int] = []
    losses = []
    model.train()
    for step in range(1, steps + 1):
        if len(order) < batch_size:  # a new pass over the images, in a seeded order
            order += torch.randperm(len(images), generator=generator).tolist()
        indices, order = order[:batch_size], order[batch_size:]
        flips = (torch.rand(len(indices), generator=generator) < 0.5).tolist()
        batch_images, batch_targets = _batch(indices, images, targets, flips, device)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * min(1.0, step / warmup)
        loss_parts = model(batch_images, batch_targets)
        loss = sum(loss_parts.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss is {loss.item()} at step {step}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, CLIP_NORM)
        optimizer.step()
        losses.append(float(loss.item()))
        if progress is not None:
            progress(step, steps, losses[-1])
    return losses


def _recalibrate_batch_norm(model, images, batch_size: int, device) -> None:
    """Sets every batch norm's running statistics to their average over up to BN_IMAGES training images (pycls'
    "precise BN"): with the authors' momentum (0.99 in TF's sense) a run of a few dozen steps would leave them
    near their initial values, and evaluation would read those."""
    import torch

    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches below
    model.eval()
    for norm in norms:
        norm.train()
    with torch.no_grad():
        for start in range(0, min(len(images), BN_IMAGES), max(batch_size, 2)):
            batch = [image.to(device).float().div_(255) for image in images[start:start + max(batch_size, 2)]]
            model.backbone(model.transform(batch)[0].tensors)
    for norm, momentum in zip(norms, momenta):
        norm.momentum = momentum
    model.eval()


def _detect(model, images, split: Split, device) -> list[dict]:
    """Returns the model's detections on `images` as COCO results (boxes [x, y, w, h] in the images' pixels)."""
    import torch

    outputs = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(images), EVAL_BATCH):
            batch = [image.to(device).float().div_(255) for image in images[start:start + EVAL_BATCH]]
            outputs.extend({key: value.cpu() for key, value in output.items()} for output in model(batch))
    return coco_results(outputs, [image["id"] for image in split.coco["images"]], split.category_ids)


def coco_results(outputs: list[dict], image_ids: list, category_ids: list) -> list[dict]:
    """Returns torchvision detector outputs (per image {"boxes": [N, 4] x1 y1 x2 y2 px, "scores", "labels": 0..K-1})
    as COCO results {"image_id", "category_id", "bbox": [x, y, w, h] px, "score"}: image i is `image_ids[i]`,
    label l the category `category_ids[l]`."""
    results = []
    for image_id, output in zip(image_ids, outputs):
        for box, score, label in zip(output["boxes"].tolist(), output["scores"].tolist(), output["labels"].tolist()):
            x1, y1, x2, y2 = box
            results.append({"image_id": image_id, "category_id": category_ids[label],
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return results


def train_proxy(spec, dataset_dir, *, steps: int, batch_size: int = 2, image_size: tuple[int, int] = (128, 128),
                seed: int = 0, device: str = "auto", progress=None, width_scale: float = 1.0,
                learning_rate: float | None = None, head: str = "auto") -> ProxyResult:
    """Trains torchvision's RetinaNet with the backbone of `spec` (a Spec, built-in name or spec path; its widths
    times `width_scale`) for `steps` SGD steps of `batch_size` images of the COCO-format `dataset_dir`'s train
    split, resized to `image_size` (height, width) pixels, then evaluates it on the val split with pycocotools.
    Deterministic from `seed` on the CPU (initialization, image order, flips). `device`: 'auto' (a GPU when
    present), 'cpu' or 'cuda'. `progress(step, total, loss)` is called after each step. `head`: 'spec' (the
    authors' RetinaNet head, `spec_head=True`; its convs and width are the spec's), 'torchvision' (torchvision's
    4-conv head) or 'auto' (`choose_head`: the authors' where its batch norms see enough values).
    `learning_rate`: default LEARNING_RATE[head] per 8 images, scaled to the batch, with a linear warm-up over the
    first tenth of the steps.

    Returns a ProxyResult: proxy AP@[.5:.95] in [0, 1] (short training: not COCO AP), AP50, ..., seconds.
    Raises ValueError for a bad argument, DatasetError (one line naming the file) for a bad dataset,
    ResourceLimitError for a step over the memory or time limits, MissingExtra without torchvision or pycocotools."""
    from spinescope.analysis.training.evaluate import _pycocotools, coco_metrics
    from spinescope.extras import MissingExtra

    height, width = _check_arguments(steps, batch_size, image_size, seed)
    if head not in HEADS:
        raise ValueError(f"head must be one of {', '.join(HEADS)}, got {head!r:.40}")
    try:
        import torchvision  # noqa: F401
    except ImportError:
        raise MissingExtra("torchvision is not installed: pip install 'spinescope[train]'") from None
    _pycocotools()
    import torch

    from spinescope import load_spec
    from spinescope.analysis.limits import check_training_step
    from spinescope.detection import retinanet

    device = resolve_device(device)
    spec = scale_width(load_spec(spec), width_scale)
    train_split, val_split = load_split(dataset_dir, "train"), load_split(dataset_dir, "val")
    if len(train_split.category_ids) != len(val_split.category_ids) or \
            train_split.category_ids != val_split.category_ids:
        raise DatasetError(f"{val_split.annotations_file}: its categories differ from the train split's")
    _check_loaded_size([train_split, val_split])
    check_training_step(spec, (height, width), "retinanet", batch_size, device=device)
    head = choose_head(spec, batch_size, _padding(spec, height, width)[1]) if head == "auto" else head
    learning_rate = LEARNING_RATE[head] * batch_size / 8 if learning_rate is None else float(learning_rate)
    if not (math.isfinite(learning_rate) and 0 < learning_rate <= 10):
        raise ValueError(f"learning rate must be above 0 and at most 10, got {learning_rate!r:.40}")

    started = time.perf_counter()
    train_images, val_images = _load_images(train_split), _load_images(val_split)
    targets = _targets(train_split, device)
    torch.manual_seed(seed)
    divisible, padded = _padding(spec, height, width)
    model = retinanet(spec, num_classes=len(train_split.category_ids), input_size=padded, min_size=min(height, width),
                      max_size=max(height, width), size_divisible=divisible, score_thresh=SCORE_THRESHOLD,
                      detections_per_img=DETECTIONS_PER_IMAGE, spec_head=head == "spec").to(device)
    train_started = time.perf_counter()
    losses = _train(model, train_images, targets, steps, batch_size, learning_rate, seed, device, progress)
    if device == "cuda":
        torch.cuda.synchronize()
    trained = time.perf_counter()
    _recalibrate_batch_norm(model, train_images, batch_size, device)
    metrics = coco_metrics(val_split.coco, _detect(model, val_images, val_split, device))
    finished = time.perf_counter()
    train_seconds = trained - train_started
    return ProxyResult(
        proxy_ap=metrics["ap"] or 0.0, ap50=metrics["ap50"] or 0.0, ap75=metrics["ap75"] or 0.0,
        ap_small=metrics["ap_small"], ap_medium=metrics["ap_medium"], ap_large=metrics["ap_large"],
        seconds=finished - started, train_seconds=train_seconds, eval_seconds=finished - trained,
        images_per_second=steps * batch_size / train_seconds if train_seconds > 0 else 0.0, steps=steps,
        batch_size=batch_size, image_size=(height, width), width_scale=float(width_scale), seed=seed, device=device,
        spec_name=spec.name, spec_hash=spec_hash(spec), dataset=str(Path(dataset_dir).resolve()),
        learning_rate=learning_rate, head=head, final_loss=_final_loss(losses), losses=losses)


def _final_loss(losses: list[float]) -> float:
    tenth = max(1, len(losses) // 10)
    return sum(losses[-tenth:]) / tenth
