"""``--help`` reads as plain text on a terminal, and says what the README promises it says."""

from __future__ import annotations

import argparse
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ridgeline.cli import build_parser
from ridgeline.cli.common import plain_text
from ridgeline.models import preset_names

PARSER = build_parser()
COMMANDS = next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_has_no_markup(command):
    text = COMMANDS[command].format_help()
    assert "`" not in text and not re.search(r"\S::(\s|$)", text), text


def test_the_top_level_help_is_plain():
    assert "`" not in PARSER.format_help()


def test_estimate_help_lists_every_preset():
    text = " ".join(COMMANDS["estimate"].format_help().split())
    assert all(name in text for name in preset_names())


words = st.text(st.characters(codec="ascii", exclude_characters="`:"), min_size=1, max_size=12)


@given(words, words, st.sampled_from(["``{}``", "`{}`", ":func:`{}`", ":ref:`{}`"]))
def test_plain_text_keeps_the_words_and_drops_the_markup(a, b, form):
    out = plain_text(f"{a} {form.format(b)} and then::\n")
    assert out == f"{a} {b} and then:\n"


def test_the_passes_table_shows_a_docstring_summary_as_plain_text(run_cli):
    # a plugin's pass summary is its docstring's first line, reST and all (docs/extending.md's example)
    from ridgeline.passes import register_pass, unregister_pass

    @register_pass("md-summary")
    def marked_up(graph, *, divide: bool = True) -> bool:
        """Remove ``x * 1`` (and ``x / 1`` unless ``divide=false``)."""
        return False
    try:
        out = run_cli("passes").stdout
    finally:
        unregister_pass("md-summary")
    # the table may wrap the summary over lines; no built-in pass's summary has a backtick
    assert "md-summary" in out and "Remove" in out and "`" not in out
