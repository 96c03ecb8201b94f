"""Edit: change the selected block (level, type, parents, output), move, insert or delete it, edit the whole block
list as a table, scale the network; every edit is validated and a rejected one says why in one line."""
from __future__ import annotations


import pandas as pd
import streamlit as st

from spinescope.app import counts, selection, session, sidebar
from spinescope.app.graph_figure import dead_blocks, dead_blocks_note, feeds_text, graph_figure
from spinescope.app.graph_view import show_graph
from spinescope.app.guard import guarded
from spinescope.app.markup import escape_md
from spinescope.app.tables import table
from spinescope.app.units import billions, millions, signed_billions, signed_millions
from spinescope.spinenet import edits
from spinescope.spinenet.input_size import InputSize, level_label
from spinescope.spinenet.layout import resolve
from spinescope.spinenet.registry import family_of
from spinescope.spinenet.spec import STEM_IDS, Spec
from spinescope.spinenet.validate import LIMITS, MAX_LEVEL, MIN_LEVEL

AREA = "edit"
TABLE_AREA = "edit_table"  # the block table's notes, shown under it


def _selected_block(spec: Spec):
    block_id = st.session_state.get(selection.STATE_KEY)
    return spec.block(block_id) if block_id in spec.block_ids else None


@session.callback("edit")
def _edit_level(block_id: str) -> None:
    old = session.current().block(block_id).level
    new = st.session_state.edit_level
    session.apply_edit(AREA, edits.set_level, block_id, new, description=f"{block_id}: level L{old} → L{new}")


@session.callback("edit")
def _edit_type(block_id: str) -> None:
    old = session.current().block(block_id).block_fn
    new = st.session_state.edit_type
    session.apply_edit(AREA, edits.set_block_fn, block_id, new, description=f"{block_id}: type {old} → {new}")


@session.callback("edit")
def _edit_parents(block_id: str) -> None:
    old = session.current().block(block_id).parents
    new = (st.session_state.edit_parent0, st.session_state.edit_parent1)
    session.apply_edit(AREA, edits.set_parents, block_id, new,
                       description=f"{block_id}: parents {', '.join(old)} → {', '.join(new)}")


@session.callback("edit")
def _edit_output(block_id: str) -> None:
    flag = st.session_state.edit_output
    level = session.current().block(block_id).level
    session.apply_edit(AREA, edits.set_output, block_id, flag,
                       description=f"{block_id}: {'becomes' if flag else 'is no longer'} the P{level} output")


@session.callback("edit")
def _move(block_id: str, offset: int, rendered: int) -> None:
    session.apply_edit(AREA, edits.move_block, block_id, offset, rendered=rendered,
                       description=f"move {block_id} {'earlier' if offset < 0 else 'later'}")


@session.callback("edit")
def _insert(block_id: str, rendered: int) -> None:
    new_id = edits.new_block_id(session.current())
    session.apply_edit(AREA, edits.insert_block, block_id, new_id, description=f"insert {new_id} after {block_id}",
                       select=new_id, rendered=rendered)


@session.callback("edit")
def _delete(block_id: str, rewire: bool, rendered: int) -> None:
    spec = session.current()
    index = spec.block_ids.index(block_id)
    neighbour = spec.block_ids[index - 1] if index > 0 else (spec.block_ids[1] if len(spec.blocks) > 1 else None)
    accepted = session.apply_edit(AREA, edits.delete_block, block_id, rewire=rewire, rendered=rendered,
                                  description=f"delete {block_id}" + (" (children rewired)" if rewire else ""))
    if accepted and neighbour:
        selection.select(neighbour)


@session.callback(TABLE_AREA)
def _apply_table(key: str) -> None:
    table = st.session_state.get(f"{key}_frame")
    state = st.session_state.get(key) or {}
    rows = apply_editor_state(table, state)
    # A refused table keeps the editor as it is (same key: every pending edit stays for the user to fix).
    session.apply_edit(TABLE_AREA, edits.replace_blocks, rows, edits.TABLE_LABELS, description="edit block table")


