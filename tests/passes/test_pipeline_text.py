"""Pipeline text: parsing, printing back, named pipelines, and one clear error per mistake."""

from __future__ import annotations

from typing import Literal

import pytest

from ridgeline.ir.errors import PipelineError
from ridgeline.passes import get_pipeline, parse_pipeline, register_pass, unregister_pass
from ridgeline.passes.transforms.fuse_elementwise import FuseElementwise


@pytest.mark.parametrize("text", [
    "canonicalize,fuse-attention,fuse-elementwise{max-nodes=8},dce",
    "fold-constants{size-limit=100},cse{max-constant-elements=16}",
    "fuse-matmul-epilogue{max-ops=2}",
    "",
])
def test_prints_back_to_the_same_text(text):
    pipe = parse_pipeline(text)
    assert str(pipe) == text
    assert str(parse_pipeline(str(pipe))) == text


def test_whitespace_underscores_and_explicit_defaults():
    pipe = parse_pipeline("  canonicalize , fuse-elementwise { max_nodes = 16 } ")
    assert str(pipe) == "canonicalize,fuse-elementwise{max-nodes=16}"
    (p,) = [inv.instantiate() for inv in pipe if inv.name == "fuse-elementwise"]
    assert isinstance(p, FuseElementwise) and p.max_nodes == 16


def test_pass_instances_print_their_non_default_options():
    assert str(FuseElementwise(max_nodes=4)) == "fuse-elementwise{max-nodes=4}"
    assert str(FuseElementwise()) == "fuse-elementwise"
    assert str(parse_pipeline([FuseElementwise(max_nodes=4), "dce"])) == "fuse-elementwise{max-nodes=4},dce"


def test_default_expands_to_the_recommended_order():
    text = str(parse_pipeline("default"))
    assert text == get_pipeline("default")
    order = text.split(",")
    assert order.index("fuse-attention") < order.index("fuse-gelu") < order.index("fuse-matmul-epilogue") \
        < order.index("fuse-elementwise")
    assert order[0] == "fold-constants" and order[-1] == "dce"
    assert str(parse_pipeline("cleanup,fuse-gelu")).startswith(get_pipeline("cleanup"))


@pytest.mark.parametrize("text,fragments", [
    ("canonicalise", ["unknown pass 'canonicalise'", "did you mean 'canonicalize'", "known passes:", "dce"]),
    ("fuse-elementwise{max-nodes=lots}", ["fuse-elementwise", "max-nodes", "expects an integer", "'lots'"]),
    ("fuse-elementwise{max-node=4}", ["has no option 'max-node'", "max-nodes: int = 16"]),
    ("fuse-elementwise{max-nodes=4,max-nodes=5}", ["given twice"]),
    ("fuse-elementwise{max-nodes=4", ["column", "expected ',' or '}'"]),
    ("canonicalize,,dce", ["column 14", "expected a pass name"]),
    ("canonicalize dce", ["column 14", "expected ',' between passes"]),
    ('cse{max-constant-elements="3}', ["unterminated string"]),
    ("default{x=1}", ["pipeline 'default' takes no options"]),
    ("dce{=1}", ["expected an option name"]),
])
def test_errors_name_the_problem(text, fragments):
    with pytest.raises(PipelineError) as e:
        parse_pipeline(text)
    msg = str(e.value)
    assert "\n" not in msg
    for f in fragments:
        assert f in msg, (f, msg)


def test_bool_and_choice_options():
    @register_pass("test-options")
    def options_pass(graph, *, flag: bool = False, mode: Literal["fast", "exact"] = "exact", ratio: float = 0.5):
        """A pass with every option kind."""
        return False
    try:
        inv = parse_pipeline("test-options{flag=yes,mode=fast,ratio=0.25}").passes[0]
        assert dict(inv.options) == {"flag": True, "mode": "fast", "ratio": 0.25}
        assert str(inv) == "test-options{flag=true,mode=fast,ratio=0.25}"
        with pytest.raises(PipelineError, match="expects one of fast, exact"):
            parse_pipeline("test-options{mode=slow}")
        with pytest.raises(PipelineError, match="expects true or false"):
            parse_pipeline("test-options{flag=maybe}")
        with pytest.raises(PipelineError, match="expects a number"):
            parse_pipeline("test-options{ratio=half}")
    finally:
        unregister_pass("test-options")
