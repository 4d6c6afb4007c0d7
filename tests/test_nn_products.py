"""minideconv.nn's products and normalisations — Mul, ChannelAffine, ChannelLayerNorm,
GroupNorm: the forward pass against torch, the backward pass against torch's
vector-Jacobian product (autograd) in float64 under every rule (these layers have no
rectifier: the three rules pass the same Jacobian), the weight gradients, the sparse
matrix blocks (``matrices.product_blocks``) against the backward pass and against finite
differences, in a Graph (signals adding at fan-out), save/load, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from minideconv import matrices, nn

RULES = ("backprop", "deconvnet", "guided")
TOLERANCE = 1e-10


def rel(ours, reference):
    scale = float(np.max(np.abs(reference)))
    return float(np.max(np.abs(np.asarray(ours) - reference))) / (scale if scale else 1.0)


@pytest.fixture
def rng():
    return np.random.default_rng(27)


def cases(rng):
    """(name, layer, inputs, the same as a function of torch and the inputs)."""
    x = rng.standard_normal((2, 6, 4, 5))
    other = rng.standard_normal((2, 6, 4, 5))
    gate = rng.standard_normal((2, 6, 1, 1))
    gamma, beta = rng.standard_normal(6), rng.standard_normal(6)
    scale = rng.standard_normal(6)
    return [
        ("mul", nn.Mul(), (x, other), lambda t, a, b: a * b),
        ("mul-gate-second", nn.Mul(), (x, gate), lambda t, a, b: a * b),
        ("mul-gate-first", nn.Mul(), (gate, x), lambda t, a, b: a * b),
        ("affine", nn.ChannelAffine(scale, beta),
         (x,), lambda t, a: a * t.from_numpy(scale)[:, None, None] + t.from_numpy(beta)[:, None, None]),
        ("affine-scalar", nn.ChannelAffine(np.array([0.5])), (x,), lambda t, a: a * 0.5),
        ("affine-2d", nn.ChannelAffine(scale), (x[:, :, 0, 0],), lambda t, a: a * t.from_numpy(scale)),
        ("layer-norm", nn.ChannelLayerNorm(gamma, beta, eps=1e-6), (x,),
         lambda t, a: t.nn.functional.layer_norm(a.permute(0, 2, 3, 1), (6,), t.from_numpy(gamma),
                                                 t.from_numpy(beta), 1e-6).permute(0, 3, 1, 2)),
        ("layer-norm-plain", nn.ChannelLayerNorm(), (x,),
         lambda t, a: t.nn.functional.layer_norm(a.permute(0, 2, 3, 1), (6,))
         .permute(0, 3, 1, 2)),
        ("group-norm", nn.GroupNorm(3, gamma, beta, eps=1e-4), (x,),
         lambda t, a: t.nn.functional.group_norm(a, 3, t.from_numpy(gamma), t.from_numpy(beta), 1e-4)),
        ("group-norm-one", nn.GroupNorm(1), (x,),
         lambda t, a: t.nn.functional.group_norm(a, 1)),
        ("instance-norm", nn.GroupNorm(6, gamma, None), (x,),
         lambda t, a: t.nn.functional.group_norm(a, 6, t.from_numpy(gamma))),
    ]


CASE_NAMES = [c[0] for c in cases(np.random.default_rng(0))]


def get_case(rng, name):
    return next(c for c in cases(rng) if c[0] == name)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_forward_and_backward_equal_torch_autograd(rng, name):
    torch = pytest.importorskip("torch")
    _, layer, inputs, function = get_case(rng, name)
    y, record = layer.forward(*inputs)
    tensors = [torch.from_numpy(a).requires_grad_(True) for a in inputs]
    expected = function(torch, *tensors)
    assert rel(y, expected.detach().numpy()) <= TOLERANCE
    grad = rng.standard_normal(y.shape)
    vjp = torch.autograd.grad(expected, tensors, grad_outputs=torch.from_numpy(grad))
    for rule in RULES:                    # no rectifier: every rule is the Jacobian
        passed = layer.backward(grad, record, rule=rule)
        passed = passed if isinstance(passed, tuple) else (passed,)
        assert len(passed) == len(inputs)
        for ours, theirs in zip(passed, vjp):
            assert ours.shape == theirs.shape
            assert rel(ours, theirs.numpy()) <= TOLERANCE, rule


@pytest.mark.parametrize("name", [n for n in CASE_NAMES if n != "mul" and
                                  not n.startswith("mul-")])
def test_weight_gradients_equal_torch(rng, name):
    torch = pytest.importorskip("torch")
    _, layer, inputs, _ = get_case(rng, name)
    y, record = layer.forward(*inputs)
    grad = rng.standard_normal(y.shape)
    params = {k: torch.from_numpy(v.copy()).requires_grad_(True)
              for k, v in layer.params().items()}
    rebuilt = {k: v.detach().numpy() for k, v in params.items()}
    x = torch.from_numpy(inputs[0])
    if isinstance(layer, nn.ChannelAffine):
        shape = (-1,) + (1,) * (x.ndim - 2)
        out = x * params["scale"].reshape(shape)
        if "shift" in params:
            out = out + params["shift"].reshape(shape)
    elif isinstance(layer, nn.GroupNorm):
        out = torch.nn.functional.group_norm(x, layer.num_groups, params.get("weight"),
                                             params.get("bias"), layer.eps)
    else:
        out = torch.nn.functional.layer_norm(
            x.permute(0, 2, 3, 1), (x.shape[1],), params.get("weight"), params.get("bias"),
            layer.eps).permute(0, 3, 1, 2)
    assert rel(out.detach().numpy(), y) <= TOLERANCE and rebuilt.keys() == params.keys()
    if not params:
        assert layer.param_grads(grad, record) == {}
        return
    expected = torch.autograd.grad(out, list(params.values()), torch.from_numpy(grad))
    ours = layer.param_grads(grad, record)
    assert sorted(ours) == sorted(params)
    for key, theirs in zip(params, expected):
        assert rel(ours[key], theirs.numpy()) <= TOLERANCE, key


@pytest.mark.parametrize("name", [n for n in CASE_NAMES if n != "affine-2d"])
def test_matrix_blocks_are_the_backward_pass_and_the_derivative(rng, name):
    """Each block F_k (built from the record, not from backward): F_kᵀ g = backward's
    signal for input k, and F_k is the derivative: (f(x + h e) − f(x − h e)) / 2h."""
    _, layer, inputs, _ = get_case(rng, name)
    one = tuple(a[:1] for a in inputs)
    y, record = layer.forward(*one)
    blocks = matrices.product_blocks(layer, record, [a.shape[1:] for a in one], y.dtype)
    assert len(blocks) == len(one)
    grad = rng.standard_normal(y.shape)
    passed = layer.backward(grad, record)
    passed = passed if isinstance(passed, tuple) else (passed,)
    step = 1e-6
    for k, (block, signal) in enumerate(zip(blocks, passed)):
        assert block.shape == (y.size, one[k].size)
        assert rel(block.T @ grad.ravel(), signal.ravel()) <= TOLERANCE
        direction = rng.standard_normal(one[k].shape)

        def at(t):
            moved = list(one)
            moved[k] = one[k] + t * direction
            return layer.forward(*moved)[0]
        difference = (at(step) - at(-step)).ravel() / (2 * step)
        assert rel(block @ direction.ravel(), difference) <= 1e-6


def test_mul_reads_two_layers_and_signals_add_at_the_fan_out(rng):
    """Squeeze-and-excitation, x ⊙ gate(x): x fans out to the gate and to the product, so
    its signal is the sum of both ways back — equal to the network's sparse matrix."""
    w1 = rng.standard_normal((3, 4, 1, 1))
    w2 = rng.standard_normal((4, 3, 1, 1))
    net = nn.Graph([("conv", nn.Conv2d(rng.standard_normal((4, 2, 3, 3)), padding=1), "input"),
                    ("pool", nn.AdaptiveAvgPool2d(1), ("conv",)),
                    ("fc1", nn.Conv2d(w1), ("pool",)),
                    ("relu", nn.ReLU(), ("fc1",)),
                    ("fc2", nn.Conv2d(w2), ("relu",)),
                    ("scale", nn.Mul(), ("conv", "fc2")),
                    ("norm", nn.GroupNorm(2, rng.standard_normal(4)), ("scale",)),
                    ("affine", nn.ChannelAffine(rng.standard_normal(4)), ("norm",))],
                   input_shape=(2, 5, 5))
    image = rng.standard_normal((2, 5, 5))
    trace = net.trace(image[None])
    top = rng.standard_normal(trace.outputs[-1].shape)
    for rule in RULES:
        ours = net.backward(top, trace, rule=rule)[0]
        matrix = matrices.network_backward_map(net, image, -1, top, rule=rule)
        assert rel(ours, matrix.projection) <= TOLERANCE, rule
    forward = matrices.network_forward_map(net, image, "scale")
    scaled = trace.outputs[5][0]
    # the product is bilinear, not linear: its map around the pass holds both factors,
    # so M x = 2 (a ⊙ b) for a, b both linear in x (Euler's theorem for degree 2)
    assert rel(forward @ image.ravel(), 2 * scaled.ravel()) <= TOLERANCE


