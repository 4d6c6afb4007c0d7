"""
Lesson 4: The transpose is the gradient
=======================================

If ``conv_transpose2d`` does not invert the convolution, what *is* it?  It is the
gradient: for y = W x and any signal r on the output,

    ∂⟨W x, r⟩ / ∂x = Wᵀ r = conv_transpose2d(r).

That is why every framework has it — backpropagation sends gradients through a
convolution with exactly this operation — and why the deconvnet, which reuses it, is so
close to a gradient.  We check the identity with finite differences (and PyTorch's
autograd when it is installed), then look at what stride does to the way back: several
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
    print("PyTorch is not installed: skipping the autograd comparison "
          "(pip install torch to run it).")
if torch is not None:
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.conv2d(xt, torch.tensor(weight), **conv)
    (autograd,) = torch.autograd.grad((yt * torch.tensor(r)).sum(), xt)   # ∂⟨Wx, r⟩/∂x
    torch_error = np.abs(autograd.numpy() - grad).max()
    print(f"PyTorch {torch.__version__}: max |Wᵀr − autograd| = {torch_error:.1e}")
    assert torch_error < 1e-12

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
# 2016), and it shows up in deconvnet projections through strided layers.

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
#   differences (and PyTorch's autograd).
# - Stride folds s input sizes onto one output size; ``output_padding`` (or
#   ``output_size``) says which one the way back returns.  ``minideconv.shapes`` computes
#   the sizes, the reachable lengths and the padding that recovers a given input.
# - A strided transpose spreads the signal unevenly (1, 2, 4 windows per pixel): another
#   reason why the way back does not look like the input.

# %%
print(f"lesson 4 ran in {time.perf_counter() - start:.1f} s")
