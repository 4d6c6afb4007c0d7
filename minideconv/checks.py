"""Argument validation shared by every public function.

Every public op calls these *before* any kernel runs, so that a kernel never sees a
shape, dtype or index it could misuse.  Each error is a ``TypeError`` (wrong kind of
thing) or ``ValueError`` (right kind, wrong value) whose message names the parameter and
says what was expected.

The scalar checks are one family: ``check_int`` (an int, not a bool, in a range),
``check_index`` (an int in [0, n)), ``check_real`` (a finite number, not a bool, in a
range), ``check_bool`` and ``check_choice`` (one of some strings); ``is_int`` is their
predicate for pairs and lists.  The geometry of a layer (stride, padding, sizes) is
validated and normalised in ``minideconv.geometry``, with the checks from here.
"""

from __future__ import annotations

import numbers
from typing import Optional, Tuple

import numpy as np

from . import shapes

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- arrays

def is_cupy(a) -> bool:
    """True for a CuPy array (checked by type, without importing CuPy)."""
    if type(a) is np.ndarray:  # the common case, answered in a fraction of a µs
        return False
    return type(a).__module__.split(".")[0] == "cupy"


def array_module(a):
    """``cupy`` for a CuPy array (imported only then), ``numpy`` otherwise."""
    if is_cupy(a):
        import cupy
        return cupy
    return np


def is_array(a) -> bool:
    return isinstance(a, np.ndarray) or is_cupy(a)


def check_same_device(**arrays) -> None:
    """All given arrays (None allowed) must be NumPy arrays, or all CuPy arrays."""
    given = {name: a for name, a in arrays.items() if a is not None and is_array(a)}
    on_gpu = {name for name, a in given.items() if is_cupy(a)}
    if on_gpu and on_gpu != set(given):
        raise TypeError(f"{', '.join(sorted(on_gpu))} are cupy arrays but "
                        f"{', '.join(sorted(set(given) - on_gpu))} are numpy arrays: "
                        "pass all arrays on the same device")


def check_float_array(a, name: str, ndim: Optional[int] = None,
                      layout: str = "(N, C, H, W)"):
    """``a`` must be a NumPy (or CuPy) array of float32/float64 with ``ndim`` dimensions."""
    if not is_array(a):
        raise TypeError(f"{name} must be a numpy.ndarray (or cupy.ndarray) of float32 or "
                        f"float64, got {type(a).__name__}")
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {a.shape}")
    return a


def check_same_dtype(a, a_name: str, b, b_name: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{b_name} must have the same dtype as {a_name} ({a.dtype}), "
                        f"got {b.dtype}")


def check_nonempty_spatial(a, name: str) -> None:
    if a.shape[-1] == 0 or a.shape[-2] == 0:
        raise ValueError(f"{name} must have non-empty spatial size (H, W), "
                         f"got shape {a.shape}")


def check_bias(bias, name: str, length: int, dtype) -> None:
    if bias is None:
        return
    check_float_array(bias, name, ndim=1, layout="(channels,)")
    if bias.shape[0] != length:
        raise ValueError(f"{name} must have length {length} (one value per output "
                         f"channel), got shape {bias.shape}")
    if bias.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like the input, got {bias.dtype}")


def check_weight(weight, name_in: str, dtype) -> None:
    """``weight`` must be a 4-D float array of ``dtype`` (the input's)."""
    check_float_array(weight, "weight", ndim=4, layout="(C_out, C_in/groups, kh, kw)")
    if weight.dtype != dtype:
        raise TypeError(f"weight must have the same dtype as {name_in} ({dtype}), "
                        f"got {weight.dtype}")


# --------------------------------------------------------------------------- scalars

# Each check returns the value as a plain Python int / float / bool (a numpy scalar
# comes back converted), or raises naming the parameter: a TypeError for the wrong kind
# of thing (a bool is never a number here: True is not a stride), a ValueError for a value
# out of range, saying the range.  ``why``, where given, says where the range comes from;
# it is added in parentheses after the range.