def apply_editor_state(rows: list[dict], state: dict) -> list[dict]:
    """Returns the table rows after a data_editor's edit state (edited_rows, added_rows, deleted_rows)."""
    rows = [dict(row) for row in rows]
    for index, changes in (state.get("edited_rows") or {}).items():
        rows[int(index)].update(changes)
    deleted = {int(index) for index in state.get("deleted_rows") or []}
    rows = [row for index, row in enumerate(rows) if index not in deleted]
    rows += [dict(row) for row in state.get("added_rows") or []]
    return rows


@session.callback("edit")
def _apply_scaling() -> None:
    changes = {field: st.session_state[f"scale_{field}"] for field in
               ("endpoints_num_filters", "filter_size_scale", "resample_alpha", "block_repeats")}
    session.apply_edit(AREA, edits.set_scaling, description="change scaling", **changes)


@session.callback("edit")
def _edit_min_level() -> None:
    level, _, block_id = str(st.session_state.edit_min_level).partition(":")
    old = session.current()
    outputs = {2: block_id} if block_id else None
    description = f"min level {old.min_level} → {level}" + (f", P2 from {block_id}" if block_id else "")
    if session.apply_edit(AREA, edits.set_min_level, int(level), outputs, description=description):
        session.note(AREA, "info", edits.min_level_change_note(old, session.current()))


def min_level_editor(spec: Spec) -> None:
    """The lowest output level (P2 or P3, ...): one choice per min level, and per level-2 block that can be P2."""
    options = {f"{level}:{block_id}" if block_id else str(level): (level, block_id)
               for level, block_id in edits.min_level_options(spec)}
    session.sync_widgets("min_level", {"edit_min_level": str(spec.min_level)})

    def label(key: str) -> str:
        level, block_id = options[key]
        if block_id:
            return f"min level 2 (P2–P{spec.max_level}), P2 from {block_id}"
        return f"min level {level} (P{level}–P{spec.max_level})" + (" · current" if level == spec.min_level else "")

    st.selectbox("Lowest output level", list(options), key="edit_min_level", format_func=label,
                 on_change=_edit_min_level,
                 help="P2 (stride 4) needs a level-2 output block; raising the min level keeps the blocks of the "
                      "levels left out, without endpoints, as the reference does")


SEMANTICS_LABELS = {"reference": "Reference (the authors' TF1 code)",
                    "model_garden": "Model Garden (TF2, tensorflow/models)"}


@session.callback("edit")
def _edit_semantics() -> None:
    old, semantics = session.current(), st.session_state.edit_semantics
    if session.apply_edit(AREA, edits.set_semantics, semantics, description=f"semantics {old.semantics} → {semantics}"):
        session.note(AREA, "info", edits.semantics_change_note(old, session.current()))


def semantics_editor(spec: Spec) -> None:
    """Reference or Model Garden semantics (docs/spinenet-facts.md, section 14): the module, counts, receptive
    fields and graph follow; under Model Garden dead blocks are not built."""
    session.sync_widgets("semantics", {"edit_semantics": spec.semantics})
    st.radio("Semantics", list(SEMANTICS_LABELS), key="edit_semantics", format_func=SEMANTICS_LABELS.get,
             horizontal=True, on_change=_edit_semantics,
             help="Model Garden: strided convs pad as TF 'SAME', down-resampling by 8 is two 3x3/2 max-pools, "
                  "Mobile's squeeze-excite gate is a hard sigmoid, and blocks that reach no output are not built. "
                  "Its published checkpoints convert with `spinescope convert-tf`.")


@session.callback("edit")
def _apply_stages() -> None:
    stages = tuple(int(st.session_state[f"stage_{index}"]) for index in range(4))
    session.apply_edit(AREA, edits.set_stages, stages, description=f"stages → {list(stages)}")


@session.callback("edit")
def _apply_name() -> None:
    name = st.session_state.get("spec_name", "")
    session.apply_edit(AREA, edits.rename, name, description=f"rename to {name.strip()}")


