# %% [markdown]
"""
Lesson 11: What an inverse would look like
==========================================

The course started from a question: *the transposed convolution is not the inverse of
the convolution (ct(c(i)) ≠ i), so how can the deconvnet's output represent the internal
activations?*  Lessons 2–10 took the deconvnet apart.  This one builds what the question
has in mind: an actual inverse.  For the first layer it exists — least squares, because
that layer has full column rank.  Past the first ReLU it does not, on this image, for a
reason the lesson counts: fewer units are on than the image has pixels, and it builds a
second image with exactly the same representation.  The best one can do there is a
*pre-image*: an image whose representation matches the given one (Mahendran & Vedaldi
2015).  Set beside the deconvnet's projection of one activation of the same layer, it
shows what each keeps and what each loses.  The lesson ends with the seed question
answered in one place, each claim with the lesson and the number that measures it.
"""

# %%
import time

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from minideconv import matrices, plots
from minideconv.visualize import invert
from minideconv import visualize as vis
from minideconv.data import CLASSES, load_dataset, load_model

plt = plots.setup()
start = time.perf_counter()

net = load_model()
images, labels = load_dataset("test", n=2)
INDEX = 1
x0 = images[INDEX].astype(np.float64)        # the optimiser works in float64
print(f"test image {INDEX} ({CLASSES[labels[INDEX]]}), {x0.shape}, ‖x₀‖ = "
      f"{np.linalg.norm(x0):.2f}")

# %% [markdown]
# Layer 0: least squares is the inverse
# -------------------------------------
# The first layer is linear: Φ₀(x) = W x + b, W the 12 544 × 3 072 matrix of a 5 × 5
# convolution from 3 to 16 channels (lesson 1).  More rows than columns, and full column
# rank (lesson 3), so x₀ is the *only* solution of W x = Φ₀ − b, and least squares finds
# it: LSQR on the explicit matrix (``matrices.reconstruct``, lesson 3).  The transpose,
# for comparison, does not even get the scale right.
#
# ``invert.invert_representation`` solves the same problem without the matrix: it
# minimises E(x) = ‖Φ(x) − Φ₀‖² / ‖Φ₀‖² with L-BFGS-B, and gets the gradient
# 2 Jᵀ(Φ(x) − Φ₀) / ‖Φ₀‖² from the network's own backward pass with ``rule="backprop"``
# (lesson 4: the transpose is the gradient).  Both are iterative, and both converge at
# a speed set by W's condition number.

# %%
W = matrices.conv2d_matrix(net.layers[0].weight.astype(np.float64), x0.shape)
tic = time.perf_counter()
lsq = matrices.reconstruct(W, x0, atol=1e-5, btol=1e-5)
lsqr_seconds = time.perf_counter() - tic
layer0 = invert.invert_representation(net, x0, 0, max_iter=150)
agreement = np.linalg.norm(layer0.image - lsq.x_lsqr) / np.linalg.norm(x0)
print(f"W: {W.shape[0]} × {W.shape[1]}")
print(f"transpose   Wᵀ(W x₀):     ‖x̃ − x₀‖/‖x₀‖ = {lsq.transpose_error:.2f}")
print(f"least squares (LSQR):     ‖x̂ − x₀‖/‖x₀‖ = {lsq.lsqr_error:.2%} after "
      f"{lsq.lsqr_iterations} iterations, {lsqr_seconds:.2f} s")
print(f"feature inversion (L-BFGS-B): ‖x̂ − x₀‖/‖x₀‖ = {layer0.image_error:.2%} after "
      f"{layer0.iterations} iterations, {layer0.seconds:.2f} s; feature error "
      f"{layer0.feature_error:.1e}")
print(f"the two answers differ by {agreement:.2%} of ‖x₀‖")
assert lsq.transpose_error > 1
assert lsq.lsqr_error < 0.02 and layer0.image_error < 0.02 and agreement < 0.02

# %% [markdown]
# Both answers are x₀ to about 1 %, and they agree with each other as closely: one
# problem, two solvers.  Run longer (``tol`` and ``max_iter``; LSQR's ``atol``) and both
# go on to 10⁻⁴ and beyond.  The transpose is a different thing altogether: Wᵀ W x₀ is
# twenty times as far from x₀ as x₀ is from zero (W's singular values are not 1, and
# not even equal: its condition number is 163, lesson 3).

