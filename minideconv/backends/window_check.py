"""The loops that check switches before unpooling writes anything.

``max_unpool2d`` writes each value wherever its switch points, so ``minideconv.ops``
first asks the backend for the first switch that is not a position of its own pooling
window (``first_switch_outside_window``) and raises a ValueError naming it.  These are
the CPU loops of that check; like ``loops``, each docstring is what it computes.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .loops import window_taps


@njit(cache=True)
def window_column_runs(w_out, kw, sw, pw, dw, width):
    """The columns of each pooling window that lie inside the image, as runs of
    consecutive columns: run r of window ow is first[r, ow] … last[r, ow] (empty when
    first > last).  Without dilation a window's columns are one run of up to kw; with
    dilation dw > 1 each of its kw columns ow·sw − pw + j·dw is a run of its own."""
    n_runs, run_length = (1, kw) if dw == 1 else (kw, 1)
    first = np.empty((n_runs, w_out), dtype=np.int64)
    last = np.empty((n_runs, w_out), dtype=np.int64)
    for r in range(n_runs):
        for ow in range(w_out):
            start = ow * sw - pw + r * dw
            first[r, ow] = max(start, 0)
            last[r, ow] = min(start + run_length - 1, width - 1)
    return first, last


@njit(cache=True)
def first_switch_outside_plane_windows(switches, rows, first, last, sh, ph, dh, width):
    """The first output o = oh·W_out + ow of one plane whose switch s is not a position of
    its own window inside the image, or −1.  Inside means s = h·W + w with

        h = oh·sh − ph + i·dh, i in rows[oh]   and   first[r, ow] ≤ w ≤ last[r, ow] for a run r

    (``window_taps``, ``window_column_runs``).  As 0 ≤ w < W, that includes the range
    check 0 ≤ s < H·W.  It is tested as s − h·W in [first, last], over a row of outputs at
    once, one pass per window row and run: comparisons only, which vectorise, where
    s // W would be an integer division per switch, several times slower.
    """
    h_out, w_out = switches.shape
    hits = np.empty(w_out, dtype=np.int64)  # hits[ow] = 1 if window ow holds its switch
    for oh in range(h_out):
        s_row = switches[oh]
        hits[:] = 0
        for i in range(rows[oh, 0], rows[oh, 1]):
            row_start = (oh * sh - ph + i * dh) * width  # the flat index of (h, 0)
            for r in range(first.shape[0]):
                run_first, run_last = first[r], last[r]
                for ow in range(w_out):
                    w = s_row[ow] - row_start  # the switch's column, if it is on row h
                    hits[ow] += (w >= run_first[ow]) & (w <= run_last[ow])
        missed = 0
        for ow in range(w_out):  # count without branches first: a bad switch is rare
            missed += hits[ow] == 0
        if missed:
            for ow in range(w_out):
                if hits[ow] == 0:
                    return oh * w_out + ow
    return -1


@njit(cache=True, parallel=True)
def first_switch_outside_window_planes(switches, kh, kw, sh, sw, ph, pw, dh, dw, height, width):
    """The first flat index into ``switches`` (N, C, H_out, W_out) whose switch does not
    lie in its own pooling window of the (height, width) input
    (``first_switch_outside_plane_windows``), or −1; planes in parallel.  Run before
    ``loops.max_unpool_planes``, which would otherwise write wherever a switch points."""
    n_img, channels, h_out, w_out = switches.shape
    rows = window_taps(h_out, kh, sh, ph, dh, height)  # rows[oh] = (i_lo, i_hi)
    first, last = window_column_runs(w_out, kw, sw, pw, dw, width)
    first_in_plane = np.empty(n_img * channels, dtype=np.int64)
    for plane in prange(n_img * channels):
        first_in_plane[plane] = first_switch_outside_plane_windows(
            switches[plane // channels, plane % channels], rows, first, last, sh, ph, dh,
            width)
    for plane in range(n_img * channels):  # the first bad plane, as a serial scan would find
        if first_in_plane[plane] >= 0:
            return plane * (h_out * w_out) + first_in_plane[plane]
    return -1
