"""Human-readable text for analysis results: the per-block table and the measured-vs-published table."""
from __future__ import annotations

from pathlib import Path

from spinescope.analysis.counting import Analysis, analyze
from spinescope.analysis.comparison.published import classification_rows, inaturalist_classes, published_rows
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import load_spec_file
from spinescope.spinenet.input_size import dims_label
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import parse_spec

IMAGENET_CLASSES = 1000  # torchvision's ImageNet-1k; the authors' TPU config has 1001 (a background class)

VARIANTS = Path(__file__).resolve().parents[2] / "assets" / "variants"
VARIANT_49S_256 = VARIANTS / "spinenet-49s-256.yaml"
# 256 endpoints feeding a 4 x 128 head: the configuration that fits the published 49S figures (no source states it).
VARIANT_49S_256_128 = VARIANTS / "spinenet-49s-256-128.yaml"


def millions(count: float | None) -> str:
    """Returns e.g. '28.54M' for a parameter count ('n/a' for None)."""
    return "n/a" if count is None else f"{count / 1e6:.2f}M"


def billions(count: float | None) -> str:
    """Returns e.g. '85.28B' (billions) for a MAC or FLOP count ('n/a' for None)."""
    return "n/a" if count is None else f"{count / 1e9:.2f}B"


def format_analysis(result: Analysis) -> str:
    """Returns a plain-text report: totals, parts, per-block rows and output shapes."""
    backbone_macs = max(result.backbone_macs, 1)  # shares of the backbone, as the app's per-block "MACs %"
    lines = [
        f"{result.name} at {dims_label(result.input_size)}, head: {result.head} (counter: {result.counter})"
        + ("" if result.semantics == "reference" else f", semantics: {result.semantics}"),
        f"  params {millions(result.params)} | MACs {billions(result.macs)} (multiply-adds, the paper's FLOPs) | "
        f"FLOPs {billions(result.flops)} (2 x MACs)",
        f"  backbone: params {millions(result.backbone_params)}, MACs {billions(result.backbone_macs)}",
    ]
    if result.head != "none":
        lines[-1] += (f" ({100 * (1 - result.head_params_share):.0f}% of the params, "
                      f"{100 * (1 - result.head_macs_share):.0f}% of the MACs)")
        lines.append(f"  head:     params {millions(result.head_params)}, MACs {billions(result.head_macs)} "
                     f"({100 * result.head_params_share:.0f}% of the params, {100 * result.head_macs_share:.0f}% "
                     "of the MACs)")
    if result.verified is not None:
        lines.append("  verified: fast and fvcore counts agree for every module" if result.verified else
                     f"  NOT verified: {len(result.differences)} difference(s) between the fast and fvcore counts")
    lines.append("")
    lines.append(f"  {'part':10s} {'params':>10s} {'MACs':>10s}")
    for part, value in result.parts.items():
        lines.append(f"  {part:10s} {millions(value['params']):>10s} {billions(value['macs']):>10s}")
    lines.append("")
    lines.append(f"  {'block':8s} {'level':>5s} {'type':10s} {'params':>10s} {'MACs':>10s} {'% backbone':>10s} "
                 f"{'resample MACs':>13s} {'output elements':>15s}")
    for block in result.blocks:
        lines.append(f"  {block.id:8s} {block.level:>5d} {block.block_fn:10s} {millions(block.params):>10s} "
                     f"{billions(block.macs):>10s} {100 * block.macs / backbone_macs:9.1f}% "
                     f"{billions(block.resample_macs):>13s} {block.output_elements:>15,d}"
                     + ("" if block.live else "  (feeds no output: dead code)"))
    for block_id, why in result.dead_blocks.items():
        lines.append(f"  dead block {block_id}: {why}; " + ("not built (Model Garden semantics)"
                                                          if result.semantics == "model_garden"
                                                          else "built, params counted, 0 MACs"))
    lines.append("")
    lines.append("  outputs: " + ", ".join(f"{level} {c}x{h}x{w}" for level, (c, h, w) in result.outputs.items()))
    if result.receptive_field:
        lines.append("  receptive field (pixels): " + ", ".join(f"{level} {px}"
                                                                for level, px in result.receptive_field.items()))
    if result.uncounted_ops:
        lines.append("  not counted by fvcore: " + ", ".join(f"{op} x{n}" for op, n in result.uncounted_ops.items()))
    return "\n".join(lines)