def block_editor(spec: Spec, input_size: InputSize) -> None:
    chosen = selection.selector(spec, input_size, key="edit_block_box", label="Block to edit",
                                options=list(STEM_IDS[:2]) + list(spec.block_ids))
    block = _selected_block(spec)
    if block is None:
        st.info(f"'{escape_md(chosen)}' is a stem block: the stem is fixed. Pick a permuted block to edit it.")
        return
    session.sync_widgets("block", {"edit_level": block.level, "edit_type": block.block_fn,
                                   "edit_parent0": block.parents[0], "edit_parent1": block.parents[1],
                                   "edit_output": block.is_output}, extra=block.id)
    index = spec.block_ids.index(block.id)
    earlier = list(STEM_IDS) + list(spec.block_ids[:index])
    level_col, type_col, parent0_col, parent1_col, output_col = st.columns([1.1, 1.2, 1.2, 1.2, 1.1],
                                                                           vertical_alignment="bottom")
    level_col.selectbox("Level", list(range(MIN_LEVEL, MAX_LEVEL + 1)), key="edit_level",
                        format_func=lambda level: f"L{level} ({level_label(input_size, level)} px)",
                        on_change=_edit_level, args=(block.id,))
    type_col.selectbox("Block type", family_of(spec).block_fns, key="edit_type", on_change=_edit_type,
                       args=(block.id,))
    parent0_col.selectbox("Parent 1", earlier, key="edit_parent0", on_change=_edit_parents, args=(block.id,))
    parent1_col.selectbox("Parent 2", earlier, key="edit_parent1", on_change=_edit_parents, args=(block.id,))
    output_col.checkbox(f"P{block.level} output" if spec.min_level <= block.level <= spec.max_level else "output",
                        key="edit_output", on_change=_edit_output, args=(block.id,),
                        help="Make this block the output of its level (the previous output there loses the flag)")
    children = edits.children_of(spec, block.id)
    revision = session.revision()
    cols = st.columns(5)
    cols[0].button("Move earlier", key="move_earlier", icon=":material/arrow_back:", on_click=_move,
                   args=(block.id, -1, revision), disabled=index == 0, width="stretch")
    cols[1].button("Move later", key="move_later", icon=":material/arrow_forward:", on_click=_move,
                   args=(block.id, 1, revision), disabled=index == len(spec.blocks) - 1, width="stretch")
    cols[2].button("Insert after", key="insert_after", icon=":material/add:", on_click=_insert,
                   args=(block.id, revision),
                   disabled=len(spec.blocks) >= LIMITS["max_blocks"], width="stretch",
                   help="A new block after this one: same level and type, fed by this block and the one before")
    cols[3].button("Delete", key="delete_block", icon=":material/delete:", on_click=_delete,
                   args=(block.id, False, revision), width="stretch",
                   help="Refused while other blocks use this one as a parent")
    cols[4].button("Delete + rewire", key="delete_rewire", icon=":material/call_split:", on_click=_delete,
                   args=(block.id, True, revision), width="stretch", disabled=not children,
                   help="Delete and give each child one of this block's parents instead")
    layout = resolve(spec, input_size)
    dead = dead_blocks(layout).get(block.id)
    st.caption(f"Feeds: {escape_md(feeds_text(layout, block.id))}."
               + (f" **Dead**, reaches no output: {escape_md(dead)} (built, params count, 0 MACs)." if dead else "")
               + " Parents must be earlier blocks; each level P3–P7 needs exactly one output block.")


def graph_and_totals(spec: Spec, input_size: InputSize, head: str) -> None:
    """The graph (click a block to edit it) and the totals with their change since the starting spec."""
    result = counts.analysis_of(spec, input_size, head)
    base = session.history().base
    before = counts.analysis_of(base, input_size, head) if base != spec else result
    graph_column, numbers_column = st.columns([4, 1], gap="medium")
    with graph_column:
        figure = graph_figure(spec, input_size, counts.block_costs(spec, result), head=head,
                              selected=st.session_state.get(selection.STATE_KEY), height=380, width_hint=600)
        show_graph(figure, key="edit_graph", on_click=selection.graph_clicked,
                   alt=f"Graph of {spec.name} as edited: {len(spec.blocks)} blocks by order and feature level")
        note = dead_blocks_note(counts.view_of(spec, input_size, head).layout)
        if note:
            st.caption(f":material/block: {escape_md(note)}")
    with numbers_column:
        for label, value, old, fmt, signed in (
                ("Backbone MACs", result.backbone_macs, before.backbone_macs, billions, signed_billions),
                ("Backbone params", result.backbone_params, before.backbone_params, millions, signed_millions),
                ("MACs with head", result.macs, before.macs, billions, signed_billions)):
            st.metric(label, fmt(value), signed(value - old) if value != old else None, delta_color="off")


