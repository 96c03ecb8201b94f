"""Import and export: load a spec by upload or paste (validated; a bad one leaves the current spec untouched) and
download the spec, the graph, a Markdown report or the model as ONNX."""
from __future__ import annotations

import functools
import re
from dataclasses import replace

import streamlit as st

from spinescope.app import counts, exports, session, sidebar
from spinescope.app.guard import one_line
from spinescope.app.markup import escape_md
from spinescope.spinenet.builtins import load_builtin
from spinescope.spinenet.formats import MAX_SPEC_BYTES, TUPLE_SCALINGS, detect_format, import_tuples, loads, spec_text
from spinescope.spinenet.input_size import size_label
from spinescope.spinenet.registry import family_of
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.validate import SpecError

AREA = "import"
UPLOAD_TYPES = ["json", "yaml", "yml", "txt", "py"]
FORMAT_BY_SUFFIX = {"json": "json", "yaml": "yaml", "yml": "yaml", "txt": None, "py": "tuples"}
PASTE_FORMATS = {"auto": "detect", "json": "JSON", "yaml": "YAML", "tuples": "tuple list"}
OPEN_SPEC = "open spec"  # the tuple-list scaling choice that means "the open spec's"


def scaling_choices() -> list[str]:
    """The scalings a bare tuple list can take: the open spec's and the paper's sizes."""
    return [OPEN_SPEC] + list(TUPLE_SCALINGS)


# The name `import_tuples` gives a tuple list: "Tuple list (SCALING scaling)".
TUPLE_LIST_NAME = re.compile(r"Tuple list \((.+) scaling\)")


def scaling_origin(name: str) -> str:
    """Returns the name of the spec a scaling came from: `name` itself, or for a spec named as an imported tuple list
    ("Tuple list (SpineNet-49 scaling)") the name inside, so that a list imported onto it is named after the same
    scaling rather than nesting the names."""
    while (match := TUPLE_LIST_NAME.fullmatch(name)):
        name = match.group(1)
    return name


def _open_scaling() -> Spec:
    """The open spec (named after where its scaling came from, see `scaling_origin`), or SpineNet-49 when the open
    spec has no block list (ResNet-FPN) to take a scaling from."""
    spec = session.current()
    if not family_of(spec).has_blocks:
        return load_builtin("spinenet-49")
    return replace(spec, name=scaling_origin(spec.name))


def _scaling_text(spec: Spec) -> str:
    sc = spec.scaling
    return (f"{sc.endpoints_num_filters} filters, ×{sc.filter_size_scale:g}, α {sc.resample_alpha:g}, "
            f"{sc.block_repeats} repeat{'s' if sc.block_repeats != 1 else ''}, {spec.input_size} px")


def scaling_label(choice: str) -> str:
    """The option's label; fixed per option (the open spec's details are in the caption under the choice)."""
    if choice == OPEN_SPEC:
        return "the open spec's scaling"
    spec = load_builtin(choice)
    return f"{spec.name} ({_scaling_text(spec)})"


def scaling_caption() -> str:
    spec = scaling_spec()
    if st.session_state.get("tuple_scaling", OPEN_SPEC) in TUPLE_SCALINGS:
        return f"A tuple list gets {escape_md(spec.name)}'s scaling: {escape_md(_scaling_text(spec))}."
    if family_of(session.current()).has_blocks:
        return f"A tuple list gets the open spec's scaling ({escape_md(spec.name)}): {escape_md(_scaling_text(spec))}."
    return (f"The open spec has no block scaling, so a tuple list gets {escape_md(spec.name)}'s: "
            f"{escape_md(_scaling_text(spec))}.")


def scaling_spec() -> Spec:
    """Returns the spec whose scaling a bare tuple list takes (the choice shown above the uploader)."""
    choice = st.session_state.get("tuple_scaling", OPEN_SPEC)
    return _open_scaling() if choice not in TUPLE_SCALINGS else load_builtin(choice)


# The output levels a bare tuple list can take (the Model Garden supports min_level 2 and 3).
TUPLE_MIN_LEVELS = {3: "P3-P7 (the paper's): a level-2 output is kept without an endpoint, as the reference does",
                    2: "P2-P7: the level-2 output (the Model Garden's 16th block) is P2, stride 4"}


def tuple_min_level() -> int:
    """Returns the min level (2 or 3) chosen for a bare tuple list."""
    return int(st.session_state.get("tuple_min_level", 3))