def _difference(measured: float, published: float) -> str:
    return f"{100 * (measured - published) / published:+.1f}%"


def paper_table(analyze_fn=analyze) -> str:
    """Returns a Markdown table: params and MACs measured with the RetinaNet head at each published input size,
    beside the published figures, with the relative difference; then the classification tables
    (`classification_tables`). Counted with the fast counter (fvcore's exact
    numbers in milliseconds; `analyze_fn` can be any function with analyze's signature)."""
    rows = ["| model | input | params measured | params published | diff | MACs measured | MACs published | diff |",
            "|---|---|---|---|---|---|---|---|"]
    cases = [(load_builtin(row["builtin"]), row) for row in published_rows()]
    # The 49S variants beside the published 49S figures (labelled by their names; the built-in is not tuned).
    cases[1:1] = [(load_spec_file(path), published_rows()[0]) for path in (VARIANT_49S_256, VARIANT_49S_256_128)]
    for spec, row in cases:
        result = analyze_fn(spec, row["input_size"], "retinanet", counter="fast")
        params_m, macs_b = result.params / 1e6, result.macs / 1e9
        rows.append(f"| {spec.name} | {row['input_size']} | {params_m:.2f}M | {row['params_m']}M | "
                    f"{_difference(params_m, row['params_m'])} | {macs_b:.2f}B | {row['macs_b']}B | "
                    f"{_difference(macs_b, row['macs_b'])} |")
    return "\n".join(rows) + "\n\n" + classification_tables(analyze_fn)


def classification_spec(row: dict) -> Spec:
    """The spec a published classification row is for: a SpineNet built-in, or ResNet's own classifier trunk
    (family 'resnet': the stages of ResNet-FPN without the FPN, C5 at level 5)."""
    if row.get("builtin"):
        return load_builtin(row["builtin"])
    return parse_spec({"name": row["model"], "family": row["family"], "stages": list(row["stages"]),
                       "input_size": row["input_size"], "min_level": 5, "max_level": 5})


def classification_tables(analyze_fn=analyze) -> str:
    """Returns two Markdown tables: ImageNet (params and MACs at 224 px, 1000 classes) and iNaturalist-2017 (params,
    5089 classes), measured with the classification head ('gap': SpineNet's P3-P7 resized to P3 and averaged,
    ResNet's C5; global average pooling; one linear layer) beside the authors' zoo figures."""
    lines = [f"ImageNet classification, {IMAGENET_CLASSES} classes (the zoo's TPU config: 1001), global average "
             "pooling + fc; MACs are multiply-adds (the zoo's FLOPs):", "",
             "| model | input | params measured | params published | diff | MACs measured | MACs published | diff "
             "| top-1 published |", "|---|---|---|---|---|---|---|---|---|"]
    for row in classification_rows("imagenet"):
        result = analyze_fn(classification_spec(row), row["input_size"], "classification", pooling="gap",
                            num_classes=IMAGENET_CLASSES, counter="fast")
        params_m, macs_b = result.params / 1e6, result.macs / 1e9
        top1 = "-" if row.get("top1") is None else f"{row['top1']}%"
        lines.append(f"| {row['model']} | {row['input_size']} | {params_m:.2f}M | {row['params_m']}M | "
                     f"{_difference(params_m, row['params_m'])} | {macs_b:.2f}B | {row['macs_b']}B | "
                     f"{_difference(macs_b, row['macs_b'])} | {top1} |")
    classes = inaturalist_classes()
    lines += ["", f"iNaturalist-2017 classification, {classes} classes (params only are published):", "",
              "| model | input | params measured | params published | diff |", "|---|---|---|---|---|"]
    for row in classification_rows("inaturalist"):
        result = analyze_fn(classification_spec(row), row["input_size"], "classification", pooling="gap",
                            num_classes=classes, counter="fast")
        params_m = result.params / 1e6
        lines.append(f"| {row['model']} | {row['input_size']} | {params_m:.2f}M | {row['params_m']}M | "
                     f"{_difference(params_m, row['params_m'])} |")
    return "\n".join(lines)