def table_editor(spec: Spec) -> None:
    rows = [{"id": b.id, "level": b.level, "block_fn": b.block_fn, "parent0": b.parents[0], "parent1": b.parents[1],
             "is_output": b.is_output} for b in spec.blocks]
    # Keyed by the workspace revision, which only an accepted change moves: after a refused Apply the editor keeps
    # every pending edit; after an accepted one (or undo, redo, another edit) it shows the new spec.
    key = f"block_table_{session.workspace_id()}_{session.revision()}"
    st.session_state[f"{key}_frame"] = rows
    labels = edits.TABLE_LABELS
    st.data_editor(
        pd.DataFrame(rows), key=key, num_rows="dynamic", hide_index=True, width="stretch",
        column_config={
            "id": st.column_config.TextColumn(labels["id"], required=True, max_chars=32),
            "level": st.column_config.NumberColumn(labels["level"], min_value=MIN_LEVEL, max_value=MAX_LEVEL,
                                                   step=1, required=True),
            "block_fn": st.column_config.SelectboxColumn(labels["block_fn"], options=list(family_of(spec).block_fns),
                                                         required=True),
            "parent0": st.column_config.TextColumn(labels["parent0"], required=True, max_chars=32),
            "parent1": st.column_config.TextColumn(labels["parent1"], required=True, max_chars=32),
            "is_output": st.column_config.CheckboxColumn(labels["is_output"]),
        })
    st.button("Apply table", key="apply_table", on_click=_apply_table, args=(key,), type="primary",
              help="Validate the whole table and make it the current spec (one undoable edit)")
    st.caption("Rows are blocks in build order. Changes take effect when you press Apply; an invalid table is "
               "refused with the reason and the current spec stays.")


def scaling_editor(spec: Spec) -> None:
    if not family_of(spec).has_blocks:
        session.sync_widgets("stages", {f"stage_{index}": count for index, count in enumerate(spec.stages)})
        for index, col in enumerate(st.columns(4)):
            col.number_input(f"C{index + 2} blocks", min_value=1, max_value=LIMITS["max_stage_blocks"], step=1,
                             key=f"stage_{index}")
        st.button("Apply stages", key="apply_stages", on_click=_apply_stages,
                  help="ResNet-50: 3, 4, 6, 3 · ResNet-101: 3, 4, 23, 3 · ResNet-152: 3, 8, 36, 3")
        return
    scaling = spec.scaling
    session.sync_widgets("scaling", {f"scale_{field}": getattr(scaling, field) for field in
                                     ("endpoints_num_filters", "filter_size_scale", "resample_alpha",
                                      "block_repeats")})
    cols = st.columns(4)
    cols[0].number_input("Endpoint filters", min_value=1, max_value=LIMITS["max_endpoints_num_filters"], step=8,
                         key="scale_endpoints_num_filters", help="Width of P3–P7 (and of the RetinaNet head)")
    cols[1].number_input("Filter size scale", min_value=LIMITS["filter_size_scale"][0],
                         max_value=LIMITS["filter_size_scale"][1], step=0.05, format="%.2f",
                         key="scale_filter_size_scale")
    cols[2].number_input("Resample alpha", min_value=LIMITS["resample_alpha"][0],
                         max_value=LIMITS["resample_alpha"][1], step=0.25, format="%.2f", key="scale_resample_alpha")
    cols[3].number_input("Block repeats", min_value=1, max_value=LIMITS["max_block_repeats"], step=1,
                         key="scale_block_repeats")
    st.button("Apply scaling", key="apply_scaling", on_click=_apply_scaling,
              help="SpineNet-49: 256, 1.0, 0.5, 1 · 96: 256, 1.0, 0.5, 2 · 143: 256, 1.0, 1.0, 3 · "
                   "190: 512, 1.3, 1.0, 4")
    min_level_editor(spec)
    semantics_editor(spec)


