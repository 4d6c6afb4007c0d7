"""The embedded dataset: ten classes of coloured shapes and textures, drawn in code.

Every image is 3×32×32, float32 in [0, 1]: one foreground pattern on a background made of
a random colour, a linear colour gradient and pixel noise.  Each pattern is drawn from
a *signed distance*: for every pixel, ``d`` = how far it is outside the shape (negative
inside), and the foreground opacity is ``clip(0.5 − d, 0, 1)`` — a one-pixel
anti-aliased edge.  Shapes are rotated by a random angle θ by measuring the distances in
rotated coordinates

    u =  (x − cx) cos θ + (y − cy) sin θ,     v = −(x − cx) sin θ + (y − cy) cos θ.

Everything is vectorised over a chunk of images; a chunk of ``CHUNK`` images is fully
determined by ``(seed, chunk index)``, so the first n images of a split never depend on
how many are asked for.

The object's mask.  The distance that draws an image also says where its object is: the
pixels with d ≤ 0, i.e. opacity α = clip(0.5 − d, 0, 1) ≥ 0.5 — the pixels that are at
least half foreground colour (``make_chunk(..., masks=True)``).  For the seven shapes
that is the shape; the three textures (stripes, checkerboard, dots) fill the whole image
with their pattern, and their mask is the pattern's foreground part (the stripes, the
"on" squares, the dots), not the image: about half of it for stripes and checkerboards,
a quarter for dots.  The mask costs no random draw, so asking for it changes no image.
"""

from __future__ import annotations

import numpy as np

SIZE = 32
CHUNK = 500
CLASSES = ("disc", "ring", "square", "triangle", "bar", "cross", "corner",
           "stripes", "checkerboard", "dots")