def test_rows_of_a_trace_are_the_trace_of_those_rows(rng):
    """Figure 2 passes several seeds of one image down together: the records' rows
    (both factors of a product, x̂ and 1/σ of a norm) must be those images'."""
    net = nn.Graph([("norm", nn.GroupNorm(2, rng.standard_normal(4)), "input"),
                    ("layer", nn.ChannelLayerNorm(), ("norm",)),
                    ("gate", nn.AdaptiveAvgPool2d(1), ("layer",)),
                    ("mul", nn.Mul(), ("layer", "gate")),
                    ("affine", nn.ChannelAffine(rng.standard_normal(4)), ("mul",))])
    x = rng.standard_normal((3, 4, 5, 5))
    rows = [2, 0, 2]
    top = rng.standard_normal((3, 4, 5, 5))
    for rule in RULES:
        ours = net.backward(top, net.rows_of_trace(net.trace(x), rows), rule=rule)
        assert np.array_equal(ours, net.backward(top, net.trace(x[rows]), rule=rule))


def test_receptive_fields(rng):
    """ChannelLayerNorm and ChannelAffine keep a unit's window (they mix channels at one
    position at most); GroupNorm's statistics reach every position: the whole image."""
    conv = nn.Conv2d(rng.standard_normal((4, 2, 3, 3)))
    for layer, whole in ((nn.ChannelLayerNorm(), False), (nn.ChannelAffine(np.ones(4)), False),
                         (nn.GroupNorm(2), True)):
        net = nn.Sequential(conv, layer, input_shape=(2, 9, 9))
        field = net.receptive_field(1)
        assert (field is None) == whole
        if not whole:
            assert field == net.receptive_field(0)


