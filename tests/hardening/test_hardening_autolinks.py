"""Bare URLs in names: GitHub-flavoured Markdown (Streamlit's renderer, GitHub's) links 'http://...', 'www....'
and e-mail addresses without any link syntax ("autolink literals"). A spec or design name with one, saved by one
session, must render as text everywhere another session shows it (the Undo tooltip, the sidebar, notes) and in
the Markdown report: the source keeps no autolink literal, and un-escaped it is the name itself."""
from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from spinescope.app.markup import escape_md
from spinescope.spinenet.builtins import load_builtin

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
NAMES = ["see http://example.com/x", "HTTPS://Example.com", "www.example.org docs", "mail me: me@example.net",
         "mailto:me@example.net", "xmpp:me@example.net", "ftp://example.com and https://example.com?a=1"]
DESIGN = "design https://example.com/d www.example.org"
SPEC_NAME = "spec http://example.com a@example.net"


def autolink_literals(markdown: str) -> list[str]:
    """The GFM autolink literals in Markdown source (spec, section 6.9 'Autolinks (extension)'): 'www.', 'http://',
    'https://', an e-mail address (local part, '@', a domain with a dot), 'mailto:' and 'xmpp:'. A backslash escape
    anywhere inside one breaks it, so they are matched in the source as written."""
    return re.findall(r"(?i)(?:www\.|https?://|mailto:|xmpp:|[a-z0-9._+-]+@[a-z0-9_-]+\.[a-z0-9_-])", markdown)


def rendered_text(markdown: str) -> str:
    """The characters Markdown source renders to when it holds only text and backslash escapes (CommonMark: a
    backslash before ASCII punctuation stands for that character)."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown)


@pytest.mark.parametrize("name", NAMES)
def test_escaped_names_keep_no_autolink_and_render_the_name(name):
    assert autolink_literals(name)  # the detector finds the raw name's link
    markdown = escape_md(name)
    assert autolink_literals(markdown) == [], markdown
    assert rendered_text(markdown) == name


def test_another_sessions_url_names_render_as_text_in_the_sidebar_and_the_undo_tooltip(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from spinescope.app.workspace import WorkspaceStore
    from app_runs import run

    monkeypatch.setenv("SPINESCOPE_HOME", str(tmp_path))
    # Another session saved a design whose name and spec name hold URLs and an e-mail address.
    WorkspaceStore(tmp_path / "workspace.sqlite").save_design(DESIGN, replace(load_builtin("spinenet-49s"),
                                                                              name=SPEC_NAME))
    app = run(AppTest.from_file(MAIN, default_timeout=60))
    app.selectbox(key="design_choice").set_value(DESIGN)
    app.button(key="open_design").click()
    shown = []
    for _ in range(2):  # the note shows once; then the sidebar's "Recent workspaces" has the new spec name
        run(app)
        shown += [item.value for kind in ("markdown", "caption", "success", "info", "warning", "error")
                  for item in getattr(app, kind)]
        shown += [item.help for item in app.button if item.help]
    with_names = [text for text in shown if "example" in text]
    assert any(text.startswith(r"- [spec http\://") for text in with_names)  # the sidebar's Recent workspaces
    for text in with_names:
        assert autolink_literals(text) == [], text
    undo = app.button(key="undo").help
    assert rendered_text(undo) == f"Undo: open design {DESIGN}"
    assert any(rendered_text(text).startswith(f"**Current:** {SPEC_NAME}") for text in with_names)
    assert any(f"Opened design “{DESIGN}” ({SPEC_NAME})." == rendered_text(text) for text in with_names)


def test_the_markdown_report_keeps_url_names_as_text():
    from spinescope.analysis.counting import analyze
    from spinescope.app.exports import markdown_report

    spec = replace(load_builtin("spinenet-49s"), name=SPEC_NAME)
    base = replace(load_builtin("spinenet-49s"), name="www.example.org base")
    report = markdown_report(spec, analyze(spec, 64), base, analyze(base, 64)).decode()
    title = report.splitlines()[0]
    assert rendered_text(title) == f"# {SPEC_NAME}"
    prose = re.sub(r"(?ms)^```.*?^```$", "", report)  # fenced code (the spec's YAML) is never linked
    assert "name: spec http://example.com" in report and "name: spec" not in prose
    assert autolink_literals(prose) == [], autolink_literals(prose)
