# %% [markdown]
"""
Lesson 4: The transpose is the gradient
=======================================

If ``conv_transpose2d`` does not invert the convolution, what *is* it?  It is the
gradient: for y = W x and any signal r on the output,

    ∂⟨W x, r⟩ / ∂x = Wᵀ r = conv_transpose2d(r).

That is why every framework has it — backpropagation sends gradients through a
convolution with exactly this operation — and why the deconvnet, which reuses it, is so
close to a gradient.  We check the identity with finite differences (and PyTorch's
autograd when it is installed), run the question's own ``x.grad`` check with
``nn.Conv2d`` and ``nn.ConvTranspose2d`` (why one weight fits both, and what the biases
do), then look at what stride does to the way back: several
input sizes give one output size, and ``output_padding`` picks which one to return.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import plots, shapes

plt = plots.setup()
start = time.perf_counter()
# sphinx_gallery_thumbnail_number = 2
rng = np.random.default_rng(0)

# %% [markdown]
# The gradient of a linear map
# ----------------------------
# f(x) = ⟨W x, r⟩ = Σ_o r_o (W x)_o is linear in x, and ⟨W x, r⟩ = ⟨x, Wᵀ r⟩, so its
# gradient is Wᵀ r.  We take a general layer — 2 input channels, 3 filters of 3 × 3,
# stride 2, padding 1, on a 7 × 8 image — and compare three things:
#
# - the *adjoint identity* ⟨conv2d(x), r⟩ = ⟨x, conv_transpose2d(r)⟩,
# - Wᵀ r against central finite differences (f(x + h e_i) − f(x − h e_i)) / 2h, one
#   pixel i at a time (exact up to rounding, since f is linear),
# - Wᵀ r against PyTorch's autograd, if PyTorch is installed.

# %%
conv = dict(stride=2, padding=1)
x = rng.standard_normal((1, 2, 7, 8))
weight = rng.standard_normal((3, 2, 3, 3))
y = md.conv2d(x, weight, **conv)
r = rng.standard_normal(y.shape)
grad = md.conv_transpose2d(r, weight, output_size=x.shape[-2:], **conv)
print("x", x.shape, "→ y", y.shape, "; Wᵀr", grad.shape)

# md.dottest draws its own random x and r of these shapes, and raises DotTestError
# when the two sides differ by more than 1e-10 (relative, float64)
adjoint = md.dottest(lambda z: md.conv2d(z, weight, **conv),
                     lambda s: md.conv_transpose2d(s, weight, output_size=(7, 8), **conv),
                     x.shape, y.shape)
print(f"⟨conv2d(x), r⟩ = {adjoint.forward_side:.12f}")
print(f"⟨x, Wᵀ r⟩      = {adjoint.adjoint_side:.12f}")
print(f"relative difference {adjoint.relative_error:.1e}")


def f(z):
    return np.vdot(md.conv2d(z, weight, **conv), r)


h = 1e-3
finite_diff = np.zeros_like(x)
for i in np.ndindex(x.shape):
    step = np.zeros_like(x)
    step[i] = h
    finite_diff[i] = (f(x + step) - f(x - step)) / (2 * h)
fd_error = np.abs(finite_diff - grad).max()
print(f"max |Wᵀr − finite differences| over {x.size} pixels = {fd_error:.1e}")
assert fd_error < 1e-8

# %%
try:
    import torch
except ImportError:
    torch = None
    print("PyTorch is not installed: skipping the autograd comparison and the x.grad / "
          "ConvTranspose2d check (pip install torch to run them).")
if torch is not None:
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, torch.tensor(weight), **conv)
    (autograd,) = torch.autograd.grad((yt * torch.tensor(r)).sum(), xt)   # ∂⟨Wx, r⟩/∂x
    torch_error = np.abs(autograd.numpy() - grad).max()
    print(f"PyTorch {torch.__version__}: max |Wᵀr − autograd| = {torch_error:.1e}")
    assert torch_error < 1e-12

# %% [markdown]
# The question's gradient check, with PyTorch layers
# --------------------------------------------------
# The same identity with the layers of the question: ``c = nn.Conv2d(1, 1, 2)`` on a
# 5 × 5 input x that requires a gradient, any signal r on its 4 × 4 output, and
# ``(c(x) * r).sum().backward()``.  Then ``x.grad`` is Wᵀr — what an
# ``nn.ConvTranspose2d`` given the conv's weight computes from r, and what
# ``md.conv_transpose2d`` computes.
#
# *Why the conv's weight fits* ``ConvTranspose2d`` *unchanged.*  ``nn.Conv2d(C_in,
# C_out, k)`` stores its weight as (C_out, C_in, kh, kw): output channels first.
# ``nn.ConvTranspose2d(in_channels, out_channels, k)`` stores its weight as
# (in_channels, out_channels, kh, kw): *input* channels first.  The transpose of a
# convolution from C_in to C_out channels goes from C_out back to C_in, so it is
# ``nn.ConvTranspose2d(C_out, C_in, k)``, whose weight has the shape
# (in = C_out, out = C_in, kh, kw) — the conv's shape, entry for entry.  And
# ``ConvTranspose2d`` is defined as the adjoint of ``Conv2d`` for the same array: no flip
# and no transposition of the array is needed.  (With groups both shapes become
# (C_out, C_in / groups, kh, kw).)  Below we check it on a 2 → 3 channel layer too.
#
# *What the biases do.*  The conv's bias b adds the constant b to every output: it moves
# c(x) but not ∂⟨c(x), r⟩/∂x, so ``x.grad`` does not depend on it (b receives its own
# gradient, ``c.bias.grad`` = the sum of r over the positions).  A ``ConvTranspose2d``
# has a bias of its own, added to every pixel it returns; the gradient is Wᵀr without
# any such term, so the transposed layer that equals ``x.grad`` is built with
# ``bias=False``.

# %%
if torch is not None:
    from torch import nn

    torch.manual_seed(0)
    c = nn.Conv2d(1, 1, 2)                          # with a bias, as PyTorch draws it
    x5 = torch.rand(1, 1, 5, 5, requires_grad=True)
    out = c(x5)                                     # (1, 1, 4, 4)
    r5 = torch.rand_like(out)
    (out * r5).sum().backward()                     # x5.grad = ∂⟨c(x), r⟩/∂x
    ct = nn.ConvTranspose2d(1, 1, 2, bias=False)
    ct.weight = c.weight                            # the conv's weight, unchanged
    with torch.no_grad():
        by_layer = ct(r5)
    by_minideconv = md.conv_transpose2d(r5.detach().double().numpy(),
                                        c.weight.detach().double().numpy())
    print(f"x: {tuple(x5.shape)}, c(x): {tuple(out.shape)}; conv bias {c.bias.item():.3f}")
    print(f"max |x.grad − ConvTranspose2d(r)|      = "
          f"{(x5.grad - by_layer).abs().max().item():.1e}")
    print(f"max |x.grad − md.conv_transpose2d(r)| = "
          f"{np.abs(x5.grad.double().numpy() - by_minideconv).max():.1e}  (float32)")
    print(f"c.bias.grad = {c.bias.grad.item():.4f} = Σ r = {r5.sum().item():.4f}")
    assert torch.allclose(x5.grad, by_layer, atol=1e-6)
    assert np.abs(x5.grad.double().numpy() - by_minideconv).max() < 1e-5
    assert abs(c.bias.grad.item() - r5.sum().item()) < 1e-4
    with torch.no_grad():                           # with its own bias it is not x.grad
        ct_biased = nn.ConvTranspose2d(1, 1, 2)
        ct_biased.weight = c.weight
        offset = (ct_biased(r5) - x5.grad).mean().item()
    print(f"a ConvTranspose2d with its own bias {ct_biased.bias.item():.3f} returns x.grad "
          f"+ {offset:.3f} everywhere")
    assert abs(offset - ct_biased.bias.item()) < 1e-5

    # The layout, on a layer with 2 input and 3 output channels.
    c23 = nn.Conv2d(2, 3, 3)
    ct32 = nn.ConvTranspose2d(3, 2, 3, bias=False)
    print(f"Conv2d(2, 3, 3).weight: {tuple(c23.weight.shape)} = (C_out, C_in, kh, kw); "
          f"ConvTranspose2d(3, 2, 3).weight: {tuple(ct32.weight.shape)} = "
          f"(in = C_out, out = C_in, kh, kw)")
    assert c23.weight.shape == ct32.weight.shape
    ct32.weight = c23.weight
    x23 = torch.rand(1, 2, 5, 5, requires_grad=True)
    out23 = c23(x23)
    r23 = torch.rand_like(out23)
    (out23 * r23).sum().backward()
    with torch.no_grad():
        layout_error = (ct32(r23) - x23.grad).abs().max().item()
    print(f"2 → 3 channels: max |x.grad − ConvTranspose2d(3, 2)(r)| = {layout_error:.1e}")
    assert layout_error < 1e-5

# %%
fig = plots.image_row({"Wᵀr = conv_transpose2d(r)": grad[0, 0],
                       "finite differences of ⟨Wx, r⟩": finite_diff[0, 0],
                       "difference": finite_diff[0, 0] - grad[0, 0]},
                      suptitle="The transposed convolution is the gradient "
                               "(input channel 0 of 2; each panel its own scale)",
                      shared=False, panel_size=3.0)
plots.save_lesson_figure(fig, "04_gradient_check")

# %% [markdown]
# Stride: several input sizes, one output size
# --------------------------------------------
# The output length of a convolution is o = ⌊(i + 2p − d(k−1) − 1) / s⌋ + 1 (Dumoulin &
# Visin 2016).  With stride s the floor throws away the remainder, so the s input
# lengths i, i + 1, …, i + s − 1 all give the same o.  With k = 3, s = 2, p = 1, inputs of
# length 9 and 10 both give 5.  The transposed convolution must therefore be told which
# size to return: ``output_padding`` a (0 ≤ a < s) adds a rows/columns,
#
#     o′ = s(i′ − 1) − 2p + d(k − 1) + a + 1,
#
# or ``output_size`` names the size directly.  ``minideconv.shapes`` has both directions.

# %%
k, s, p = 3, 2, 1
print("input length i → output length o, and the output_padding a that returns i:")
for i in range(7, 13):
    print(f"   i = {i:2d}  →  o = {shapes.conv_output_length(i, k, s, p)}"
          f",  a = {shapes.output_padding_for_length(i, k, s, p)}")
reachable = list(shapes.conv_transpose_reachable_lengths(5, k, s, p))
print(f"lengths a convolution maps to 5: {reachable}")
assert reachable == [9, 10]

square = np.ones((1, 1, 3, 3))
signal = rng.standard_normal((1, 1, 5, 5))
back_a0 = md.conv_transpose2d(signal, square, stride=s, padding=p, output_padding=0)
back_a1 = md.conv_transpose2d(signal, square, stride=s, padding=p, output_padding=1)
print("conv_transpose2d of a 5 × 5 signal: output_padding=0 →", back_a0.shape[-2:],
      ", output_padding=1 →", back_a1.shape[-2:])
assert back_a0.shape[-2:] == (9, 9) and back_a1.shape[-2:] == (10, 10)
assert np.array_equal(back_a1[..., :9, :9], back_a0)   # a only adds the last row/column

# %% [markdown]
# Both are correct gradients — for different layers.  With a 10 × 10 input, the gradient
# has to be 10 × 10 (a = 1).  The extra row and column are not zero: the last windows
# read pixel 9.  And stride makes the way back uneven: Wᵀ of a constant signal counts how
# many windows cover each pixel — 1, 2 or 4 for a 3 × 3 kernel with stride 2.  That
# unevenness is the "checkerboard artifact" of transposed convolutions in image
# generators (Odena, Dumoulin & Olah, *Deconvolution and Checkerboard Artifacts*, Distill
# 2016), and any way back through a strided convolution — a deconvnet projection
# included — applies the same uneven Wᵀ.

# %%
coverage = md.conv_transpose2d(np.ones((1, 1, 5, 5)), square, stride=s, padding=p,
                               output_padding=1)[0, 0]
print("windows covering each pixel (top-left 4 × 4 of Wᵀ·1):")
print(coverage[:4, :4])
assert set(np.unique(coverage)) == {1.0, 2.0, 4.0}

lengths = np.arange(1, 17)
outputs = [shapes.conv_output_length(i, k, s, p) for i in lengths]
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained",
                         gridspec_kw=dict(width_ratios=[1.25, 1]))
axes[0].step(lengths, outputs, where="mid", color="0.6", linewidth=1)
axes[0].scatter(lengths, outputs, c=[shapes.output_padding_for_length(i, k, s, p)
                                     for i in lengths], cmap="coolwarm", s=45, zorder=3)
for i in (9, 10):
    axes[0].annotate(f"i = {i}", (i, 5), xytext=(i - 0.3 + 2.0 * (i - 9.5), 7.2),
                     arrowprops=dict(arrowstyle="->", color="black"), ha="center")
axes[0].set_xlabel("input length i")
axes[0].set_ylabel("output length o")
axes[0].set_title("k = 3, s = 2, p = 1: two inputs per output\n"
                  "(blue: output_padding a = 0, red: a = 1)")
axes[0].set_xticks(lengths)
axes[0].grid(alpha=0.3)
plots.image(axes[1], coverage, "Wᵀ·1: windows covering each pixel\n"
            "(3 × 3, stride 2, 10 × 10 input)", signed=False, annotate=True, fmt="{:g}",
            vmax=4, cbar_label="number of windows")
plots.save_lesson_figure(fig, "04_stride_and_sizes", thumbnail="04",
                         thumbnail_axes=[axes[1]])

# %% [markdown]
# What to take away
# -----------------
# - ``conv_transpose2d(r) = Wᵀ r = ∂⟨conv2d(x), r⟩/∂x``: the transposed convolution is the
#   backward pass of a convolution, checked here to rounding error against finite
#   differences (and PyTorch's autograd).  ``nn.ConvTranspose2d(C_out, C_in, k,
#   bias=False)`` with the conv's weight, unchanged, computes ``x.grad``: its weight
#   layout (in = C_out, out = C_in, kh, kw) is the conv's, and neither bias enters the
#   gradient with respect to x.
# - Stride folds s input sizes onto one output size; ``output_padding`` (or
#   ``output_size``) says which one the way back returns.  ``minideconv.shapes`` computes
#   the sizes, the reachable lengths and the padding that recovers a given input.
# - A strided transpose spreads the signal unevenly (1, 2, 4 windows per pixel): another
#   reason why the way back does not look like the input.

# %%
print(f"lesson 4 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **The gradient with respect to the weights.**  ⟨conv2d(x, w), r⟩ is linear in w as
#    well.  On this lesson's layer, check that
#    ``md.conv2d_weight_grad(x, r, w.shape, **conv)`` is its gradient, with
#    ``md.dottest`` and with central finite differences, one weight at a time.
# 2. **Break the transpose three ways.**  Hand ``md.dottest`` a wrong transpose of a
#    layer with 2 → 2 channels: the kernel rotated by 180°, the two channel axes of the
#    weight swapped, and ``output_size`` forgotten.  Which of the mistakes still return
#    an array of the right shape, and what does the test report for each?
# 3. **Sizes and evenness.**  With k = 5, s = 3, p = 1, predict which input lengths give
#    an output of length 4, and the ``output_padding`` that returns each; check with
#    ``shapes`` and by running ``conv2d`` on every length.  Then predict the number of
#    windows covering an interior pixel (Wᵀ·1) with stride 2 for k = 3 and for k = 4:
#    which kernel size makes no checkerboard?
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/04_transpose_is_the_gradient.py``.
