"""Latency: measure the real model with progress and cancel; results and history."""
from __future__ import annotations

import streamlit as st


def render() -> None:
    st.info("Latency measurement is not available in this build.")
