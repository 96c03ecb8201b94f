"""Checking the fast counter's figures against fvcore tracing a real model, in the background, on request.

fvcore needs a real forward pass (seconds to minutes, real memory), so it never runs unasked and never blocks the
page: it waits its turn in the server's background pool (`app.background`, fair across sessions), which says where
it stands in the queue; the result is kept per (spec, input size, head) for every session, since it depends on
nothing else.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import streamlit as st

from spinescope.analysis.counting import analyze
from spinescope.analysis.limits import ResourceLimitError, check_fvcore_request
from spinescope.app import background, counts
from spinescope.spinenet.spec import Spec
from spinescope.spinenet.input_size import InputSize


RUNNING = "fvcore is tracing a real model…"


@dataclass
class Verification:
    """State of one verification: 'running', 'verified', 'differs' or 'failed', with a one-line message."""

    state: str
    message: str
    started: float
    future: background.Ticket | None = None


@st.cache_resource(show_spinner=False)
def _registry() -> tuple[None, dict, threading.Lock]:
    return None, {}, threading.Lock()


def _key(spec: Spec, input_size: InputSize, head: str) -> str:
    return f"{counts.spec_key(spec)}|{input_size}|{head}"


def _verify(spec: Spec, input_size: InputSize, head: str) -> tuple[str, str]:
    result = analyze(spec, input_size, head, verify=True)
    if result.verified:
        return "verified", "verified by fvcore: every block's params and MACs are identical"
    first = result.differences[0] if result.differences else "unknown difference"
    return "differs", f"fvcore differs ({len(result.differences)} difference(s)), e.g. {first}"


def start(spec: Spec, input_size: InputSize, head: str) -> None:
    """Starts verifying (unless it already ran or runs); a refusal is recorded as 'failed'."""
    _, results, lock = _registry()
    key = _key(spec, input_size, head)
    owner = st.session_state.get("browser_id") or "anonymous"
    with lock:
        if key in results and results[key].state != "failed":
            return
        try:
            check_fvcore_request(spec, input_size, head, counts.analysis_of(spec, input_size, head).macs)
            ticket = background.submit(owner, "fvcore verification", lambda: _verify(spec, input_size, head))
        except (ResourceLimitError, background.BackgroundError) as refusal:
            results[key] = Verification("failed", f"not verified: {refusal}", time.time())
            return
        results[key] = Verification("running", RUNNING, time.time(), ticket)


def status(spec: Spec, input_size: InputSize, head: str) -> Verification | None:
    """Returns the verification of these figures, finishing it if its thread is done; None if never asked."""
    _, results, lock = _registry()
    key = _key(spec, input_size, head)
    with lock:
        entry = results.get(key)
        if entry is None or entry.state != "running":
            return entry
        if not entry.future.done():
            queued = entry.future.queue_text()
            return replace(entry, message=f"{queued}: fvcore verifications wait for the server's background pool"
                                          if queued else RUNNING)
        try:
            state, message = entry.future.result()
        except Exception as error:  # noqa: BLE001 - one line for the user
            state, message = "failed", f"verification failed: {str(error).splitlines()[0] if str(error) else error}"
        results[key] = Verification(state, message, entry.started)
        return results[key]
