"""What the app lets users download, as bytes: the spec (JSON, YAML, tuple list), the graph (interactive HTML,
PNG, SVG), a Markdown report and the instantiated model as ONNX. No Streamlit here."""
from __future__ import annotations

import os
import re
import shutil
import warnings

from spinescope.analysis.comparison.compare import builtin_name
from spinescope.analysis.counting import Analysis
from spinescope.analysis.comparison.published import published_for
from spinescope.analysis.limits import ResourceLimitError, check_image_export, check_onnx_export
from spinescope.app.graph_figure import graph_figure
from spinescope.app.identity import display_name
from spinescope.app.markup import break_autolinks, escape_html
from spinescope.app.units import billions, millions
from spinescope.spinenet.edits import diff_specs
from spinescope.spinenet.formats import dumps
from spinescope.spinenet.input_size import InputSize, dims_label, hw, size_label
from spinescope.spinenet.spec import Spec, spec_hash

SPEC_FORMATS = {"json": ("JSON", "json", "application/json"), "yaml": ("YAML", "yaml", "application/x-yaml"),
                "tuples": ("tuple list", "txt", "text/plain")}
IMAGE_FORMATS = {"png": "image/png", "svg": "image/svg+xml"}
CHROMIUM = "/usr/bin/chromium"


class ExportError(Exception):
    """An export that cannot be produced here; the message is one line for the user."""


def file_stem(spec: Spec, base: Spec | None = None) -> str:
    """Returns a safe file name stem for the spec: the name the app shows for it (`display_name`, with `base` the
    spec its edits started from; 'spinenet-49-edited-3fa2c1') reduced to letters, digits, '-' and '_'."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", display_name(spec, base)).strip("-").lower()
    return stem[:60] or "spec"


def spec_bytes(spec: Spec, fmt: str) -> bytes:
    """Returns the spec as UTF-8 text in `fmt` (json, yaml or tuples)."""
    return dumps(spec, fmt).encode("utf-8")


def graph_html(spec: Spec, input_size: InputSize, costs: dict | None = None, base: Spec | None = None) -> bytes:
    """Returns the graph as a self-contained interactive HTML page (plotly.js embedded, works offline), titled with
    the spec's `display_name` (`base`: the spec its edits started from)."""
    name = display_name(spec, base)
    figure = graph_figure(spec, input_size, costs, title=f"{name} at {size_label(input_size)}px")
    page = figure.to_html(include_plotlyjs=True, full_html=True, config={"displaylogo": False},
                          div_id="spinescope-graph")
    title = f"<title>{escape_html(name)} · SpineScope</title>"
    return page.replace("<head>", f"<head>{title}", 1).encode("utf-8")


def _browser_for_kaleido() -> None:
    """Points kaleido's Chromium lookup at Debian's chromium when the user has not chosen one."""
    if not os.environ.get("BROWSER_PATH"):
        found = shutil.which("chromium") or (CHROMIUM if os.path.exists(CHROMIUM) else None)
        if found:
            os.environ["BROWSER_PATH"] = found


def graph_image(spec: Spec, input_size: InputSize, fmt: str, costs: dict | None = None, width: int = 1400,
                height: int = 640, base: Spec | None = None) -> bytes:
    """Returns the graph as PNG or SVG bytes, rendered by plotly's kaleido in headless Chromium (seconds), titled
    with the spec's `display_name` (`base`: the spec its edits started from). Raises ExportError when no Chromium
    or kaleido is available, or the rendering would exceed the memory or time limits."""
    if fmt not in IMAGE_FORMATS:
        raise ExportError(f"unknown image format {fmt!r}; use png or svg")
    try:
        import kaleido  # noqa: F401 - plotly's image export needs it
    except ImportError:
        raise ExportError("image export needs the kaleido package: pip install 'spinescope[app]'") from None
    scale = 2 if fmt == "png" else 1
    try:
        check_image_export(width, height, scale)
    except ResourceLimitError as refusal:
        raise ExportError(str(refusal)) from None
    _browser_for_kaleido()
    figure = graph_figure(spec, input_size, costs, title=f"{display_name(spec, base)} at {size_label(input_size)}px",
                          height=height)
    try:
        return figure.to_image(format=fmt, width=width, height=height, scale=scale)
    except Exception as error:  # noqa: BLE001 - kaleido raises many kinds; the user gets one line
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ExportError(f"image export failed (needs Chromium for kaleido): {first[:200]}") from None


