"""Convolutions and pooling against onnx.reference on random geometries: 1-3 spatial dims, strides,
dilations, explicit and automatic padding, ceil_mode, count_include_pad, groups, MaxPool indices."""

from __future__ import annotations

import numpy as np
import pytest

from op_harness import check_op

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")


def _geometry(rng, n, allow_ceil, autos=("NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"),
              dilated_auto=False, wide_pads=True):
    kernel = [int(rng.integers(1, 4)) for _ in range(n)]
    strides = [int(rng.integers(1, 3)) for _ in range(n)]
    auto = str(rng.choice(list(autos)))
    if auto.startswith("SAME"):  # onnx.reference cannot pad negatively (a kernel narrower than the stride)
        strides = [min(s, k) for s, k in zip(strides, kernel)]
    # onnx.reference sizes SAME and VALID windows without the dilation (the schema includes it)
    dilate = auto == "NOTSET" or dilated_auto
    dil = [int(rng.integers(1, 3)) for _ in range(n)] if dilate else [1] * n
    attrs = {"kernel_shape": kernel, "strides": strides, "auto_pad": auto}
    if any(d > 1 for d in dil):
        attrs["dilations"] = dil
    if auto == "NOTSET":
        attrs["pads"] = [int(rng.integers(0, k if wide_pads else k // 2 + 1)) for k in kernel] * 2
        if allow_ceil and rng.random() < 0.5:
            attrs["ceil_mode"] = 1
    spatial = [int(rng.integers((k - 1) * d + 1, (k - 1) * d + 6)) for k, d in zip(kernel, dil)]
    return attrs, spatial


@pytest.mark.parametrize("seed", range(30))
def test_conv_random_geometry(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    attrs, spatial = _geometry(rng, n, allow_ceil=False)
    g = int(rng.choice([1, 2]))
    c, m = 2 * g, 2 * g
    x = rng.standard_normal([2, c] + spatial).astype(np.float32)
    w = rng.standard_normal([m, c // g] + attrs["kernel_shape"]).astype(np.float32)
    attrs["group"] = g
    if rng.random() < 0.5:
        del attrs["kernel_shape"]  # taken from W
    b = rng.standard_normal(m).astype(np.float32) if rng.random() < 0.5 else None
    # a symbolic spatial dim too (audio models export a dynamic length): SAME pads are then split
    # at run time, and inference must not compute them from the name
    check_op("Conv", [x, w, b] if b is not None else [x, w], attrs, rtol=1e-4, atol=1e-4,
             symbolic={0: {0: "batch", 2: "t"} if seed % 2 else {0: "batch"}})


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("op", ["AveragePool", "MaxPool", "LpPool"])
def test_pool_random_geometry(seed, op):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 4))
    # onnx.reference's MaxPool mishandles automatic padding (SAME_LOWER is sized floor(D / s),
    # SAME_UPPER fails to broadcast), pads wider than half the kernel, and its indices omit the
    # (N, C) offset or shift by the padding, and its unit-stride path mis-sizes or crashes on padding:
    # those cases are checked by definition below
    is_max = op == "MaxPool"
    autos = ("NOTSET", "NOTSET", "VALID") if is_max else ("NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
    attrs, spatial = _geometry(rng, n, allow_ceil=op == "AveragePool", autos=autos, wide_pads=not is_max)
    if is_max and min(attrs["strides"]) == 1:  # its unit-stride path fails on any padding
        attrs.pop("pads", None)
    if op == "AveragePool":
        attrs["count_include_pad"] = int(rng.integers(0, 2))
    if op == "LpPool":
        attrs["p"] = int(rng.choice([1, 2, 3]))
        attrs.pop("dilations", None)
    x = rng.standard_normal([2, 3] + spatial).astype(np.float32)
    check_op(op, [x], attrs, rtol=1e-5, atol=1e-5)


def _pool_by_definition(x, attrs, op):
    """Pooling written out per output position from the schema's formulas (module docstring of
    ridgeline.ir.ops.conv): input positions count, explicit pads count only for averages with
    count_include_pad, positions only ceil_mode reaches never count."""
    import itertools
    import math
    n = x.ndim - 2
    k, s = attrs["kernel_shape"], attrs.get("strides", [1] * n)
    d, auto = attrs.get("dilations", [1] * n), attrs.get("auto_pad", "NOTSET")
    pads = attrs.get("pads", [0] * 2 * n)
    geo = []
    for i in range(n):
        size, w = x.shape[2 + i], (k[i] - 1) * d[i] + 1
        if auto.startswith("SAME"):
            out = math.ceil(size / s[i])
            total = max(0, (out - 1) * s[i] + w - size)
            b = total // 2 if auto == "SAME_UPPER" else total - total // 2
            e = total - b
        elif auto == "VALID":
            b = e = 0
            out = (size - w) // s[i] + 1
        else:
            b, e = pads[i], pads[n + i]
            if attrs.get("ceil_mode"):
                out = math.ceil((size + b + e - w) / s[i]) + 1
                out -= (out - 1) * s[i] >= size + b
            else:
                out = (size + b + e - w) // s[i] + 1
        geo.append((out, b, e))
    y = np.zeros(x.shape[:2] + tuple(o for o, _, _ in geo))
    for pos in itertools.product(*[range(o) for o, _, _ in geo]):
        vals, count = [], 0
        for off in itertools.product(*[range(kk) for kk in k]):
            p = [pos[i] * s[i] - geo[i][1] + off[i] * d[i] for i in range(n)]
            if all(0 <= p[i] < x.shape[2 + i] for i in range(n)):
                vals.append(x[(slice(None), slice(None)) + tuple(p)])
                count += 1
            elif all(-geo[i][1] <= p[i] < x.shape[2 + i] + geo[i][2] for i in range(n)):
                count += bool(attrs.get("count_include_pad"))
        v = np.stack(vals).astype(np.float64)
        if op == "MaxPool":
            y[(slice(None), slice(None)) + pos] = v.max(0)
        elif op == "AveragePool":
            y[(slice(None), slice(None)) + pos] = v.sum(0) / count
        else:
            y[(slice(None), slice(None)) + pos] = (np.abs(v) ** attrs.get("p", 2)).sum(0) ** (1 / attrs.get("p", 2))
    return y.astype(x.dtype)


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("op", ["AveragePool", "MaxPool", "LpPool"])
def test_pool_by_definition_with_automatic_padding_and_dilation(seed, op):
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 4))
    attrs, spatial = _geometry(rng, n, allow_ceil=op != "LpPool", dilated_auto=True)
    if op == "AveragePool":
        attrs["count_include_pad"] = int(rng.integers(0, 2))
    if op == "LpPool":
        attrs["p"] = int(rng.choice([1, 2, 3]))
    x = rng.standard_normal([2, 3] + spatial).astype(np.float32)
    g = load_onnx(one_node_model(op, [x], attrs))
    got = StrictInterpreter(g).run({"in0": x})["out0"]
    want = _pool_by_definition(x, attrs, op)
    assert g.outputs[0].type.shape == want.shape == got.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(30))
def test_max_pool_indices_point_at_the_maxima(seed):
    """Y equals X at Indices (row-major), for every geometry including SAME_LOWER and ceil_mode."""
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 4))
    attrs, spatial = _geometry(rng, n, allow_ceil=True)
    x = rng.standard_normal([2, 3] + spatial).astype(np.float32)
    got = StrictInterpreter(load_onnx(one_node_model("MaxPool", [x], attrs, outputs=2))).run({"in0": x})
    y, idx = got["out0"], got["out1"]
    assert idx.min() >= 0 and idx.max() < x.size
    np.testing.assert_array_equal(x.reshape(-1)[idx], y)
    # column-major over the spatial dims: the same positions, numbered the other way round
    attrs["storage_order"] = 1
    got = StrictInterpreter(load_onnx(one_node_model("MaxPool", [x], attrs, outputs=2))).run({"in0": x})
    xt = x.transpose((0, 1) + tuple(range(x.ndim - 1, 1, -1)))  # spatial dims reversed
    np.testing.assert_array_equal(xt.reshape(-1)[got["out1"]], y)