def import_spec(data: bytes | str, fmt: str | None, source: str, rendered: int | None = None) -> bool:
    """Parses and validates `data`; on success it becomes the new starting spec (undoable), otherwise a one-line
    error is recorded and nothing changes. Returns True on success. `rendered`: see `session.is_stale`."""
    if isinstance(data, bytes) and len(data) > MAX_SPEC_BYTES:
        session.note(AREA, "error", f"Import failed ({source}): {len(data):,} bytes, over the "
                                    f"{MAX_SPEC_BYTES:,}-byte limit for a spec")
        return False
    try:
        text = spec_text(data)
        if (fmt or detect_format(text)) == "tuples":
            # A bare block list: the scaling and the name are not in it; they are the user's visible choice.
            imported = import_tuples(text, scaling_spec(), source, tuple_min_level())
            spec, notes = imported.spec, imported.notes
        else:
            spec, notes = loads(text, fmt), ()
    except SpecError as error:
        session.note(AREA, "error", f"Import failed ({source}): {error}")
        return False
    except Exception as error:  # noqa: BLE001 - any parser failure is the file's problem; one line for the user
        session.note(AREA, "error", f"Import failed ({source}): {one_line(error)}")
        return False
    message = ("Imported " + ". Note: ".join(notes) + ".") if notes else None
    return session.load_spec(AREA, spec, f"import {source}", rendered, message)


@session.callback("import")
def _uploaded() -> None:
    key = f"upload_{st.session_state.get('upload_round', 0)}"
    upload = st.session_state.get(key)
    if upload is None:
        return
    name = upload.name
    suffix = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if suffix not in FORMAT_BY_SUFFIX:
        session.note(AREA, "error", f"Import failed ({name}): unknown file type '.{suffix}'; use "
                                    f"{', '.join('.' + s for s in UPLOAD_TYPES)}")
    else:
        import_spec(upload.getvalue(), FORMAT_BY_SUFFIX[suffix], name)
    # A new key empties the uploader, so the same file can be uploaded again after fixing it.
    st.session_state.upload_round = st.session_state.get("upload_round", 0) + 1


@session.callback("import")
def _pasted(rendered: int) -> None:
    text = st.session_state.get("paste_text", "")
    fmt = st.session_state.get("paste_format", "auto")
    if not text.strip():
        session.note(AREA, "error", "Import failed (pasted text): nothing pasted")
        return
    import_spec(text, None if fmt == "auto" else fmt, "pasted text", rendered)


