"""fuse-relu6 keeps the meaning of every graph hypothesis can build around its pattern.

Run with ridgeline's pytest plugin (loaded automatically when ridgeline is installed):

    pip install -e ./examples/plugin && pytest examples/plugin/tests
"""

from ridgeline.passes.registry import pass_names
from ridgeline.testing import strategies as rs

if "fuse-relu6" not in pass_names():  # not installed: register the pass from the source tree
    import ridgeline_example_plugin.relu6  # noqa: F401

# min(relu(x), 6) or min(max(x, 0), 6), with x reaching past 6 so the clipping shows
relu6 = rs.pattern(lambda b, x: b.Min(b.Relu(x) if b.flag() else b.Max(x, 0.0), 6.0), within=(-10.0, 10.0))


def test_fuse_relu6(check_pass):
    report = check_pass("fuse-relu6", graphs=relu6)
    assert report.modified > 0  # the rule fired on some graphs, not only "did not apply"
