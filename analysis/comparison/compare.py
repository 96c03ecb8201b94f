"""`spinescope compare SPEC_A SPEC_B [...]`: models side by side with ratios to the first.

For each spec: params, MACs (multiply-adds, the paper's "FLOPs") and FLOPs (2 x MACs), backbone and head, output
shapes, receptive fields of P3-P7 and, for built-ins, the published figures at that input size. Counted with the
fast counter (fvcore's exact numbers, milliseconds per model).
"""
from __future__ import annotations

import json
from functools import lru_cache

from spinescope.analysis.architecture.receptive_field import receptive_fields
from spinescope.analysis.counting import analyze
from spinescope.analysis.comparison.published import published_for
from spinescope.spinenet.builtins import builtin_names, load_builtin
from spinescope.spinenet.input_size import InputSize, hw, size_to_json
from spinescope.spinenet.registry import head_names
from spinescope.spinenet.spec import Spec, spec_hash


@lru_cache(maxsize=1)
def _builtin_hashes() -> dict[str, str]:
    return {spec_hash(load_builtin(name)): name for name in builtin_names()}


def builtin_name(spec: Spec) -> str | None:
    """Returns the built-in name whose architecture `spec` has (any name, any file), or None."""
    return _builtin_hashes().get(spec_hash(spec))


def relative_receptive_fields(spec: Spec, input_size: InputSize | None = None) -> dict[str, float]:
    """Returns {"P3": multiple, ...}: each output's theoretical receptive field as a multiple of the input side.
    Per axis the field (pixels) over that side (pixels); for a non-square input the smaller of the two, which is
    the multiple of its longer side (how many times the field spans the whole image along both axes)."""
    height, width = hw(input_size or spec.input_size)
    return {level: min(field.receptive_field_hw[0] / height, field.receptive_field_hw[1] / width)
            for level, field in receptive_fields(spec, input_size).outputs.items()}


def compare(models: list[tuple[Spec, InputSize | None]], head: str = "retinanet") -> list[dict]:
    """Returns one dict per (spec, input size or None for the spec's own): name, builtin, input_size, head,
    params, macs, flops, backbone_*/head_* params and MACs, outputs ("P3" -> [C, H, W]), receptive_field
    ("P3" -> pixels), receptive_field_relative ("P3" -> the field as a multiple of the input side,
    `relative_receptive_fields`), published (the paper's row at that size, for built-ins with the RetinaNet head,
    else None) and params_ratio / macs_ratio to the first model."""
    rows = []
    for spec, size in models:
        result = analyze(spec, size or spec.input_size, head)
        builtin = builtin_name(spec)
        published = published_for(builtin, result.input_size) if builtin and head == "retinanet" else None
        rows.append({
            "name": spec.name, "builtin": builtin, "input_size": size_to_json(result.input_size), "head": head,
            "params": result.params, "macs": result.macs, "flops": result.flops,
            "backbone_params": result.backbone_params, "backbone_macs": result.backbone_macs,
            "head_params": result.head_params, "head_macs": result.head_macs,
            "outputs": result.outputs, "receptive_field": result.receptive_field,
            "receptive_field_relative": relative_receptive_fields(spec, result.input_size),
            "published": None if published is None else {
                key: published.get(key) for key in ("params_m", "macs_b", "ap", "ap_protocol_c", "source")},
        })
    for row in rows:
        row["params_ratio"] = row["params"] / rows[0]["params"] if rows[0]["params"] else None
        row["macs_ratio"] = row["macs"] / rows[0]["macs"] if rows[0]["macs"] else None
    return rows


def _ratio(value: float | None) -> str:
    return "" if value is None else f" ({value:.2f}x)"


