"""The sidebar: open a built-in, input size and head, undo/redo, saved designs, recent workspaces."""
from __future__ import annotations

import time

import streamlit as st

from spinescope.analysis import defaults
from spinescope.app import session
from spinescope.app.markup import escape_md
from spinescope.app.workspace import WorkspaceError
from spinescope.spinenet.builtins import BUILTIN_NAMES, load_builtin
from spinescope.spinenet.input_size import InputSize, hw
from spinescope.spinenet.registry import heads
from spinescope.spinenet.spec import spec_hash
from spinescope.spinenet.validate import LIMITS


def builtin_label(name: str) -> str:
    return load_builtin(name).name


@session.callback("sidebar")
def _open_builtin(rendered: int) -> None:
    name = st.session_state.builtin_choice
    session.load_spec("sidebar", load_builtin(name), f"open built-in {name}", rendered)


@session.callback("sidebar")
def _undo(rendered: int) -> None:
    session.step("sidebar", -1, rendered)


@session.callback("sidebar")
def _redo(rendered: int) -> None:
    session.step("sidebar", 1, rendered)


@session.callback("sidebar")
def _input_size_changed() -> None:
    session.set_setting("input_size", int(st.session_state.input_size))
    height = st.session_state.get("input_height")
    session.set_setting("input_height", None if height is None else int(height))


@session.callback("sidebar")
def _head_changed() -> None:
    session.set_setting("head", st.session_state.head)


@session.callback("sidebar")
def _pooling_changed() -> None:
    session.set_setting("pooling", st.session_state.pooling)


# The classification head's poolings offered here (SPPNet's two pyramids, its average variant, GAP).
POOLINGS = {"gap": "GAP (global average)", "spp": "SPP {4,2,1} (SPPNet, max)", "spp:6,3,2,1": "SPP {6,3,2,1}",
            "spp_avg": "SPP {4,2,1}, average bins"}


def classifier_input_line(spec, size: InputSize, pooling: str) -> str:
    """Returns the line that shows the classifier's input length at `size` and at a second size (pixels)."""
    from spinescope.analysis.architecture.classifier_input import classifier_input, other_size, summary

    return summary(classifier_input(spec, size, pooling), classifier_input(spec, other_size(size), pooling))


def pooling_choice(spec, size: InputSize) -> None:
    """The classification head's pooling and the line showing that its input length does not follow the map."""
    if "pooling" not in st.session_state:
        st.session_state.pooling = session.setting("pooling", "gap")
    st.selectbox("Classifier pooling", list(POOLINGS), key="pooling", format_func=POOLINGS.get,
                 on_change=_pooling_changed)
    try:
        st.caption(escape_md(classifier_input_line(spec, size, st.session_state.pooling))
                   + ". The counts in the tabs use GAP.")
    except (ValueError, KeyError) as error:
        st.caption(escape_md(f"Classifier input not available: {error}"))


@session.callback("sidebar")
def _save_design() -> None:
    name = st.session_state.get("design_name", "")
    try:
        replaced = session.store().save_design(name, session.current())
    except WorkspaceError as error:
        session.note("sidebar", "error", f"Not saved: {error}")
        return
    session.note("sidebar", "success", f"{'Replaced' if replaced else 'Saved'} design “{name.strip()}”.")


@session.callback("sidebar")
def _open_design(rendered: int) -> None:
    name = st.session_state.get("design_choice")
    try:
        spec = session.store().load_design(name)
    except WorkspaceError as error:
        session.note("sidebar", "error", f"Not opened: {error}")
        return
    session.load_spec("sidebar", spec, f"open design {name}", rendered,
                      message=f"Opened design “{name}” ({spec.name}).")


@session.callback("sidebar")
def _delete_design() -> None:
    name = st.session_state.get("design_choice")
    try:
        session.store().delete_design(name)
    except WorkspaceError as error:
        session.note("sidebar", "error", str(error))
        return
    session.note("sidebar", "info", f"Deleted design “{name}”.")


def input_size() -> InputSize:
    """Returns the input size chosen for this workspace (`session.input_size`)."""
    return session.input_size()


def input_side() -> int:
    """Returns the width (pixels) of the chosen input: the one side that views timing square inputs start from."""
    return hw(input_size())[1]


def input_height() -> int | None:
    """Returns the height (pixels) of the chosen input when it is not square, else None (the tabs' empty
    "Height" field)."""
    height, width = hw(input_size())
    return None if height == width else height


def head() -> str:
    """Returns the head chosen for the 'backbone + head' figures: 'retinanet' or 'classification'."""
    return st.session_state.get("head") or session.setting("head", defaults.HEAD)