def diff_view(spec: Spec, input_size: InputSize, head: str) -> None:
    base = session.history().base
    diff = edits.diff_specs(base, spec)
    st.markdown(f"##### Changes since the starting spec ({escape_md(base.name)})")
    if diff.empty:
        st.caption("No changes yet.")
        return
    # One readable line per change (block by block, then field by field: no raw mappings, 1.0 and 1 are equal).
    st.markdown("\n".join(f"- {escape_md(line.replace(' -> ', ' → '))}" for line in diff.lines()))
    before, after = counts.analysis_of(base, input_size, head), counts.analysis_of(spec, input_size, head)
    rows = []
    for label, old, new, scale, unit in (
            ("backbone params", before.backbone_params, after.backbone_params, 1e6, "M"),
            ("backbone MACs", before.backbone_macs, after.backbone_macs, 1e9, "B"),
            ("params with head", before.params, after.params, 1e6, "M"),
            ("MACs with head", before.macs, after.macs, 1e9, "B")):
        rows.append({"figure": f"{label} ({unit})", "start": old / scale, "now": new / scale,
                     "change": (new - old) / scale, "relative %": 100 * (new - old) / old if old else None})
    table(pd.DataFrame(rows), "diff_totals", "changes-totals.csv", hide_index=True, width="stretch",
          column_config={"start": st.column_config.NumberColumn(format="%.2f"),
                         "now": st.column_config.NumberColumn(format="%.2f"),
                         "change": st.column_config.NumberColumn(format="%+.2f"),
                         "relative %": st.column_config.NumberColumn(format="%+.1f%%")})


HISTORY_LINES = 40  # entries listed at once, the current one among them


def history_view() -> None:
    history = session.history()
    count = len(history.entries)
    first = max(0, min(count - HISTORY_LINES, history.cursor - HISTORY_LINES // 2))  # only these are formatted
    lines = []
    for index in range(first, min(count, first + HISTORY_LINES)):
        entry = history.entries[index]
        mark = "▶ " if index == history.cursor else ""
        style = "**" if index == history.cursor else ""
        lines.append(f"{index + 1}. {mark}{style}{escape_md(entry.description)}{style}"
                     + (" *(start)*" if entry.kind == "load" else ""))
    st.markdown("\n".join(lines))


def name_editor(spec: Spec) -> None:
    session.sync_widgets("name", {"spec_name": spec.name})
    shown = session.current_name()
    if shown != spec.name:
        st.caption(f"Shown as “{escape_md(shown)}”: the name is still that of the spec these edits started from, so "
                   "the app adds “edited” and the first digits of its content hash. Rename it to give it a name of "
                   "its own.")
    st.text_input("Spec name", key="spec_name", max_chars=LIMITS["max_name_length"])
    st.button("Rename", key="rename", on_click=_apply_name)


def render() -> None:
    spec = session.current()
    input_size, head = sidebar.input_size(), sidebar.head()
    with st.container():  # one element whatever it holds, so the graph below keeps its place and redraws in place
        st.markdown(f"#### Editing {escape_md(session.current_name())}")
        if session.current_name() != spec.name:
            st.caption("Edited from the spec of the same name, so shown with “edited” and its content hash; give it "
                       "a name of its own under **Name** below.")
    session.show_notes(AREA)
    # Each part is guarded on its own: one failing part shows its one-line error and the others keep working.
    if not family_of(spec).has_blocks:
        st.info("ResNet-FPN is scale-decreased by construction: edit its stage depths below, or open a SpineNet to "
                "edit blocks.")
    else:
        guarded("the block editor", block_editor, spec, input_size)
        guarded("the graph", graph_and_totals, spec, input_size, head)
        # Keyed, so that it stays open when a refused Apply puts a message above it (the pending edits stay in view).
        # Drawn only while open: the grid is rebuilt for every revision, which would cost each edit a redraw.
        block_table = st.expander("Block table (edit the whole list)", expanded=False, key="block_table_open",
                                  on_change="rerun")
        if block_table.open:
            with block_table:
                guarded("the block table", table_editor, spec)
                session.show_notes(TABLE_AREA)  # under the Apply button, where the user is looking
    has_blocks = family_of(spec).has_blocks
    with st.expander("Scaling" if has_blocks else "Stages", expanded=not has_blocks):
        guarded("the scaling editor", scaling_editor, spec)
    with st.expander("Name"):
        guarded("the name editor", name_editor, spec)
    guarded("the diff", diff_view, spec, input_size, head)
    with st.expander("Edit history"):
        guarded("the history", history_view)
