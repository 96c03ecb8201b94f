"""Which block is selected: one value shared by the graph click, the Explore selectbox and the Edit tab."""
from __future__ import annotations

import streamlit as st

from spinescope.app import session
from spinescope.spinenet.layout import resolve
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.input_size import InputSize

STATE_KEY = "selection"


def node_ids(spec: Spec, input_size: InputSize) -> list[str]:
    """Returns the graph's node ids in build order."""
    return [node.id for node in resolve(spec, input_size).nodes]


def selected(spec: Spec, input_size: InputSize) -> str:
    """Returns the selected node id, falling back to the first editable block when the selection is gone."""
    ids = node_ids(spec, input_size)
    chosen = session.selected_block()  # this session's, else the workspace's (a refresh keeps the selection)
    if chosen not in ids:
        chosen = spec.blocks[0].id if spec.blocks else ids[0]
    st.session_state[STATE_KEY] = chosen
    return chosen


def select(block_id: str) -> None:
    session.select_block(block_id)


@session.callback("global")
def _box_changed(key: str) -> None:
    select(st.session_state[key])


def selector(spec: Spec, input_size: InputSize, key: str, label: str = "Selected block", options=None) -> str:
    """Shows a selectbox bound to the shared selection (for keyboard users); returns the selected id."""
    chosen = selected(spec, input_size)
    options = list(options) if options is not None else node_ids(spec, input_size)
    if chosen not in options:
        chosen = options[0]
        select(chosen)
    st.session_state[key] = chosen
    st.selectbox(label, options, key=key, on_change=_box_changed, args=(key,),
                 help="Same as clicking the block in the graph")
    return chosen


@session.callback("global")
def graph_clicked(block_id: str) -> None:
    """Called when a node of a graph is clicked (app.graph_view): that block becomes the selection."""
    select(block_id)
