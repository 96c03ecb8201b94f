"""A small detection training run shared by the tests and `benchmarks/bench_train_init.py`: seeded synthetic
images (rectangles of several sizes, one colour per class, on noise) and the plain torchvision training loop
(SGD, momentum 0.9, gradient norm clipped), on one batch or a new batch per step."""
from __future__ import annotations

import torch


def synthetic_batch(seed: int, batch: int = 2, size: int = 128, num_classes: int = 3, boxes: int = 4):
    """Returns (images, targets): `batch` images [3, size, size] in [0, 1] with `boxes` filled rectangles each,
    sides from size/8 to size/2 pixels, coloured by their class; targets as torchvision's detectors take them
    (boxes x1, y1, x2, y2 in pixels; labels 0..num_classes-1)."""
    generator = torch.Generator().manual_seed(seed)
    colours = torch.rand(num_classes, 3, generator=generator)
    images, targets = [], []
    for _ in range(batch):
        image = 0.5 + 0.1 * torch.randn(3, size, size, generator=generator)
        rects, labels = [], []
        for _ in range(boxes):
            side_w, side_h = (int(s) for s in torch.randint(size // 8, size // 2 + 1, (2,), generator=generator))
            x1 = int(torch.randint(0, size - side_w + 1, (1,), generator=generator))
            y1 = int(torch.randint(0, size - side_h + 1, (1,), generator=generator))
            label = int(torch.randint(0, num_classes, (1,), generator=generator))
            image[:, y1:y1 + side_h, x1:x1 + side_w] = colours[label][:, None, None]
            rects.append([x1, y1, x1 + side_w, y1 + side_h])
            labels.append(label)
        images.append(image.clamp(0, 1))
        targets.append({"boxes": torch.tensor(rects, dtype=torch.float32),
                        "labels": torch.tensor(labels, dtype=torch.int64)})
    return images, targets


def run_steps(model, batches, lr: float = 0.01, clip: float = 10.0) -> list[dict]:
    """Runs one SGD step (momentum 0.9) per (images, targets) in `batches`; returns a dict per step: `loss` (the
    summed loss dict before that step's update), `grad` (the total gradient norm before clipping) and `backbone`
    and `head` (the gradient norms of the parameters under `model.backbone` and `model.head`)."""
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    records = []
    for images, targets in batches:
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        parts = {part: _norm(getattr(model, part).parameters()) for part in ("backbone", "head")}
        grad = float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
        optimizer.step()
        records.append({"loss": float(loss.detach()), "grad": grad, **parts})
    return records


def _norm(parameters) -> float:
    """The total L2 norm of the parameters' gradients (0 when none has one)."""
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0
