"""A small detection training run shared by the tests and `benchmarks/bench_train_init.py`: seeded synthetic
images (rectangles of several sizes, one colour per class, on noise) and the plain torchvision training loop
(SGD, momentum 0.9, gradient norm clipped)."""
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


def train(model, images, targets, steps: int, lr: float = 0.01, clip: float = 10.0):
    """Runs `steps` SGD steps (momentum 0.9) on the one batch; returns (losses, grad_norms) per step, each loss
    the summed loss dict before that step's update, each norm the total gradient norm before clipping."""
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr, momentum=0.9)
    losses, norms = [], []
    for _ in range(steps):
        loss = sum(model(images, targets).values())
        optimizer.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), clip)))
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses, norms