def is_int(v) -> bool:
    """An integer that is not a bool (True is not a stride): the predicate of ``check_int``,
    for checks of a pair or a list of ints."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _range_error(name, value, why, minimum=None, maximum=None, above=None,
                 below=None) -> ValueError:
    """``{name} must be in [lo, hi]`` (or ``>= lo``, ``> lo``, ``<= hi``, ``[lo, hi)``)
    ``(why), got {value}``."""
    if minimum is not None and maximum is not None:
        accepted = f"in [{minimum}, {maximum}]"
    elif minimum is not None and below is not None:
        accepted = f"in [{minimum}, {below})"
    elif minimum is not None:
        accepted = f">= {minimum}"
    elif above is not None:
        accepted = f"> {above}"
    else:
        accepted = f"<= {maximum}"
    return ValueError(f"{name} must be {accepted}{f' ({why})' if why else ''}, "
                      f"got {value}")


def check_int(value, name: str, minimum: Optional[int] = None,
              maximum: Optional[int] = None, why: str = "") -> int:
    """``value`` as an int in [``minimum``, ``maximum``] (None: no bound on that side).

    A bool, a float (even 2.0) or anything else not integral: ``TypeError("{name} must be
    an int, got …")``; out of range: ``ValueError("{name} must be in [1, 9] (why), got 0")``
    (``>= 1`` or ``<= 9`` with one bound)."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise _range_error(name, value, why, minimum=minimum, maximum=maximum)
    return int(value)


def check_index(value, name: str, length: int, why: str = "") -> int:
    """``value`` as an index into something of ``length``: an int in [0, ``length``), as
    ``check_int`` (``ValueError("{name} must be in [0, 8) (why), got 8")``).  Negative
    indices are refused: a channel or a class has one number."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not 0 <= value < length:
        raise _range_error(name, value, why, minimum=0, below=length)
    return int(value)


def check_real(value, name: str, minimum: Optional[float] = None,
               maximum: Optional[float] = None, above: Optional[float] = None,
               why: str = "") -> float:
    """``value`` as a finite float in [``minimum``, ``maximum``], or > ``above`` (a strict
    lower bound, e.g. ``above=0`` for a tolerance); None: no bound.

    An int or a numpy float counts; a bool, a string or an array does not
    (``TypeError("{name} must be a real number, got …")``); NaN or ±inf:
    ``ValueError("{name} must be finite, got nan")``; out of range: a ValueError as
    ``check_int``'s (``> 0`` for ``above``)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum) \
            or (above is not None and not value > above):
        raise _range_error(name, value, why, minimum=minimum, maximum=maximum, above=above)
    return value


def check_bool(value, name: str) -> bool:
    """``value`` as a Python bool: True, False or a numpy bool; not 1, 0 or None
    (``TypeError("{name} must be a bool, got …")``)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_choice(value, name: str, choices) -> str:
    """``value``, one of the strings ``choices``, else ``ValueError("{name} must be one of
    ('a', 'b'), got …")`` (a ValueError for a non-string too: the message lists the
    accepted values either way)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def to_pair(value, name: str, minimum: int) -> Tuple[int, int]:
    """An int or a pair of ints, each ≥ ``minimum``, as a tuple ``(h, w)``."""
    if is_int(value):
        pair = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
        pair = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return pair


def check_switch_array(switches, y) -> None:
    """Switches must be an integer array of y's shape (int64 flat indices h·W + w)."""
    if not is_array(switches):
        raise TypeError(f"switches must be a numpy.ndarray of int64, got "
                        f"{type(switches).__name__}")
    if switches.dtype.kind not in "iu":
        raise TypeError(f"switches must be an integer array (int64 flat indices h*W + w), "
                        f"got dtype {switches.dtype}")
    if switches.shape != y.shape:
        raise ValueError(f"switches must have the shape of y {y.shape}, got {switches.shape}")


def check_output_size(output_size, y_shape) -> Tuple[int, int]:
    """(H, W) or (N, C, H, W) ints, positive, with y's (N, C); returns (H, W)."""
    if not isinstance(output_size, (tuple, list)) or len(output_size) not in (2, 4) \
            or not all(map(is_int, output_size)):
        raise TypeError(f"output_size must be (H, W) or (N, C, H, W) ints, got {output_size!r}")
    if len(output_size) == 4 and tuple(output_size[:2]) != tuple(y_shape[:2]):
        raise ValueError(f"output_size {tuple(output_size)} must have y's (N, C) = "
                         f"{tuple(y_shape[:2])}")
    height, width = (int(v) for v in output_size[-2:])
    if height < 1 or width < 1:
        raise ValueError(f"output_size must be positive, got {tuple(output_size)}")
    return height, width


def check_switches(switches, y, output_size) -> Tuple[int, int]:
    """Switches of y's shape inside [0, H·W) of the plane ``output_size``: the check for
    callers that know the pooled input's size but not the pooling's geometry
    (``matrices.max_pool2d_matrix``); ``max_unpool2d`` checks each switch against its own
    window instead."""
    check_switch_array(switches, y)
    height, width = check_output_size(output_size, y.shape)
    if switches.size:
        lo, hi = int(switches.min()), int(switches.max())
        if lo < 0 or hi >= height * width:
            raise ValueError(f"switches must lie in [0, H*W) = [0, {height * width}) for "
                             f"output_size {(height, width)}, got values in [{lo}, {hi}]")
    return height, width


def _window_lines(o, k, s, p, d, size) -> list:
    """The input rows (or columns) of window ``o`` that lie inside the image."""
    return [i for i in shapes.window_positions(o, k, s, p, d) if 0 <= i < size]


def switch_outside_window(switches, position: int, geom) -> ValueError:
    """The error for the switch at flat ``position`` of ``switches`` that does not lie in
    its own pooling window."""
    n, c, oh, ow = (int(i) for i in np.unravel_index(position, switches.shape))
    switch = int(switches[n, c, oh, ow])
    (height, width), (kh, kw) = geom.in_hw, geom.kernel
    (sh, sw), (ph, pw), (dh, dw) = geom.stride, geom.padding, geom.dilation
    where = (f"outside the {height}x{width} plane [0, {height * width})"
             if not 0 <= switch < height * width
             else f"row {switch // width}, column {switch % width}")
    message = (f"switches[{n}, {c}, {oh}, {ow}] = {switch} ({where}) lies outside its "
               f"pooling window: rows {_window_lines(oh, kh, sh, ph, dh, height)} and "
               f"columns {_window_lines(ow, kw, sw, pw, dw, width)} (kernel_size "
               f"{geom.kernel}, stride {geom.stride}, padding {geom.padding}, dilation "
               f"{geom.dilation}); switches must come from max_pool2d with this geometry")
    return ValueError(message)