def render() -> None:
    spec = session.current()
    history = session.history()
    with st.sidebar:
        st.markdown("## SpineScope")
        st.caption("Scale-permuted backbones (SpineNet) vs scale-decreased (ResNet-FPN): explore, edit, compare.")
        st.markdown(f"**Current:** {escape_md(session.current_name())}  \n`{spec_hash(spec)}` · "
                    f"{len(history.entries)} "
                    f"history entr{'y' if len(history.entries) == 1 else 'ies'}")
        if spec.semantics == "model_garden":
            st.caption("Semantics: **Model Garden** (TF2, tensorflow/models): TF 'SAME' strided convs, repeated 3x3/2 "
                       "max-pools, hard-sigmoid SE gates, dead blocks not built (docs/spinenet-facts.md, section 14).")
        undo, redo = st.columns(2)
        undo.button("Undo", key="undo", icon=":material/undo:", on_click=_undo, args=(session.revision(),),
                    disabled=not history.can_undo,
                    help=f"Undo: {escape_md(history.undo_description)}" if history.can_undo else "Nothing to undo",
                    width="stretch")
        redo.button("Redo", key="redo", icon=":material/redo:", on_click=_redo, args=(session.revision(),),
                    disabled=not history.can_redo,
                    help=f"Redo: {escape_md(history.redo_description)}" if history.can_redo else "Nothing to redo",
                    width="stretch")
        session.show_notes("sidebar")

        st.markdown("#### Open a built-in")
        if "builtin_choice" not in st.session_state:
            st.session_state.builtin_choice = session.DEFAULT_BUILTIN
        choice, button = st.columns([2, 1], vertical_alignment="bottom")
        choice.selectbox("Built-in architecture", BUILTIN_NAMES, key="builtin_choice", format_func=builtin_label,
                         label_visibility="collapsed")
        button.button("Open", key="open_builtin", on_click=_open_builtin, args=(session.revision(),), width="stretch",
                      help="Open this built-in as the new starting spec (undoable)")

        st.markdown("#### Analysis settings")
        if "input_size" not in st.session_state:
            st.session_state.input_size = int(session.setting("input_size") or spec.input_size)
        if "input_height" not in st.session_state:
            st.session_state.input_height = session.setting("input_height")
        if "head" not in st.session_state:
            st.session_state.head = session.setting("head", defaults.HEAD)
        width, height = st.columns(2)
        width.number_input("Input size (pixels)", min_value=LIMITS["min_input_size"],
                           max_value=LIMITS["max_input_size"], step=32, key="input_size", on_change=_input_size_changed,
                           help=f"The input's width; a square input unless a height is given. The spec's own input "
                                f"size is {spec.input_size}.")
        height.number_input("Height (empty: square)", min_value=LIMITS["min_input_size"],
                            max_value=LIMITS["max_input_size"], step=32, key="input_height",
                            value=None,  # clearable: empty means a square input
                            on_change=_input_size_changed, placeholder="square",
                            help="Detection inputs need not be square (1333 × 800, 1024 × 768): each level is "
                                 "ceil(H / 2^l) × ceil(W / 2^l) and the resampling is decided per axis.")
        st.selectbox("Head (for 'backbone + head')", list(heads()), key="head",
                     format_func=lambda name: heads()[name].title,
                     on_change=_head_changed)
        if head() == "classification":
            pooling_choice(spec, input_size())

        st.markdown("#### Designs")
        st.text_input("Save the current spec as", key="design_name", placeholder="design name",
                      max_chars=LIMITS["max_name_length"])
        st.button("Save design", key="save_design", on_click=_save_design, icon=":material/save:")
        designs = session.store().designs()
        if designs:
            labels = {info.name: f"{info.name} ({info.spec_name}, {_when(info.saved)})" for info in designs}
            st.selectbox("Saved designs", list(labels), key="design_choice", format_func=labels.get)
            left, right = st.columns(2)
            left.button("Open design", key="open_design", on_click=_open_design, args=(session.revision(),),
                        width="stretch")
            right.button("Delete", key="delete_design", on_click=_delete_design, width="stretch")
        else:
            st.caption("No saved designs yet.")

        with st.expander("Recent workspaces"):
            st.caption("Each browser tab works in its own workspace (the `ws` in the address). Those started in "
                       "this browser are listed here, newest first; other browsers' never are.")
            lines = recent_lines(session.browser_id(), session.workspace_id())
            st.markdown("\n".join(lines) if lines else "Only this workspace so far.")


def recent_lines(browser: str, this_id: str, limit: int = 8) -> list[str]:
    """Returns one Markdown line per recent workspace started in browser `browser`: a link named by its spec, its
    last change, the number of steps and when. A workspace holding nothing but the untouched default start is
    left out (they would all read alike), except the one open here."""
    lines = []
    for info in session.store().recent(limit * 3, owner=browser):
        untouched = info.entries == 1 and info.last == f"open built-in {session.DEFAULT_BUILTIN}"
        if untouched and info.id != this_id:
            continue
        steps = info.entries - 1
        what = "opened, not edited" if untouched else f"last: {info.last}"
        mark = " **(this one)**" if info.id == this_id else ""
        lines.append(f"- [{escape_md(info.spec_name)}](?ws={info.id}){mark}: {escape_md(what)} · {steps} "
                     f"step{'s' if steps != 1 else ''} · {_when(info.updated)}")
        if len(lines) == limit:
            break
    return lines


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))