# %% [markdown]
# Past the first ReLU: two images, one representation
# ---------------------------------------------------
# Layer 1 is ReLU(W x + b).  A unit that is on reads its row, wᵤ·x + bᵤ; a unit that is
# off reads 0, for this x and for every x that keeps wᵤ·x + bᵤ below 0.  Two facts
# follow.  An x with x₀'s layer-1 output has the same values on the units that are on,
# so W_on (x − x₀) = 0 for the *active rows* W_on: if they have full column rank, 3 072,
# no other x has that output.  If they do not, every v in their null space gives x₀ + tv
# the same output for t small enough, since no pre-activation of x₀ is exactly 0 and
# the off units stay off; it remains to keep x₀ + tv an image.  Count the active rows:

# %%
bias = np.repeat(net.layers[0].bias.astype(np.float64), W.shape[0] // net.layers[0].bias.size)
flat = x0.ravel()
pre = W @ flat + bias
active = pre > 0
print(f"first-layer units on at x₀: {active.sum()} of {active.size}, for {flat.size} "
      f"pixels: the active rows' null space has dimension ≥ {flat.size - active.sum()}")
assert active.sum() < flat.size and np.all(pre != 0)

# %% [markdown]
# Fewer rows than pixels: the active rows have a null space of dimension at least 799,
# and any v in it with x₀ + v still an image (pixels in [0, 1]) that turns no off unit
# on gives a second image with x₀'s layer-1 output.  To find one we look where each
# pixel is seen by the fewest windows: the pixels within 4 of the border.  Only the
# active rows whose windows reach them matter there, fewer again than those pixels
# (printed below).  We project a random direction on those pixels onto the null space
# of those rows (v = z − Aᵀ(AAᵀ)⁻¹Az, a sparse LU of AAᵀ, the library's sparse W) and
# scale it to 5 % of ‖x₀‖.  Where it would push a pixel out of [0, 1], or bring an off
# unit within 10⁻³ of turning on, we hold that pixel (a row of the identity) or that
# unit's row too, and project again.  Every later layer is a function of layer 1, so
# the two images are the same to the whole network: checked with its own forward pass.

# %%
frame = np.ones(x0.shape[1:], dtype=bool)
frame[4:-4, 4:-4] = False                  # pixels that fewer than 5 × 5 windows cover
free = np.broadcast_to(frame, x0.shape).ravel()
W_free = W[:, free].tocsr()
reach = np.asarray(abs(W_free).sum(axis=1)).ravel() > 0        # rows that see the frame
print(f"the frame: {free.sum()} pixels, reached by {np.count_nonzero(active & reach)} "
      f"active rows")
assert np.count_nonzero(active & reach) < free.sum()


def null_direction(rows, held, z):
    """z projected onto the null space of ``W_free``'s ``rows`` and of the ``held``
    pixels of the frame."""
    A = sp.vstack([W_free[rows], sp.identity(free.sum(), format="csr")[held]]).tocsr()
    solve = splu((A @ A.T).tocsc()).solve
    for _ in range(3):                    # the projection, then two refinements
        z = z - A.T @ solve(A @ z)
    return z


held_units, held_pixels = active & reach, np.zeros(free.sum(), dtype=bool)
z = np.random.default_rng(0).standard_normal(free.sum())
for rounds in range(1, 21):
    step = null_direction(held_units, held_pixels, z)
    step *= 0.05 * np.linalg.norm(flat) / np.linalg.norm(step)
    leaving = ((flat[free] + step < 0) | (flat[free] + step > 1)) & ~held_pixels
    waking = ~active & reach & (pre + W_free @ step > -1e-3) & ~held_units
    if not (leaving.any() or waking.any()):
        break
    held_pixels |= leaving
    held_units |= waking
step[held_pixels] = 0.0                   # rounding noise at the held pixels
v = np.zeros(flat.size)
v[free] = step
x1 = (flat + v).reshape(x0.shape)
net64 = net.astype(np.float64)
before, after = (net64.trace(x[None]).outputs for x in (x0, x1))
same = {k: np.linalg.norm(after[k] - before[k]) / np.linalg.norm(before[k])
        for k in (1, 2, 5, 7, 9)}
print(f"after {rounds} rounds: {held_units.sum() - (active & reach).sum()} off units and "
      f"{held_pixels.sum()} pixels held beside the {(active & reach).sum()} active rows; "
      f"‖v‖/‖x₀‖ = {np.linalg.norm(v) / np.linalg.norm(flat):.1%}, x₀ + v in "
      f"[{x1.min():.2f}, {x1.max():.2f}]")
print("‖Φ(x₀ + v) − Φ(x₀)‖/‖Φ(x₀)‖: " + ", ".join(f"layer {k}: {d:.0e}"
                                                  for k, d in same.items()))
v_image = v.reshape(x0.shape)
assert 0.02 < np.linalg.norm(v) / np.linalg.norm(flat) < 0.1
assert x1.min() >= 0 and x1.max() <= 1 and not leaving.any() and not waking.any()
assert all(d < 1e-13 for d in same.values())
fig, axes = plt.subplots(1, 3, figsize=(8.4, 3.3), layout="constrained")
for ax, picture, title in ((axes[0], plots.as_rgb(x0), "x₀"),
                           (axes[1], plots.as_rgb(x1), f"x₀ + v\n(‖v‖ = "
                            f"{np.linalg.norm(v) / np.linalg.norm(flat):.1%} of ‖x₀‖)"),
                           (axes[2], plots.signed_rgb(v_image),
                            "v (grey = 0: all but the 4-pixel frame)")):
    ax.imshow(picture, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
plots.signed_rgb_colorbar(axes[2], v_image)
fig.suptitle(f"Two images, one representation: layer 1 to the logits differ by "
             f"{max(same.values()):.0e} (relative)", fontsize=11)
plots.save_lesson_figure(fig, "11_same_representation")

# %% [markdown]
# The two images differ by 5 % of ‖x₀‖, on the frame, and every layer's output, the
# logits included, agrees to rounding (relative differences below 10⁻¹⁵).  No backward
# pass, the deconvnet's or any other, can tell the two apart from the representation:
# past the first ReLU there is no inverse at this image, and the count says why —
# 2 273 units on for 3 072 pixels.  (Where more units are on than there are pixels, the
# argument needs the rank of the active rows, not their count.)

# %% [markdown]
# Deeper: a pre-image, not an inverse
# -----------------------------------
# The deeper representations are functions of layer 1, so they do not determine x₀
# either, and they keep less: a pool one value per window, each ReLU only the positive
# part.  Feature inversion still finds *one* image with (nearly) that representation,
# starting from grey noise.  Which one depends on the start and on a regulariser; as
# Mahendran & Vedaldi, we add total variation, TV₂(x) = mean over pixels of the squared
# gradient magnitude (``invert.total_variation``), with weight λ = 0.03.  This image's
# own TV₂ is 0.16, so at x₀ the regulariser would cost 0.005, as much as a feature error
# of 7 %.  Over 8 test images, raising λ from 0 to 0.1 lowers the median image error at
# every block while the feature error moves by a few points; 0.03 is in the middle.
#
# We invert the output of each block: the first pool (layer 2), the second pool
# (layer 5) and the last ReLU (layer 7).  Beside each pre-image we put the deconvnet
# projection of the same layer's strongest activation (``visualize.project``).

# %%
TV = dict(tv_weight=0.03, tv_beta=2.0)
BLOCKS = {0: "layer 0 (Conv2d)", 2: "block 1: layer 2 (pool)", 5: "block 2: layer 5 (pool)",
          7: "block 3: layer 7 (ReLU)"}
trace = net.trace(images[INDEX][None])
results, panels, rows = {0: layer0}, [], []
for layer, label in BLOCKS.items():
    if layer:
        results[layer] = invert.invert_representation(net, x0, layer, max_iter=200, **TV)
    found = results[layer]
    activation = trace.outputs[layer][0]
    channel, h, w = (int(v) for v in np.unravel_index(np.argmax(activation),
                                                        activation.shape))
    projection = vis.project(net, images[INDEX], layer, channel, (h, w), rule="deconvnet")
    window = net.receptive_field(layer).window((h, w))
    support = np.count_nonzero(np.abs(projection).sum(axis=0)) / projection[0].size
    kept = np.count_nonzero(activation) / activation.size
    # the projection as a candidate pre-image: its feature error at the best scale s
    objective = invert.InversionObjective.for_image(net, x0, layer)
    unit = np.linalg.norm(x0) / np.linalg.norm(projection)
    as_preimage = min(objective.terms(sign * scale * unit * projection).feature_error
                      for sign in (1, -1) for scale in np.logspace(-2, 1, 19))
    if layer == 2:       # block 1: one first-layer filter, pasted at the unit's switch
        i, j = divmod(int(trace.records[2][0][0, channel, h, w]), trace.outputs[1].shape[-1])
        pasted = np.zeros_like(projection)
        pasted[:, i:i + 5, j:j + 5] = activation[channel, h, w] * net.layers[0].weight[channel]
        one_filter = np.allclose(projection, pasted, rtol=1e-5,
                                 atol=1e-6 * np.abs(pasted).max())
        print(f"block 1: the projection of channel {channel} at ({h}, {w}) is a · W₀[{channel}] "
              f"pasted at its switch ({i}, {j}) of the 28 × 28 map: {one_filter}")
        assert one_filter
    panels.append(plots.InversionPanel(label, found.image, projection,
                                       f"ch {channel} at ({h}, {w}), "
                                       f"a = {activation.max():.1f}",
                                       found.feature_error, found.image_error, window))
    rows.append((layer, kept, found.feature_error, found.image_error, found.iterations,
                 found.seconds, support, as_preimage))

print("        units  | pre-image:                                 | projection:")
print("layer    ≠ 0   | feature error  image error  iterations   s  | pixels ≠ 0  "
      "feature error")
for layer, kept, feature_error, image_error, iterations, seconds, support, other in rows:
    print(f"{layer:5d}  {kept:6.0%}  | {feature_error:13.2%}  {image_error:11.2%}  "
          f"{iterations:10d}  {seconds:4.1f} | {support:10.0%}  {other:13.0%}")
errors = {layer: (r.feature_error, r.image_error) for layer, r in results.items()}
assert all(errors[layer][0] < 0.2 for layer in (2, 5, 7))       # Φ is matched ...
assert all(errors[layer][1] > 10 * errors[0][1] for layer in (2, 5, 7))   # ... x₀ is not
assert all(row[6] < 0.6 for row in rows)        # a projection stays in its field ...
assert all(row[7] > 0.7 for row in rows)         # ... and is no pre-image at any scale

fig = plots.inversion_figure(x0, panels, f"Test image {INDEX} ({CLASSES[labels[INDEX]]}): "
                             "a pre-image of each layer's whole representation (TV₂, "
                             "λ = 0.03),\nbeside the deconvnet projection of the layer's "
                             "strongest unit")
plots.save_lesson_figure(fig, "11_inversions", thumbnail="11",   # block 3: x̂ and the map
                         thumbnail_axes=[fig.axes[4 * 3 + 1], fig.axes[4 * 3 + 3]])

# %% [markdown]
# Read the table and the figure row by row.
#
# - **Layer 0**: the pre-image *is* the image (0.75 %).  The projection of one unit is
#   one filter placed at that unit (2 % of the pixels): one of the 12 544 numbers the
#   inversion used.
# - **Blocks 1–3**: the pre-image matches the whole representation to 14, 6 and 7 %
#   (feature error), yet differs from the image by 36, 41 and 50 %.  It keeps what the
#   units keep: where the ring is, its colour, its edges; deeper, less of the exact
#   geometry, since a ReLU passes only positive values (37, 56 and 20 % of the units are
#   ≠ 0) and a pool one value per window.  Where the representation says less — on the
#   flat background fewer first-layer units are on than over the whole image (printed
#   below) — the pre-image stays nearer its grey start: x̂ − x₀ is largest there.
# - **The projection** of the strongest unit is a different object: the transpose chain
#   applied to *one* activation, with this image's switches (lessons 5–7; the
#   deconvnet reads no ReLU mask, lesson 9), zero outside that unit's receptive field
#   (2, 11 and 44 % of the pixels).  At block 1 it is literally one first-layer filter,
#   a · W₀[c], pasted where the unit's switch points (printed above): the image enters
#   it only through *where* the switch is, and through a.  It is not an image with the
#   layer's representation, and does not try to be: even at the best of 38 scales
#   (either sign, 19 factors from 0.01 to 10 on a log grid, times ‖x₀‖/‖p‖) its feature
#   error is 79–103 %, where the pre-images reach 6–14 %.
#
# %%
on = trace.outputs[1][0] > 0                         # the first ReLU's units that are on
corners = np.mean([on[:, rows_, cols_].mean() for rows_ in (slice(0, 6), slice(-6, None))
                   for cols_ in (slice(0, 6), slice(-6, None))])
print(f"first-layer units on: {on.mean():.0%} over the 28 × 28 maps, {corners:.0%} in "
      f"their four 6 × 6 corners (flat background)")
assert corners < on.mean()

# %% [markdown]
# How each inversion converges says the same.  The figure plots the data term alone,
# ‖Φ(x) − Φ₀‖²/‖Φ₀‖², not the total, whose regulariser has a floor of its own (λ TV₂ =
# 0.005 at x₀).  From layer 0 (no regulariser) it falls steadily, to 2·10⁻⁷ after 150
# steps: a well-posed least-squares problem.  From the deeper layers it falls fast and
# then levels off between 0.3 and 2 % (printed below).  That is not the regulariser
# holding it up: without one, the layer-5 run ends no better (feature error 7.4 %
# against 5.7 %, exercise 3).  Many images fit the representation about that well
# (exercise 1 finds two; above, two fit it exactly).

# %%
fig = plots.inversion_losses_figure(
    {BLOCKS[layer]: r.data_losses for layer, r in results.items()},
    "the data term ‖Φ(x) − Φ₀‖²/‖Φ₀‖² during L-BFGS-B\n(layers 2, 5, 7 minimise it "
    "+ λ TV₂, λ = 0.03; layer 0 alone)", ylabel="‖Φ(x) − Φ₀‖²/‖Φ₀‖² after k steps")
plots.save_lesson_figure(fig, "11_convergence")
for layer, r in results.items():
    print(f"layer {layer}: data term at steps 0, 50, 100, end: "
          + ", ".join(f"{r.data_losses[min(k, r.iterations)]:.1e}" for k in (0, 50, 100, 999)))
drops = {layer: r.data_losses[0] / r.data_losses[-1] for layer, r in results.items()}
print("data term, start / end: " + ", ".join(f"layer {k}: {v:.0f}×" for k, v in drops.items()))
assert drops[0] > 1000 * max(drops[k] for k in (2, 5, 7))
assert results[0].data_losses[-1] < 1e-6
assert all(0.002 <= results[k].data_losses[-1] <= 0.025 for k in (2, 5, 7))   # levels off

# %% [markdown]
# Synthesis: the seed question, answered
# --------------------------------------
# *"Transposed convolution is not the inverse of convolution (ct(c(i)) ≠ i), so how can
# the deconvnet's output represent the internal activations?"*  In one place, each claim
# with the lesson and the number that measures it.
#
# 1. **ct(c(i)) ≠ i, as the question says.**  The question's own code — ``nn.Conv2d(1,
#    1, 2)`` and a ``ConvTranspose2d`` sharing its weight, on a 10 × 10 input — gives
#    max ``|ct(c(i)) − i|`` = 0.77.  For the 2 × 2 box filter ‖WᵀWx − x‖/‖x‖ = 2.44,
#    still 0.28 after the best rescaling, and W has a 19-dimensional null space that
#    nothing applied to Wx can recover (lesson 2).
# 2. **The transpose is the inverse only when WᵀW = I, and least squares is the inverse
#    wherever one exists.**  A Haar filter bank and an all-pass kernel have ‖WᵀW − I‖
#    below 10⁻¹⁴ (rounding), but the shipped network's first layer has condition number
#    163 (lesson 3).  With full column rank LSQR recovers x to below 10⁻¹¹ where the
#    transpose is off by 2.46; without, the part of x in the null space is lost, 0.177
#    of its norm (3.1 % of its energy, lesson 3).  On the shipped network's first layer
#    LSQR and feature inversion return x₀ to 0.86 % and 0.75 % (0.64 % apart), and Wᵀ W
#    x₀ is off by 20 ‖x₀‖ (lesson 11).
# 3. **Past the first ReLU there is no inverse at this image, and the reason can be
#    counted.**  An image's layer-1 output fixes it when the rows of W of the units that
#    are on have full column rank.  On test image 1 they cannot: 2 273 of 12 544
#    first-layer units are on, fewer than its 3 072 pixels, so those rows have a null
#    space of dimension at least 799; a v in it, 5.0 % of ‖x₀‖ long, gives an image
#    x₀ + v (pixels in [0, 1]) whose every layer's output, the logits included, equals
#    x₀'s to below 10⁻¹⁵ (lesson 11).  The pre-images illustrate it: those of the three
#    blocks match the representation to 14, 6 and 7 % but differ from the image by 36,
#    41 and 50 %, and two random starts give pre-images of layer 5 that both match it
#    (to 7 and 15 %) yet lie 54 % of ‖x₀‖ apart (lesson 11 and its exercise 1).
# 4. **The deconvnet does not invert; it transposes, and it is not the gradient.**  Wᵀ
#    is the gradient of the convolution: ⟨Wx, r⟩ = ⟨x, Wᵀr⟩ to rounding (a relative
#    difference below 10⁻¹⁵ in float64), and the question's 5 × 5 ``x.grad`` equals
#    ``ConvTranspose2d(r)`` exactly (lesson 4).  Unpooling is P(s)ᵀ with the forward
#    pass's switches, which keeps 4 of 16 values (lesson 5).  The deconvnet, the
#    gradient and guided backprop differ only at the ReLUs: of the 12 values that reach
#    the first ReLU in lesson 6's network, backprop passes 11 (4 negative), the
#    deconvnet 8 and guided backprop 7 (none negative) (lesson 6).  So the deconvnet's
#    map is not the gradient: over 8 random directions v, ⟨map, v⟩ misses a·∂a/∂v by as
#    much as 54 % of the largest a·∂a/∂v (lesson 7, exercise 2).  minideconv's three
#    maps agree with PyTorch's and Captum's to rounding: a worst relative error below
#    10⁻¹⁵ (lesson 8).
# 5. **A projection shows one activation, seen through this image's forward pass.**  It
#    is zero outside the unit's receptive field (lesson 7; here 2–44 % of the image), it
#    is no pre-image (its feature error is ≥ 79 % at the best of 38 scales, lesson 11),
#    and at the first pool it is literally one first-layer filter, a · W₀[c], pasted
#    where the unit's switch points (lesson 11).  Over lesson 7's 27 units it correlates
#    with guided backprop at a median 0.98 and with the gradient at 0.79 (lesson 7).
# 6. **What fixes the deconvnet's picture is the switches together with the first-layer
#    filters.**  Compared with the trained map (median signed rank correlation, 16 test
#    images, each one's strongest unit of layer 7, lesson 9): every convolution redrawn
#    on the way back leaves 0.01; another image's switches 0.09, one pool's only 0.36
#    (after layer 2) and 0.45 (after layer 5); the first convolution redrawn alone 0.11;
#    the top one alone 0.61 (guided 0.73, the gradient −0.08).  The deconvnet reads no
#    ReLU mask. The swapped map is exactly the other image's own projection of the unit
#    times a_image / a_other, and it looks like the other image (+0.14), not like the
#    image (−0.01) (lesson 9).
# 7. **The resemblance to the image survives randomizing every weight, and the first
#    layer says why.**  Compared with the image itself, the maps of the deconvnet and
#    guided backprop have a median signed rank correlation of 0.29 and 0.35 in the
#    trained network, and 0.27 and 0.34 with every weight of the network redrawn; the
#    gradient's, 0.07 and 0.02 (lesson 9).  Every map is W₀ᵀ r₀, first-layer filters
#    pasted with the weights r₀: guided backprop pastes all of its weight with the sign
#    with which the filter matched the image there (share 1.00), the deconvnet 0.70, the
#    gradient 0.53, whose filters largely cancel (lesson 10).  So the deconvnet's
#    likeness needs the same W₀ forward and back (W₀ redrawn on the way back only: 0.02)
#    and the switches (the random network without its max-pools: 0.02), not trained
#    weights; guided backprop's maps of the top two classes of one image correlate at
#    0.92 (lesson 10).  By the randomization test of Adebayo et al. (2018, *Sanity
#    checks for saliency maps*, NeurIPS 2018, arXiv:1810.03292), that likeness says
#    nothing about what the network learned: it is what Nie et al. (2018) call partial
#    image recovery, made of the forward pass's bottleneck information (Mahendran &
#    Vedaldi 2016).
#
# So the deconvnet's output represents an activation neither as an inverse would — there
# is none past the first ReLU at this image, and where there is one it is least squares,
# not Wᵀ — nor as the gradient does.  It is the chain of transposes applied to one
# activation: this image's switches choose where the first-layer filters are pasted,
# where they responded most to the image, and so the picture looks like the part of the
# image that excited the unit, with trained weights or random ones alike, as long as the
# way back uses the forward pass's own.

# %%
# the lesson's numbers as the synthesis quotes them: (measured, quoted, tolerance)
quoted = {"layer 0, LSQR": (lsq.lsqr_error, 0.0086, 1e-4),
          "layer 0, L-BFGS-B": (layer0.image_error, 0.0075, 1e-4),
          "layer 0, the two apart": (agreement, 0.0064, 1e-4),
          "layer 0, ‖Wᵀ W x₀ − x₀‖ / ‖x₀‖": (lsq.transpose_error, 20.1, 0.05)}
# within one unit of the quoted last digit; the feature errors within half of it, so that
# the text rounds them correctly
for layer, feature, image_error in ((2, 0.14, 0.36), (5, 0.06, 0.41), (7, 0.07, 0.50)):
    quoted[f"layer {layer}, pre-image feature error"] = (errors[layer][0], feature, 0.005)
    quoted[f"layer {layer}, pre-image image error"] = (errors[layer][1], image_error, 0.01)
quoted["layer 1, units on"] = (active.sum(), 2273, 0)
quoted["the null space, dimension at least"] = (flat.size - active.sum(), 799, 0)
quoted["‖v‖ / ‖x₀‖"] = (np.linalg.norm(v) / np.linalg.norm(flat), 0.050, 0.0005)
quoted["x₀ + v: largest relative difference, layers 1-9"] = (max(same.values()), 0, 1e-15)
quoted["projections, pixels ≠ 0 (largest)"] = (max(row[6] for row in rows), 0.44, 0.005)
quoted["projections, best feature error (smallest)"] = (min(row[7] for row in rows), 0.79,
                                                        0.005)
for name, (measured, text, tolerance) in quoted.items():
    print(f"{name:44s} measured {measured:8.4f}   quoted {text:g}")
    assert abs(measured - text) <= tolerance, name

# %%
print(f"lesson 11 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **One representation, many images.**  Invert layer 5 of test image 1 from the
#    random start with seeds 0 and 1 (no regulariser).  Do the two pre-images match the
#    representation equally well?  How far apart are they, relative to ‖x₀‖?  Then
#    invert layer 1 of test image 0 from the random start and from ``x_init="zeros"``.
#    Which does better?  At the end, count the units that are on for x₀ but off for x̂,
#    and the share of the residual they carry: why can't the optimiser turn them on?
# 2. **Why ``rule="backprop"``?**  At a random image, compare the directional derivative
#    of E along a random v, by central differences, with ⟨∇E, v⟩ from the backward pass
#    of the residual under each of the three rules (``net.backward(residual, trace,
#    rule=...)``), at layer 7.  Which rule gives the gradient?
# 3. **The price of smoothness.**  Invert layer 5 with ``tv_weight`` 0, 0.03, 0.3 and 3.
#    How do the pre-image's TV₂, its feature error and its image error change?  Which
#    weight gives a pre-image as smooth as x₀ itself?
#
# The solutions, which assert every answer, are in
# ``lessons/solutions/11_what_an_inverse_would_look_like.py``.
