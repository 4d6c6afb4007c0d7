"""The kernels are valid plain Python: with NUMBA_DISABLE_JIT=1 (in a subprocess, since
the flag is read at import) a small case of every op runs and gives the jitted results."""

from __future__ import annotations

import os
import textwrap

import numpy as np
import pytest

import minideconv as md

from support.strategies import assert_close
from support.subprocesses import run_without_jit

CHILD = textwrap.dedent(r"""
    import sys
    import numpy as np
    import numba
    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT was not honoured"
    from minideconv.backends import loops, window_check, winograd
    from numba.core.dispatcher import Dispatcher
    from test_backends_nojit import run_every_op

    out = run_every_op(dict(np.load(sys.argv[1])))
    # every kernel really ran as plain Python
    jitted = [name for module in (loops, window_check, winograd)
              for name, obj in vars(module).items()
              if isinstance(obj, Dispatcher)]
    assert not jitted, f"still numba dispatchers: {jitted}"
    np.savez(sys.argv[2], **out)
""")


def _inputs():
    rng = np.random.default_rng(2024)
    inp = {}
    for suffix, dtype in (("64", np.float64), ("32", np.float32)):
        x = rng.standard_normal((2, 4, 7, 8)).astype(dtype)
        x[0, 0, :2, :2] = 1.0                        # a tie for the max-pool
        w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
        inp["x" + suffix] = x
        inp["w" + suffix] = w
        inp["b" + suffix] = rng.standard_normal(6).astype(dtype)
        inp["g" + suffix] = rng.standard_normal((2, 6, 4, 10)).astype(dtype)   # conv output
        inp["gp" + suffix] = rng.standard_normal((2, 4, 4, 5)).astype(dtype)   # pool output
        inp["xw" + suffix] = rng.standard_normal((1, 16, 19, 20)).astype(dtype)  # Winograd's
        inp["ww" + suffix] = rng.standard_normal((16, 16, 3, 3)).astype(dtype)
    return inp


def run_every_op(inp):
    """A small case of every op, in both dtypes; run here (jitted) and in the child
    process (plain Python)."""
    out = {}
    for suffix in ("64", "32"):
        x, w, b, g = (inp[k + suffix] for k in ("x", "w", "b", "g"))
        kw = dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
        out["conv2d" + suffix] = md.conv2d(x, w, b, **kw)
        assert out["conv2d" + suffix].shape == g.shape
        out["conv2d_circular" + suffix] = md.conv2d(x, w, padding_mode="circular", **kw)
        out["conv_transpose2d" + suffix] = md.conv_transpose2d(
            g, w, b[:4], output_size=x.shape[-2:], **kw)
        out["conv2d_weight_grad" + suffix] = md.conv2d_weight_grad(x, g, w.shape, **kw)
        # 3×3, stride 1, 16 channels, 100 tiles: backends.winograd's route
        out["conv2d_winograd" + suffix] = md.conv2d(inp["xw" + suffix], inp["ww" + suffix],
                                                    padding=1)
        out["relu" + suffix] = md.relu(x)
        for rule in md.rules.NAMES:
            out["relu_backward_" + rule + suffix] = md.relu_backward(x[:, ::-1], x, rule=rule)
        slopes = np.linspace(-0.2, 0.3, x.shape[1]).astype(x.dtype)   # PReLU's, and a cap
        out["rectifier" + suffix] = md.rectifier(x, slopes, 0.5)
        for rule in md.rules.NAMES:
            out["rectifier_backward_" + rule + suffix] = md.rectifier_backward(
                x[:, ::-1], x, rule, slopes, 0.5)
        y, s = md.max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True)
        assert y.shape == inp["gp" + suffix].shape
        out["max_pool2d_y" + suffix], out["max_pool2d_s" + suffix] = y, s
        out["max_unpool2d" + suffix] = md.max_unpool2d(inp["gp" + suffix], s, 3, 2, 1,
                                                     output_size=x.shape[-2:])
    return out


def test_every_op_runs_as_plain_python_with_numba_disabled(tmp_path):
    inp = _inputs()
    np.savez(tmp_path / "in.npz", **inp)
    proc = run_without_jit(CHILD, str(tmp_path / "in.npz"), str(tmp_path / "out.npz"))
    assert proc.returncode == 0, proc.stderr[-4000:]
    plain = dict(np.load(tmp_path / "out.npz"))
    jitted = run_every_op(inp)
    assert set(plain) == set(jitted)
    for name, expected in jitted.items():
        got = plain[name]
        assert got.dtype == expected.dtype, name
        if name.startswith("max_pool2d_s"):
            np.testing.assert_array_equal(got, expected, err_msg=name)
        else:
            assert_close(got, expected, what=name)


def test_child_would_notice_a_jitted_kernel():
    """The child's plain-Python check is not vacuous: in this (jitted) process the backend
    does hold numba dispatchers."""
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        pytest.skip("this process itself runs with NUMBA_DISABLE_JIT")
    from numba.core.dispatcher import Dispatcher
    from minideconv.backends import loops, window_check, winograd
    for module in (loops, window_check, winograd):
        assert any(isinstance(o, Dispatcher) for o in vars(module).values())