def format_comparison(rows: list[dict]) -> str:
    """Returns a plain-text table: one column per model, one line per figure, ratios to the first model."""
    def published(row, key, unit):
        value = (row["published"] or {}).get(key)
        return "-" if value is None else f"{value}{unit}"

    lines_spec = [
        ("params", lambda r: f"{r['params'] / 1e6:.2f}M{_ratio(r['params_ratio'])}"),
        ("  published params", lambda r: published(r, "params_m", "M")),
        ("MACs (multiply-adds)", lambda r: f"{r['macs'] / 1e9:.2f}B{_ratio(r['macs_ratio'])}"),
        ("  published MACs", lambda r: published(r, "macs_b", "B")),
        ("FLOPs (2 x MACs)", lambda r: f"{r['flops'] / 1e9:.2f}B"),
        ("backbone params", lambda r: f"{r['backbone_params'] / 1e6:.2f}M"),
        ("backbone MACs", lambda r: f"{r['backbone_macs'] / 1e9:.2f}B"),
    ]
    if rows[0]["head"] != "none":
        lines_spec += [("head params", lambda r: f"{r['head_params'] / 1e6:.2f}M"),
                       ("head MACs", lambda r: f"{r['head_macs'] / 1e9:.2f}B")]
    levels = sorted({level for row in rows for level in row["outputs"]}, key=lambda level: int(level[1:]))
    for level in levels:
        lines_spec.append((f"{level} shape (CxHxW)", lambda r, level=level:
                           "x".join(map(str, r["outputs"][level])) if level in r["outputs"] else "-"))
    for level in levels:
        lines_spec.append((f"{level} receptive field", lambda r, level=level:
                           f"{r['receptive_field'][level]} px" if level in r["receptive_field"] else "-"))
    lines_spec.append(("published AP (COCO)", lambda r: published(r, "ap", "")))
    headers = [f"{row['name']} @{row['input_size']}" for row in rows]
    cells = [[fn(row) for row in rows] for _, fn in lines_spec]
    label_width = max(len(label) for label, _ in lines_spec)
    widths = [max(len(header), *(len(line[i]) for line in cells)) for i, header in enumerate(headers)]
    out = [" " * label_width + "  " + "  ".join(h.rjust(w) for h, w in zip(headers, widths))]
    for (label, _), line in zip(lines_spec, cells):
        out.append(label.ljust(label_width) + "  " + "  ".join(c.rjust(w) for c, w in zip(line, widths)))
    head = rows[0]["head"]
    out.append("")
    out.append(f"head: {head}; ratios are to the first model; published figures: the paper's and the authors' zoo's "
               "(RetinaNet on COCO), shown for built-ins at a published input size"
               + ("" if head == "retinanet" else " with --head retinanet"))
    return "\n".join(out)


def _cmd_compare(args) -> int:
    from spinescope.analysis.cli import CliError, load_spec_argument

    models = []
    for text in args.specs:  # each argument checked first: a bad one is named even when it is the only one
        spec, size = load_spec_argument(text)
        models.append((spec, size or args.input_size))
    if len(models) < 2:
        raise CliError("compare needs at least two specs (e.g. spinenet-49 resnet50-fpn)")
    rows = compare(models, args.head)
    print(json.dumps({"head": args.head, "models": rows}, indent=2) if args.json else format_comparison(rows))
    return 0


def register(subparsers) -> None:
    """Adds the `compare` subcommand."""
    from spinescope.analysis.cli import INPUT_SIZE_HELP, input_size_arg

    sub = subparsers.add_parser("compare", help="several specs side by side, ratios to the first, published figures")
    sub.add_argument("specs", nargs="+", metavar="SPEC",
                     help="built-in name or spec path, optionally NAME@SIZE (its own input size)")
    sub.add_argument("--input-size", type=input_size_arg,
                     help=INPUT_SIZE_HELP + " for specs without @SIZE (default: each spec's own)")
    sub.add_argument("--head", choices=head_names(), default="retinanet",
                     help="head counted with each backbone (default: retinanet, as in the paper's figures)")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    sub.set_defaults(handler=_cmd_compare)