def import_section() -> None:
    st.markdown("#### Import a spec")
    session.show_notes(AREA)
    st.selectbox("Scaling for a bare tuple list (it has only the blocks)", scaling_choices(), key="tuple_scaling",
                 format_func=scaling_label,
                 help="A JSON or YAML spec brings its own scaling; a tuple list takes this one, and its name says so")
    st.caption(scaling_caption())
    st.selectbox("Output levels for a bare tuple list", list(TUPLE_MIN_LEVELS), key="tuple_min_level",
                 format_func=TUPLE_MIN_LEVELS.get,
                 help="min_level 3 or 2; with 2 the list needs a level-2 output, such as the current Model Garden's "
                      "(2, 'bottleneck', (2, 13), True)")
    upload_column, paste_column = st.columns(2, gap="large")
    with upload_column:
        st.file_uploader("Upload JSON, YAML or a tuple list (.txt/.py)", type=UPLOAD_TYPES,
                         key=f"upload_{st.session_state.get('upload_round', 0)}", on_change=_uploaded,
                         max_upload_size=max(1, MAX_SPEC_BYTES // (1 << 20)),
                         help="At most 1 MB. A tuple list takes the scaling chosen above.")
        st.caption("The imported spec becomes the new starting spec (Undo goes back). A file with problems is "
                   "refused with the first problem and the current spec stays as it is.")
    with paste_column:
        st.text_area("…or paste one", key="paste_text", height=150,
                     placeholder="[(2, 'bottleneck', (0, 1), False), (4, 'residual', (0, 1), False), ...]")
        fmt_column, button_column = st.columns([2, 1], vertical_alignment="bottom")
        fmt_column.selectbox("Format", list(PASTE_FORMATS), key="paste_format", format_func=PASTE_FORMATS.get)
        # Wraps rather than cut the label where the column is narrow (1366 px).
        button_column.button("Import pasted text", key="import_paste", on_click=_pasted, args=(session.revision(),),
                             width="stretch", wrap=True)


@session.callback("export")
def _prepare(kind: str, maker, *args) -> None:
    """Makes an expensive export on request and keeps it for the download button (keyed by what it depends on)."""
    try:
        with st.spinner(f"Preparing {kind}…"):
            data = maker(*args)
    except exports.ExportError as error:
        session.note("export", "error", str(error))
        return
    except Exception as error:  # noqa: BLE001 - one line for the user
        session.note("export", "error", f"{kind} failed: {one_line(error)}")
        return
    st.session_state.setdefault("prepared", {})[kind] = (args_key(args), data)


def args_key(args) -> str:
    spec, *rest = args
    return f"{counts.spec_key(spec)}|{'|'.join(str(value) for value in rest if not isinstance(value, dict))}"


def _prepared(kind: str, args) -> bytes | None:
    key, data = st.session_state.get("prepared", {}).get(kind, (None, None))
    return data if key == args_key(args) else None


def export_section() -> None:
    spec, base = session.current(), session.history().base
    input_size, head = sidebar.input_size(), sidebar.head()
    stem = exports.file_stem(spec, base)
    st.markdown("#### Export")
    session.show_notes("export")
    spec_column, graph_column, model_column = st.columns(3, gap="large")
    with spec_column:
        st.markdown("**Spec**")
        for fmt, (label, suffix, mime) in exports.SPEC_FORMATS.items():
            if fmt == "tuples" and not family_of(spec).has_blocks:
                st.caption(f"{family_of(spec).title} has no block list to write as tuples.")
                continue
            st.download_button(f"{label} (.{suffix})", exports.spec_bytes(spec, fmt),
                               file_name=f"{stem}.{suffix}" if fmt != "tuples" else f"{stem}-tuples.txt",
                               mime=mime, key=f"download_{fmt}", on_click="ignore", icon=":material/download:")
    result = counts.analysis_of(spec, input_size, head)
    costs = counts.block_costs(spec, result)
    with graph_column:
        st.markdown("**Graph**")
        st.download_button("Interactive HTML", exports.graph_html(spec, input_size, costs, base=base),
                           file_name=f"{stem}-graph.html", mime="text/html", key="download_html",
                           on_click="ignore", icon=":material/download:",
                           help="One self-contained file (plotly.js included): opens offline in any browser")
        for fmt in exports.IMAGE_FORMATS:
            args = (spec, input_size, fmt, costs)
            data = _prepared(fmt, args)
            if data is None:
                st.button(f"Render {fmt.upper()}", key=f"render_{fmt}", on_click=_prepare,
                          args=(fmt, functools.partial(exports.graph_image, base=base), *args),
                          help="Rendered by Chromium (a few seconds)")
            else:
                st.download_button(f"{fmt.upper()} image", data, file_name=f"{stem}-graph.{fmt}",
                                   mime=exports.IMAGE_FORMATS[fmt], key=f"download_{fmt}", on_click="ignore",
                                   icon=":material/download:")
    with model_column:
        st.markdown("**Analysis and model**")
        base_result = counts.analysis_of(base, input_size, head) if base != spec else None
        report = exports.markdown_report(spec, result, base, base_result,
                                         counts.output_receptive_fields(spec, input_size))
        st.download_button("Markdown report", report, file_name=f"{stem}-report.md", mime="text/markdown",
                           key="download_report", on_click="ignore", icon=":material/download:")
        with st.popover("Preview the report", icon=":material/visibility:"):
            st.markdown(report.decode("utf-8"))  # user text in it is escaped by markdown_report
        args = (spec, head, input_size)
        data = _prepared("onnx", args)
        if data is None:
            st.button("Build ONNX model", key="render_onnx", on_click=_prepare,
                      args=("onnx", exports.onnx_bytes, *args),
                      help=f"{escape_md(session.current_name())} with the {head} head at {size_label(input_size)} px, random weights "
                           "(seconds to a minute); opens in Netron")
        else:
            st.download_button(f"ONNX ({len(data) / 1e6:.0f} MB)", data, file_name=f"{stem}-{head}-{size_label(input_size)}.onnx",
                               mime="application/octet-stream", key="download_onnx", on_click="ignore",
                               icon=":material/download:")
        st.caption(f"ONNX: the {head} head at {size_label(input_size)} px, random weights, opset 17.")


def render() -> None:
    import_section()
    st.divider()
    export_section()
