"""Short training of a candidate backbone as a proxy objective (issue 22): a synthetic COCO-format detection set
with objects at many scales (`dataset`), torchvision's RetinaNet with a spec's backbone trained for a few steps and
evaluated with pycocotools (`train`, `evaluate`), results stored in SQLite (`store`), and the CLI (`cli`:
`spinescope make-dataset`, `spinescope train`).

The figure is a proxy AP (short training on a given dataset), never COCO AP.
"""