def test_conv_integer_zero_points():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 255, size=(1, 2, 5, 5)).astype(np.uint8)
    w = rng.integers(0, 255, size=(3, 2, 2, 2)).astype(np.uint8)
    check_op("ConvInteger", [x, w, np.array(7, np.uint8), np.array(3, np.uint8)], {"pads": [1, 1, 1, 1]})
    check_op("ConvInteger", [x, w])


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools(op):
    x = np.random.default_rng(2).standard_normal((2, 3, 4, 5)).astype(np.float32)
    check_op(op, [x], rtol=1e-5, symbolic={0: {2: "h"}})


def test_global_lp_pool_by_definition():
    """onnx.reference has no GlobalLpPool: compare with the p-norm over the spatial dims."""
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5)).astype(np.float32)
    got = StrictInterpreter(load_onnx(one_node_model("GlobalLpPool", [x], {"p": 3}))).run({"in0": x})["out0"]
    want = (np.abs(x.astype(np.float64)) ** 3).sum(axis=(2, 3), keepdims=True) ** (1 / 3)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def _conv_transpose_case(seed, reference_safe):
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(1, 3))
    kernel = [int(rng.integers(1, 4)) for _ in range(n)]
    strides = [int(rng.integers(1, 3)) for _ in range(n)]
    dil = [int(rng.integers(1, 3)) for _ in range(n)]
    # onnx.reference handles neither groups nor output_shape (it fails to reshape), and sizes SAME
    # without dilation: those are checked by definition
    g = 1 if reference_safe else int(rng.choice([1, 2]))
    spatial = [int(rng.integers(1, 5)) for _ in range(n)]
    attrs = {"strides": strides, "dilations": dil, "group": g}
    mode = rng.choice(["pads", "same"] if reference_safe else ["pads", "output_shape", "same"])
    if mode == "pads":
        full = [s * (d - 1) + (k - 1) * dl + 1 for s, d, k, dl in zip(strides, spatial, kernel, dil)]
        attrs["pads"] = [int(rng.integers(0, min(k, (f + 1) // 2))) for k, f in zip(kernel, full)] * 2
        attrs["output_padding"] = [int(rng.integers(0, s)) for s in strides]
    elif mode == "output_shape":
        full = [s * (d - 1) + (k - 1) * dl + 1 for s, d, k, dl in zip(strides, spatial, kernel, dil)]
        attrs["output_shape"] = [f + int(rng.integers(-1, 2)) for f in full]
    else:
        attrs["auto_pad"] = str(rng.choice(["SAME_UPPER", "SAME_LOWER"]))
        if reference_safe:
            attrs["dilations"] = [1] * n
            strides[:] = [min(s, k) for s, k in zip(strides, kernel)]
    x = rng.standard_normal([2, 2 * g] + spatial).astype(np.float32)
    w = rng.standard_normal([2 * g, 3] + kernel).astype(np.float32)
    b = rng.standard_normal(3 * g).astype(np.float32)
    return [x, w, b], attrs


@pytest.mark.parametrize("seed", range(20))
def test_conv_transpose_random_geometry(seed):
    inputs, attrs = _conv_transpose_case(seed, reference_safe=True)
    check_op("ConvTranspose", inputs, attrs, rtol=1e-4, atol=1e-4)


def _conv_transpose_by_definition(x, w, b, attrs):
    """y[n, m, o] = B[m] + Σ x[n, c, p] · w[c, m', j] over p·s + j·d - begin = o, per group."""
    import itertools
    n = x.ndim - 2
    s, d, g = attrs["strides"], attrs["dilations"], attrs["group"]
    k = w.shape[2:]
    full = [s[i] * (x.shape[2 + i] - 1) + (k[i] - 1) * d[i] + 1 for i in range(n)]
    if "output_shape" in attrs or attrs.get("auto_pad", "NOTSET").startswith("SAME"):
        out = attrs.get("output_shape") or [x.shape[2 + i] * s[i] for i in range(n)]
        total = [full[i] - out[i] for i in range(n)]
        begin = [t // 2 if attrs.get("auto_pad") == "SAME_UPPER" else t - t // 2 for t in total]
    else:
        pads, op = attrs["pads"], attrs["output_padding"]
        begin = pads[:n]
        out = [full[i] + op[i] - pads[i] - pads[n + i] for i in range(n)]
    cg, mg = x.shape[1] // g, w.shape[1]
    y = np.zeros((x.shape[0], mg * g) + tuple(out))
    y += b.astype(np.float64).reshape((-1,) + (1,) * n)
    for p in itertools.product(*[range(v) for v in x.shape[2:]]):
        for j in itertools.product(*[range(v) for v in k]):
            o = tuple(p[i] * s[i] + j[i] * d[i] - begin[i] for i in range(n))
            if not all(0 <= o[i] < out[i] for i in range(n)):
                continue
            for grp in range(g):
                xc = x[(slice(None), slice(grp * cg, (grp + 1) * cg)) + p].astype(np.float64)  # (N, cg)
                wc = w[(slice(grp * cg, (grp + 1) * cg), slice(None)) + j].astype(np.float64)  # (cg, mg)
                y[(slice(None), slice(grp * mg, (grp + 1) * mg)) + o] += xc @ wc
    return y.astype(x.dtype)


@pytest.mark.parametrize("seed", range(30))
def test_conv_transpose_by_definition(seed):
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.testing.onnx_backend import StrictInterpreter
    (x, w, b), attrs = _conv_transpose_case(seed, reference_safe=False)
    g = load_onnx(one_node_model("ConvTranspose", [x, w, b], attrs))
    got = StrictInterpreter(g).run({"in0": x, "in1": w, "in2": b})["out0"]
    want = _conv_transpose_by_definition(x, w, b, attrs)
    assert g.outputs[0].type.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_transpose_pads_that_crop_everything_are_named():
    from op_harness import one_node_model
    from ridgeline.frontends.onnx import load_onnx
    from ridgeline.ir.errors import ModelError
    x, w = np.zeros((1, 2, 3, 1), np.float32), np.zeros((2, 3, 2, 3), np.float32)
    with pytest.raises(ModelError, match="spatial dim 1 of the output would have size -1"):
        load_onnx(one_node_model("ConvTranspose", [x, w], {"strides": [2, 2], "pads": [1, 2, 1, 2]}))
