"""Every analysis the CLI prints, for every built-in, written to one JSON file: the yardstick of a refactor.

Run it before a change and after it, then compare the two files (`--compare OLD NEW`): a refactor that keeps the
outputs identical leaves no difference. Per built-in, at the spec's own size and at 1333x800:

- `analyze` without a head and with RetinaNet (params and MACs per block and part, totals, output shapes, receptive
  fields of the outputs, other and uncounted operators), with the text the CLI prints, and with the
  classification head (SPP pooling) at 224 px;
- fvcore's per-module counts of the fast counter (params, operators, uncounted operators of every module);
- the receptive fields, strides and extreme paths of every graph node;
- the training-memory estimate (SGD fp32 on CUDA, AdamW bf16 on CPU with RetinaNet);
- the what-if of the first block after the stems;
- digests of the description (every layer, its attrs and calls) and of the module tree PyTorch builds from it
  (meta device: names, classes and constructor arguments).

Usage: .venv/bin/python benchmarks/snapshot_builtins.py [OUT.json]      (default /tmp/spinescope_snapshot.json)
       .venv/bin/python benchmarks/snapshot_builtins.py --compare OLD.json NEW.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spinescope.analysis.architecture.block_whatif import block_whatif  # noqa: E402
from spinescope.analysis.architecture.receptive_field import receptive_fields  # noqa: E402
from spinescope.analysis.comparison.report import format_analysis  # noqa: E402
from spinescope.analysis.counting import analyze  # noqa: E402
from spinescope.analysis.counting.fast import count_model  # noqa: E402
from spinescope.analysis.memory.estimate import estimate_training_memory  # noqa: E402
from spinescope.spinenet.builtins import builtin_names, load_builtin  # noqa: E402
from spinescope.spinenet.describe import describe  # noqa: E402

DEFAULT_OUT = Path("/tmp/spinescope_snapshot.json")
WIDE = (800, 1333)  # height, width: the COCO detection size


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()


def structure_digest(spec, size, head: str) -> str:
    """Returns a sha256 of every layer of the description: name, kind, attrs, role and calls."""
    layers = [(layer.name, layer.kind, sorted(layer.attrs.items()), layer.role,
               [(c.op, c.inputs, c.output, c.live, c.kernel, c.stride, c.order) for c in layer.calls])
              for layer in describe(spec, size, head).root.walk()]
    return _digest(layers)


def module_digest(spec, head: str) -> str:
    """Returns a sha256 of the module tree built on the meta device: names, class names and extra_repr."""
    from spinescope.spinenet.build import build_model

    model = build_model(spec, head, device="meta")
    return _digest([(name, type(module).__name__, module.extra_repr()) for name, module in model.named_modules()])


def counts_dict(spec, size, head: str) -> dict:
    """Returns the fast counter's per-module params, operators and uncounted operators."""
    counts = count_model(spec, size, head)
    return {"params": dict(counts.params), "ops": {k: dict(v) for k, v in counts.ops.items()},
            "uncounted": {k: dict(v) for k, v in counts.uncounted.items()}}


def snapshot_builtin(name: str) -> dict:
    """Returns every analysis of built-in `name` (see the module docstring)."""
    spec = load_builtin(name)
    data: dict = {"analyze": {}, "text": {}, "counts": {}, "receptive_fields": {}, "structure": {}}
    for size_key, size in (("spec", spec.input_size), ("1333x800", WIDE)):
        for head in ("none", "retinanet"):
            key = f"{size_key}/{head}"
            result = analyze(spec, size, head)
            data["analyze"][key] = result.to_dict()
            data["text"][key] = format_analysis(result)
            data["counts"][key] = counts_dict(spec, size, head)
            data["structure"][key] = structure_digest(spec, size, head)
        data["receptive_fields"][size_key] = receptive_fields(spec, size).to_dict()
    data["analyze"]["224/classification-spp"] = analyze(spec, 224, "classification", pooling="spp").to_dict()
    data["structure"]["224/classification-spp"] = structure_digest(spec, 224, "classification")
    data["memory"] = {
        "sgd-fp32-cuda-b2": estimate_training_memory(spec, batch=2).to_dict(),
        "adamw-bf16-cpu-b4-retinanet": estimate_training_memory(spec, WIDE, "retinanet", 4, "adamw", "bf16",
                                                                "cpu").to_dict(),
    }
    layout = describe(spec, spec.input_size).layout
    block = layout.nodes[len(layout.stems)].id
    data["whatif"] = block_whatif(spec, block, spec.input_size, "retinanet").to_dict()
    data["modules"] = {head: module_digest(spec, head) for head in ("none", "retinanet")}
    return data


def snapshot() -> dict:
    """Returns the snapshot of every built-in, with the built-ins' order."""
    names = builtin_names()
    return {"builtin_names": list(names), "builtins": {name: snapshot_builtin(name) for name in names}}


def differences(old, new, path: str = "") -> list[str]:
    """Returns one line per leaf value that differs between two snapshots (JSON paths)."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(old.keys() | new.keys(), key=str):
            if key not in old or key not in new:
                lines.append(f"{path}/{key}: only in {'new' if key in new else 'old'}")
            else:
                lines += differences(old[key], new[key], f"{path}/{key}")
        return lines
    return [] if old == new else [f"{path}: {str(old)[:80]} != {str(new)[:80]}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="JSON file to write")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("OLD", "NEW"), help="compare two snapshots")
    args = parser.parse_args()
    if args.compare:
        old, new = (json.loads(path.read_text()) for path in args.compare)
        lines = differences(old, new)
        print("\n".join(lines[:100]) if lines else "identical")
        return 1 if lines else 0
    args.out.write_text(json.dumps(snapshot(), sort_keys=True))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