def test_save_load_round_trip(tmp_path, rng):
    net = nn.Graph([("affine", nn.ChannelAffine(rng.standard_normal(3),
                                                rng.standard_normal(3)), "input"),
                    ("norm", nn.ChannelLayerNorm(rng.standard_normal(3), None, 1e-6),
                     ("affine",)),
                    ("group", nn.GroupNorm(3, None, rng.standard_normal(3)), ("norm",)),
                    ("mul", nn.Mul(), ("group", "affine"))], input_shape=(3, 4, 4))
    path = tmp_path / "net.npz"
    net.save(path)
    loaded = nn.load(path)
    x = rng.standard_normal((2, 3, 4, 4))
    assert np.array_equal(loaded(x), net(x))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in net.layers]
    assert loaded.layers[2].num_groups == 3 and loaded.layers[1].eps == 1e-6
    as32 = net.astype(np.float32)
    assert as32(x.astype(np.float32)).dtype == np.float32
    for name in ("ChannelAffine", "ChannelLayerNorm", "GroupNorm"):
        assert name in nn.LAYER_TYPES


@pytest.mark.parametrize("build, match", [
    (lambda: nn.ChannelAffine(np.ones((2, 2))), "scale must be 1-D"),
    (lambda: nn.ChannelAffine(np.ones(3), np.ones(2)), "scale has 3 values and shift 2"),
    (lambda: nn.ChannelAffine(np.ones(3, np.float32), np.ones(3)), "shift must have the same dtype"),
    (lambda: nn.ChannelAffine(np.ones(0)), "one value per channel"),
    (lambda: nn.ChannelLayerNorm(np.ones(3), np.ones(4)), "bias has 4 values"),
    (lambda: nn.ChannelLayerNorm(eps=0), "eps"),
    (lambda: nn.GroupNorm(4, np.ones(6)), "num_groups=4 must divide the 6 channels"),
    (lambda: nn.GroupNorm(0), "num_groups"),
    (lambda: nn.GroupNorm(2.0), "num_groups must be an int"),
])
def test_constructor_errors_name_the_parameter(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_forward_errors_say_what_is_expected(rng):
    x = rng.standard_normal((2, 6, 4, 5))
    with pytest.raises(ValueError, match="a gate"):
        nn.Mul()(x, rng.standard_normal((2, 6, 4, 1)))
    with pytest.raises(TypeError, match="dtype"):
        nn.Mul()(x, x.astype(np.float32))
    with pytest.raises(ValueError, match="a gate"):
        nn.Mul().output_shape((6, 4, 5), (3, 1, 1))
    assert nn.Mul().output_shape((6, 1, 1), (6, 4, 5)) == (6, 4, 5)
    with pytest.raises(ValueError, match="C = 3"):
        nn.ChannelAffine(np.ones(3))(x)
    with pytest.raises(ValueError, match="must have 5 channels"):
        nn.ChannelLayerNorm(np.ones(5))(x)
    with pytest.raises(ValueError, match="4-D"):
        nn.ChannelLayerNorm()(x[:, :, 0])
    with pytest.raises(ValueError, match="does not divide"):
        nn.GroupNorm(4)(x)
    with pytest.raises(ValueError, match="does not divide"):
        nn.GroupNorm(4).output_shape((6, 4, 5))
    with pytest.raises(TypeError, match="dtype"):
        nn.GroupNorm(2, np.ones(6))(x.astype(np.float32))


# --------------------------------------------------------------------------- drawn shapes

@st.composite
def norm_cases(draw):
    """(layer kind, N, C, H, W, groups, gate first, affine, dtype, seed)."""
    groups = draw(st.integers(1, 4))
    channels = groups * draw(st.integers(1, 3))
    return (draw(st.sampled_from(["mul", "gate", "affine", "layer", "group"])),
            draw(st.integers(1, 2)), channels, draw(st.integers(1, 6)),
            draw(st.integers(1, 6)), groups, draw(st.booleans()), draw(st.booleans()),
            draw(st.sampled_from([np.float32, np.float64])), draw(st.integers(0, 2**16)))


@given(norm_cases())
def test_drawn_shapes_equal_torch_forward_and_vjp(case):
    """Any batch, channel count, group count and (H, W) — 1×1 included, where a layer norm
    over one channel is 0 — in both dtypes."""
    torch = pytest.importorskip("torch")
    kind, n, c, h, w, groups, gate_first, affine, dtype, seed = case
    assume(kind != "group" or c // groups * h * w > 1)    # torch refuses a group of one
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    gamma, beta = (rng.standard_normal(c).astype(dtype) if affine else None for _ in "γβ")
    T = torch.from_numpy
    if kind in ("mul", "gate"):
        other = rng.standard_normal((n, c) + ((h, w) if kind == "mul" else (1, 1)))
        inputs = (other.astype(dtype), x) if gate_first else (x, other.astype(dtype))
        layer, function = nn.Mul(), (lambda a, b: a * b)
    elif kind == "affine":
        scale = rng.standard_normal(c if affine else 1).astype(dtype)
        inputs, layer = (x,), nn.ChannelAffine(scale, gamma)
        function = (lambda a: a * T(scale)[:, None, None] +
                    (0 if gamma is None else T(gamma)[:, None, None]))
    elif kind == "layer":
        inputs, layer = (x,), nn.ChannelLayerNorm(gamma, beta, eps=1e-5)
        function = (lambda a: torch.nn.functional.layer_norm(
            a.permute(0, 2, 3, 1), (c,), None if gamma is None else T(gamma),
            None if beta is None else T(beta), 1e-5).permute(0, 3, 1, 2))
    else:
        inputs, layer = (x,), nn.GroupNorm(groups, gamma, beta, eps=1e-5)
        function = (lambda a: torch.nn.functional.group_norm(
            a, groups, None if gamma is None else T(gamma),
            None if beta is None else T(beta), 1e-5))
    y, record = layer.forward(*inputs)
    assert y.dtype == dtype
    tensors = [T(a).requires_grad_(True) for a in inputs]
    expected = function(*tensors)
    grad = rng.standard_normal(y.shape).astype(dtype)
    vjp = torch.autograd.grad(expected, tensors, T(grad))
    tolerance = 1e-10 if dtype == np.float64 else 1e-4

    def error(ours, theirs):      # relative, or absolute where torch's is ~0 (one channel)
        return float(np.max(np.abs(ours - theirs))) / max(float(np.max(np.abs(theirs))), 1.0)
    assert error(y, expected.detach().numpy()) <= tolerance
    passed = layer.backward(grad, record)
    passed = passed if isinstance(passed, tuple) else (passed,)
    for ours, theirs in zip(passed, vjp):
        assert ours.dtype == dtype
        assert error(ours, theirs.numpy()) <= tolerance
