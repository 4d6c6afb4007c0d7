"""The backend contract (``minideconv.backends.contract``) and what ``ops`` resolves first.

- Every backend provides every kernel of ``contract.Backend``, with its parameter names,
  and a ``kernel_lock``.
- No backend handles circular padding itself: the geometry it receives has zero padding,
  and no backend module mentions ``padding_mode``.
- The transpose of any ``conv2d`` call, "same"/"valid"/circular included, is one
  ``conv_transpose2d`` call with the same arguments (the dot test against conv2d, and
  the sparse matrix Wᵀ), and ``nn.Conv2d.backward`` is that call.
- The one rule table: every module that names the rules reads them from ``rules``.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given

import minideconv as md
from minideconv import backends, geometry, matrices, nn, ops, rules
from minideconv.backends import contract

from support.strategies import conv_cases

PACKAGE = Path(md.__file__).parent
BACKENDS = {"cpu": backends.load_cpu_backend(), "reference": backends.load_reference_backend()}


def contract_violations(backend):
    """What ``backend`` lacks of the contract: missing kernels, other parameter names."""
    found = []
    for kernel in contract.KERNELS:
        function = getattr(backend, kernel, None)
        if not callable(function):
            found.append(f"no {kernel}")
            continue
        promised = list(inspect.signature(getattr(contract.Backend, kernel)).parameters)[1:]
        given_ = list(inspect.signature(function).parameters)
        if given_ != promised:
            found.append(f"{kernel}{tuple(given_)} instead of {tuple(promised)}")
    if not hasattr(getattr(backend, "kernel_lock", None), "__enter__"):
        found.append("no kernel_lock")
    return found


def test_the_contract_lists_every_kernel_ops_calls():
    assert contract.KERNELS == ("conv2d", "conv_transpose2d", "conv2d_weight_grad", "relu",
                                "relu_backward", "rectifier", "rectifier_backward",
                                "max_pool2d", "first_switch_outside_window",
                                "max_unpool2d", "adaptive_max_pool2d", "avg_pool2d",
                                "avg_pool2d_transpose", "upsample2d", "upsample2d_transpose")
    called = {node.attr for node in ast.walk(ast.parse((PACKAGE / "ops.py").read_text()))
              if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "backend"}
    assert called == set(contract.KERNELS) | {"kernel_lock"}


@pytest.mark.parametrize("name", BACKENDS)
def test_every_backend_provides_every_kernel_of_the_contract(name):
    assert contract_violations(BACKENDS[name]) == []


def test_the_contract_check_notices_a_missing_kernel_and_other_parameters():
    import types
    cpu = BACKENDS["cpu"]
    partial = types.SimpleNamespace(**{k: getattr(cpu, k) for k in contract.KERNELS
                                       if k != "max_unpool2d"}, kernel_lock=cpu.kernel_lock)
    partial.relu_backward = lambda grad, x, rule_code: None
    assert contract_violations(partial) == [
        "relu_backward('grad', 'x', 'rule_code') instead of ('grad', 'x', 'rule')",
        "no max_unpool2d"]


def test_no_backend_mentions_padding_mode():
    for path in (PACKAGE / "backends").glob("*.py"):
        if path.name == "contract.py":  # where the rule is written down
            continue
        source = path.read_text()
        assert "padding_mode" not in source and "circular" not in source, path.name


@pytest.mark.parametrize("backend_name", BACKENDS)
def test_backends_receive_zero_padded_geometry(monkeypatch, backend_name):
    """A circular convolution reaches the backend as a zero-padded one of the wrap-padded
    image (and comes out as torch's circular convolution: tests/test_ops_torch.py)."""
    seen = []
    backend = BACKENDS[backend_name]
    for kernel in ("conv2d", "conv_transpose2d", "conv2d_weight_grad"):
        original = getattr(backend, kernel)
        monkeypatch.setattr(backend, kernel,
                            lambda *a, _f=original: (seen.append(a[-1]), _f(*a))[1])
    monkeypatch.setattr(ops, "CPU_BACKEND", backend_name)
    x, w = np.ones((1, 2, 5, 6)), np.ones((3, 2, 3, 3))
    y = md.conv2d(x, w, padding=1, padding_mode="circular")
    md.conv_transpose2d(y, w, padding=1, padding_mode="circular")
    md.conv2d_weight_grad(x, y, w.shape, padding=1, padding_mode="circular")
    assert len(seen) == 3
    for geom in seen:
        assert isinstance(geom, geometry.ConvGeometry)
        assert geom.padding_mode == "zeros" and geom.pads == (0, 0, 0, 0)
        assert geom.in_hw == (7, 8)  # the wrap-padded image


@given(conv_cases(dtypes=(np.float64,)))
def test_the_transpose_of_any_conv2d_call_is_conv_transpose2d_with_its_arguments(case):
    """<conv2d(x), y> = <x, conv_transpose2d(y)> with the very same keyword arguments, for
    every padding conv2d takes ("same" and "valid" included) and both padding modes;
    and the result is Wᵀ y of the sparse matrix."""
    x, weight, _, _ = case.arrays()
    kwargs = case.kwargs()
    y_shape = md.conv2d(x, weight, **kwargs).shape

    def transpose(y):
        return md.conv_transpose2d(y, weight, output_size=x.shape[2:], **kwargs)

    md.dottest(lambda v: md.conv2d(v, weight, **kwargs), transpose, x.shape, y_shape)
    w = matrices.conv2d_matrix(weight, x.shape[1:], stride=case.stride,
                               padding=kwargs["padding"], dilation=case.dilation,
                               groups=case.groups, padding_mode=case.padding_mode)
    y = np.random.default_rng(0).standard_normal(y_shape)
    expected = np.stack([w.T @ y_n.ravel() for y_n in y]).reshape(x.shape)
    np.testing.assert_allclose(transpose(y), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("padding, padding_mode", [
    ("same", "zeros"), ("same", "circular"), ("valid", "zeros"), (1, "circular"),
    (2, "zeros")])
def test_nn_conv2d_backward_is_the_one_transposed_call(monkeypatch, padding, padding_mode):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((3, 2, 4, 3))
    layer = nn.Conv2d(weight, padding=padding, padding_mode=padding_mode)
    x = rng.standard_normal((2, 2, 7, 6))
    y, record = layer.forward(x)
    g = rng.standard_normal(y.shape)
    expected = md.conv_transpose2d(g, weight, padding=padding, padding_mode=padding_mode,
                                   output_size=x.shape[2:])
    calls = []
    original = nn.layers.conv_transpose2d
    monkeypatch.setattr(nn.layers, "conv_transpose2d", lambda *a, **k: calls.append(k) or
                        original(*a, **k))
    np.testing.assert_array_equal(layer.backward(g, record), expected)
    assert len(calls) == 1 and calls[0]["padding"] == layer.padding


def test_conv_transpose2d_same_padding_keeps_the_size_and_checks_the_stride():
    weight = np.ones((1, 1, 4, 4))
    assert md.conv_transpose2d(np.ones((1, 1, 5, 6)), weight, padding="same").shape == \
        (1, 1, 5, 6)
    with pytest.raises(ValueError, match="padding='same' requires stride=1"):
        md.conv_transpose2d(np.ones((1, 1, 5, 6)), weight, padding="same", stride=2)
    with pytest.raises(ValueError, match="padding must be an int, a pair, 'valid' or 'same'"):
        md.conv_transpose2d(np.ones((1, 1, 5, 6)), weight, padding="full")


# --------------------------------------------------------------------------- the rule table

def test_the_rule_table_says_what_each_rule_keeps():
    assert rules.NAMES == ("backprop", "deconvnet", "guided")
    keeps = {name: (r.rectifies_signal, r.masks_by_input) for name, r in rules.RULES.items()}
    assert keeps == {"backprop": (False, True), "deconvnet": (True, False),
                     "guided": (True, True)}
    g = np.array([-2.0, -1.0, 1.0, 2.0])
    x = np.array([1.0, -1.0, -1.0, 1.0])
    for name, rule in rules.RULES.items():   # the table's meaning, applied by hand
        expected = (np.maximum(g, 0) if rule.rectifies_signal else g) * \
            ((x > 0) if rule.masks_by_input else 1)
        np.testing.assert_array_equal(md.relu_backward(g[None], x[None], name), expected[None])
    with pytest.raises(ValueError, match=r"rule must be one of \('backprop', 'deconvnet', "
                                         r"'guided'\)"):
        rules.get_rule("zeiler")


def test_the_rule_table_holds_for_every_rectifier():
    """The two choices, generalised: rect_α(g) = max(g, 0) + α·min(g, 0) instead of
    max(g, 0), and f′(x) = α (x ≤ 0), 1 (0 < x < m), 0 (x ≥ m) instead of [x > 0]."""
    g = np.array([-2.0, -1.0, 1.0, 2.0, -3.0, 3.0])
    x = np.array([1.0, -1.0, -1.0, 1.0, 7.0, 7.0])
    for slope, cap in ((0.0, None), (0.0, 6.0), (0.1, None), (-0.5, 2.0)):
        m = np.inf if cap is None else cap
        rectified = np.maximum(g, 0) + slope * np.minimum(g, 0)
        derivative = np.where(x > 0, (x < m).astype(float), slope)
        for name, rule in rules.RULES.items():
            expected = (rectified if rule.rectifies_signal else g) * \
                (derivative if rule.masks_by_input else 1)
            np.testing.assert_array_equal(
                md.rectifier_backward(g[None], x[None], name, slope, cap), expected[None])
    assert set(rules.RECTIFIER_FORMULAS) == {"ReLU", "ReLU6", "LeakyReLU", "PReLU"}
    assert all(set(row) == set(rules.NAMES) for row in rules.RECTIFIER_FORMULAS.values())
    assert rules.RECTIFIER_FORMULAS["ReLU6"]["deconvnet"] == "relu(g)"   # no cap on g


def _string_tuples(tree):
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and node.elts and \
                all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield {e.value for e in node.elts}


def _rule_name_comparisons(tree):
    """``rule == "deconvnet"``-style tests: a rule told apart by its name, not its table row."""
    names = set(rules.NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            if any(isinstance(o, ast.Constant) and o.value in names for o in operands):
                yield node.lineno


def test_no_module_keeps_a_list_of_rule_names_of_its_own():
    names = set(rules.NAMES)
    for path in PACKAGE.rglob("*.py"):
        if path.name == "rules.py":
            continue
        tree = ast.parse(path.read_text())
        for strings in _string_tuples(tree):
            assert len(strings & names) < 2, f"{path.relative_to(PACKAGE)} lists rule names"
        assert list(_rule_name_comparisons(tree)) == [], \
            f"{path.relative_to(PACKAGE)} tells rules apart by name: read rules.RULES"


def test_the_rule_name_comparison_check_finds_them():
    tree = ast.parse('if rule == "backprop": pass\nx = "guided" != r\nok = rule.masks_by_input\n')
    assert list(_rule_name_comparisons(tree)) == [1, 2]


# --------------------------------------------------------------------------- private names

def is_module(name):
    return (PACKAGE / f"{name}.py").exists()


def _private_uses(path):
    """``module._name`` attribute reads and ``from module import _name`` in one file, where
    the module is one of minideconv's."""
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                "minideconv")):
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and not is_module(alias.name):  # checks: the shared checks
                    yield f"from {node.module} import {alias.name}"
                imported.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("minideconv"):
                    imported.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id in imported and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            yield f"{node.value.id}.{node.attr}"


def test_no_private_name_is_used_across_modules():
    found = {str(p.relative_to(PACKAGE.parent)): sorted(set(_private_uses(p)))
             for p in [*PACKAGE.rglob("*.py"), *PACKAGE.parent.joinpath("tests").glob("*.py")]}
    assert not {k: v for k, v in found.items() if v}


def test_the_private_name_scan_would_notice_one(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from minideconv import checks\nfrom . import ops\n"
                     "checks.is_int(1)\nops._contiguous(None)\n")
    assert list(_private_uses(probe)) == ["ops._contiguous"]