def onnx_output_names(spec: Spec, head: str) -> list[str]:
    """Returns the ONNX output names in the order the model returns them."""
    levels = [f"P{level}" for level in range(spec.min_level, spec.max_level + 1)]
    if head == "retinanet":
        return [f"{level}_{part}" for level in levels for part in ("class", "box")]
    if head == "classification":
        return ["logits"]
    return levels


def onnx_bytes(spec: Spec, head: str, input_size: InputSize, with_weights: bool = True) -> bytes:
    """Returns the model (spec + head, random weights, eval mode) as an ONNX file for a 1x3xSxS input, made by
    `spinescope.export_onnx` with the size fixed (torch's TorchScript exporter, opset 17, which needs only the onnx
    package and works offline). Every input and output has its static shape, as the model computes it (the exporter
    alone would name some dimensions as if P3-P7 shared one height), and so has every intermediate tensor (in the
    graph's value_info, as Netron shows them); the weights are initializers, not graph inputs. Raises ExportError
    (one line) when the export would exceed the memory or time limits (`analysis.limits.check_onnx_export`)."""
    import onnx
    import torch

    from spinescope.onnx_export import flat_outputs, export_onnx
    from spinescope.spinenet.build import build_model

    try:
        check_onnx_export(spec, input_size, head, with_weights)
    except ResourceLimitError as refusal:
        raise ExportError(str(refusal)) from None
    model = build_model(spec, head, input_size, device="cpu")
    images = torch.zeros(1, 3, *hw(input_size))
    names = onnx_output_names(spec, head)
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            shapes = [tuple(tensor.shape) for tensor in flat_outputs(model(images))]
            data = export_onnx(model, input_size=input_size, dynamic=False, opset=17, output_names=names,
                               export_params=with_weights)
        except Exception as error:  # noqa: BLE001 - exporter errors are many kinds; the user gets one line
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"ONNX export failed: {first[:200]}") from None
    exported = onnx.load_from_string(data)
    if len(shapes) != len(exported.graph.output):
        raise ExportError(f"ONNX export failed: {len(exported.graph.output)} outputs, the model returns "
                          f"{len(shapes)}")
    for output, shape in zip(exported.graph.output, shapes):
        dims = output.type.tensor_type.shape.dim
        del dims[:]
        for size in shape:
            dims.add().dim_value = int(size)
    # Every intermediate tensor's shape, worked out from the static input: the exporter's own guesses are dropped,
    # and ONNX's shape inference with data propagation follows the resize sizes that the graph computes from
    # shapes (plain inference leaves those, and all that follows them, symbolic).
    del exported.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(exported, strict_mode=True, data_prop=True)
    exported.graph.value_info.extend(inferred.graph.value_info)
    return exported.SerializeToString()


_REPORT_SPECIAL = set("\\`*_[]<>|#~$&")


def report_text(text) -> str:
    """Returns user text for the Markdown report: on one printable line, with only the characters that would
    change the rendering backslash-escaped (emphasis, code, links, tables, HTML, headings), so that the file reads
    cleanly as text and renders literally ('SpineNet-49', not 'SpineNet\\-49')."""
    from spinescope.spinenet.validate import printable

    return break_autolinks("".join("\\" + char if char in _REPORT_SPECIAL else char for char in printable(text)))


