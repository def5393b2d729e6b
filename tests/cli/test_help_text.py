"""``--help`` reads as plain text on a terminal, and says what the README promises it says."""

from __future__ import annotations

import argparse
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ridgeline.cli import build_parser, plain_text
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