def _rotated_coords(n, rng, jitter=4.0):
    """Per-image centre (cx, cy) near the middle and rotation θ; returns u, v (n, S, S)."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    centre = (SIZE - 1) / 2 + rng.uniform(-jitter, jitter, size=(n, 2)).astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi, size=n).astype(np.float32)
    c, s = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    dx = x[None] - centre[:, 0, None, None]
    dy = y[None] - centre[:, 1, None, None]
    return dx * c + dy * s, -dx * s + dy * c


def _column(values):
    return np.asarray(values, dtype=np.float32)[:, None, None]


def _bar_sdf(u, v, half_length, half_width):
    """Distance outside the rectangle |u| ≤ half_length, |v| ≤ half_width (L∞ style)."""
    return np.maximum(np.abs(u) - half_length, np.abs(v) - half_width)


def _shape_sdf(label, u, v, rng):
    """Signed distance (pixels, negative inside) of class ``label`` for n images."""
    n = u.shape[0]
    radius = _column(rng.uniform(6.0, 10.0, n))       # overall size of the shape
    width = _column(rng.uniform(1.5, 2.5, n))          # half-thickness of strokes
    r = np.sqrt(u * u + v * v)
    name = CLASSES[label]
    if name == "disc":
        return r - radius
    if name == "ring":
        return np.abs(r - radius) - width
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.8 * radius
    if name == "triangle":                 # three half-planes, 120° apart
        d = [u * np.cos(a) + v * np.sin(a) for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3,
                                                     np.pi / 2 + 4 * np.pi / 3)]
        return np.maximum(np.maximum(d[0], d[1]), d[2]) - 0.6 * radius
    if name == "bar":
        return _bar_sdf(u, v, 1.3 * radius, width)
    if name == "cross":
        return np.minimum(_bar_sdf(u, v, radius, width), _bar_sdf(v, u, radius, width))
    if name == "corner":                   # two strokes meeting at a right angle, an "L"
        arm = 1.6 * radius
        u, v = u + arm / 2, v + arm / 2    # centre the L's bounding box, not its vertex
        return np.minimum(_bar_sdf(u - arm / 2 + width, v, arm / 2, width),
                          _bar_sdf(v - arm / 2 + width, u, arm / 2, width))
    period = _column(rng.uniform(5.0, 8.0, n))
    if name == "stripes":                  # a grating filling the image
        phase = np.abs((u / period) % 1.0 - 0.5) * period     # distance to stripe centre
        return phase - period / 4
    if name == "checkerboard":
        su = np.sin(np.pi * u / period * 1.0)
        sv = np.sin(np.pi * v / period * 1.0)
        # |product| is 0 on the grid lines; scale so that the edge is about a pixel wide
        return -np.sign(su * sv) * np.minimum(np.abs(su), np.abs(sv)) * period / np.pi
    if name == "dots":                     # a rotated lattice of small discs
        du = (u / period + 0.5) % 1.0 - 0.5
        dv = (v / period + 0.5) % 1.0 - 0.5
        return np.sqrt(du * du + dv * dv) * period - period * 0.28
    raise AssertionError(name)


def _colours(n, rng):
    """Background and foreground colours far enough apart to see the shape."""
    background = rng.uniform(0.0, 1.0, size=(n, 3)).astype(np.float32)
    foreground = rng.uniform(0.0, 1.0, size=(n, 3)).astype(np.float32)
    too_close = np.linalg.norm(foreground - background, axis=1) < 0.5
    opposite = np.clip(1.0 - background + rng.uniform(-0.15, 0.15, (n, 3)), 0, 1)
    foreground[too_close] = opposite[too_close].astype(np.float32)
    return background, foreground


def make_chunk(seed: int, chunk: int, n: int = CHUNK, masks: bool = False):
    """``n`` images (n, 3, 32, 32) float32 and labels (n,) int64, determined by
    ``(seed, chunk)``; the classes are balanced and shuffled.  With ``masks=True`` also
    the objects' masks (n, 32, 32) bool: d ≤ 0, i.e. α ≥ 0.5 (the module docstring)."""
    rng = np.random.default_rng([seed, chunk])
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    u, v = _rotated_coords(n, rng)
    sdf = np.empty((n, SIZE, SIZE), np.float32)
    for label in range(len(CLASSES)):
        idx = np.flatnonzero(labels == label)
        if idx.size:
            sdf[idx] = _shape_sdf(label, u[idx], v[idx], rng)
    alpha = np.clip(0.5 - sdf, 0.0, 1.0)[:, None]                  # (n, 1, S, S)

    background, foreground = _colours(n, rng)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1) - 0.5
    slope = rng.uniform(-0.4, 0.4, size=(n, 3, 2)).astype(np.float32)   # colour gradient
    images = (background[:, :, None, None] + slope[..., 0, None, None] * y
              + slope[..., 1, None, None] * x)
    images += alpha * (foreground[:, :, None, None] - images)   # α·fg + (1 − α)·bg
    # uniform pixel noise of standard deviation σ ∈ [0.02, 0.12] per image
    sigma = rng.uniform(0.02, 0.12, size=(n, 1, 1, 1)).astype(np.float32)
    noise = rng.random((n, 3, SIZE, SIZE), dtype=np.float32) - np.float32(0.5)
    images += (np.sqrt(12) * sigma) * noise
    np.clip(images, 0.0, 1.0, out=images)
    if masks:
        return images, labels, sdf <= 0     # α = clip(0.5 − d, 0, 1) ≥ 0.5 ⇔ d ≤ 0
    return images, labels


def make_images(seed: int, n: int, masks: bool = False):
    """The first ``n`` images of the stream with this ``seed``: chunks 0, 1, … in order
    (and their masks (n, 32, 32) bool with ``masks=True``)."""
    images = np.empty((n, 3, SIZE, SIZE), np.float32)
    labels = np.empty(n, np.int64)
    objects = np.empty((n, SIZE, SIZE), bool)
    for start in range(0, n, CHUNK):
        chunk = make_chunk(seed, start // CHUNK, masks=masks)
        stop = min(start + CHUNK, n)
        images[start:stop] = chunk[0][:stop - start]
        labels[start:stop] = chunk[1][:stop - start]
        if masks:
            objects[start:stop] = chunk[2][:stop - start]
    return (images, labels, objects) if masks else (images, labels)