def markdown_report(spec: Spec, result: Analysis, base: Spec | None = None, base_result: Analysis | None = None,
                    receptive_fields: dict | None = None) -> bytes:
    """Returns a Markdown report: totals, parts, per-block table, outputs, receptive fields, published figures for
    built-ins and the changes since `base`, titled with the spec's `display_name`. Every user string is escaped."""
    name = report_text(display_name(spec, base))
    lines = [f"# {name}", "",
             f"SpineScope analysis at {dims_label(result.input_size)} px, head: {result.head}, "
             f"family {spec.family}, spec hash `{spec_hash(spec)}`.", "",
             "MACs are multiply-adds (the paper's \"FLOPs\"); FLOPs = 2 × MACs. Params are trainable parameters.",
             "", "## Totals", "", "| part | params | MACs | FLOPs |", "|---|---|---|---|",
             f"| backbone | {millions(result.backbone_params)} | {billions(result.backbone_macs)} | "
             f"{billions(2 * result.backbone_macs)} |"]
    if spec.semantics != "reference" or result.dead_blocks:  # after the intro paragraph, before the totals
        semantics = ("Model Garden semantics (TF2 tensorflow/models; docs/spinenet-facts.md, section 14)"
                     if spec.semantics == "model_garden" else "Reference semantics (the authors' TF1 code)")
        dead = "; ".join(report_text(why) for why in result.dead_blocks.values())
        built = "not built" if spec.semantics == "model_garden" else "built, params counted, 0 MACs"
        lines[4:4] = [semantics + (f". Dead blocks ({built}): {dead}" if dead else "") + ".", ""]
    if result.head != "none":
        lines.append(f"| head ({result.head}) | {millions(result.head_params)} | {billions(result.head_macs)} | "
                     f"{billions(2 * result.head_macs)} |")
    lines.append(f"| **total** | **{millions(result.params)}** | **{billions(result.macs)}** | "
                 f"**{billions(result.flops)}** |")
    lines += ["", "## Parts", "", "| part | params | MACs |", "|---|---|---|"]
    lines += [f"| {part} | {millions(value['params'])} | {billions(value['macs'])} |"
              for part, value in result.parts.items()]
    total = max(result.backbone_macs, 1)
    lines += ["", "## Blocks", "", "| block | level | type | params | MACs | share of backbone MACs |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {report_text(block.id)} | L{block.level} | {block.block_fn} | {millions(block.params)} | "
              f"{billions(block.macs)} | {100 * block.macs / total:.1f}% |" for block in result.blocks]
    lines += ["", "## Outputs", "", "| level | shape (C×H×W) | receptive field (px) |", "|---|---|---|"]
    for level, shape in result.outputs.items():
        field = (receptive_fields or {}).get(level)
        lines.append(f"| {level} | {'×'.join(str(v) for v in shape)} | {field if field is not None else 'n/a'} |")
    builtin = builtin_name(spec)
    published = published_for(builtin, result.input_size) if builtin else None
    if published:
        lines += ["", "## Published figures", "",
                  f"{report_text(published.get('source', ''))}, RetinaNet at {published['input_size']} px: "
                  f"{published['params_m']}M params, {published['macs_b']}B MACs (\"FLOPs\")"
                  + (f", AP {published['ap']}" if published.get("ap") is not None else "") + "."]
    if base is not None and base != spec:
        diff = diff_specs(base, spec)
        lines += ["", f"## Changes since {report_text(base.name)}", ""]
        lines += [f"- {report_text(line.replace(' -> ', ' → '))}" for line in diff.lines()]
        if base_result is not None:
            lines += ["", f"Params {millions(base_result.params)} → {millions(result.params)}, "
                          f"MACs {billions(base_result.macs)} → {billions(result.macs)} (with head)."]
    lines += ["", "## Spec (YAML)", "", "```yaml", dumps(spec, "yaml").replace("```", "'''").rstrip(), "```", ""]
    return "\n".join(lines).encode("utf-8")


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """Returns a cell value that a spreadsheet will not run as a formula: a string that begins with =, +, -, @, a tab
    or a carriage return gets a leading apostrophe (OWASP's advice for CSV injection). Other values are unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame):
    """Returns a copy of a pandas DataFrame with every text cell (and column name) neutralised by `csv_cell`: what
    a table shows, since a dataframe's own toolbar downloads its cells as they are."""
    from pandas.api.types import is_numeric_dtype

    safe = frame.copy()
    safe.columns = [csv_cell(str(column)) for column in safe.columns]
    for column in safe.columns:
        if not is_numeric_dtype(safe[column]):  # object or string dtype (pandas 3 infers "str")
            safe[column] = safe[column].map(csv_cell)
    return safe


def table_csv(frame) -> bytes:
    """Returns a pandas DataFrame as UTF-8 CSV bytes with every text cell (and column name) neutralised by
    `csv_cell`: the one way the app's tables should be offered for download."""
    return safe_frame(frame).to_csv(index=False).encode("utf-8")
