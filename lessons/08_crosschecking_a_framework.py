# %% [markdown]
"""
Lesson 8: Cross-checking a framework
====================================

A visualization is only as trustworthy as the code behind it, and a wrong deconvnet
still draws plausible pictures.  minideconv is an *independent* implementation — loops
and explicit matrices, no autograd — so it can check a framework, and be checked by it.
Here we compare it with PyTorch (the operators, autograd) and Captum (the deconvnet and
guided backprop), find the one place where a common PyTorch recipe is wrong
(``max_unpool2d`` with overlapping windows), and list the tests that catch such bugs in
your own implementation.  Without PyTorch the lesson still runs the framework-free
checks and says what it skipped.
"""

# %%
import time

import numpy as np

import minideconv as md
from minideconv import plots, shapes

plt = plots.setup()
start = time.perf_counter()
rng = np.random.default_rng(8)

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None
    print("NOTE: PyTorch is not installed — the comparisons with PyTorch and Captum are "
          "skipped; only the framework-free checks run.  "
          "pip install 'minideconv[crosscheck]' to run everything.")
try:
    import warnings

    import captum.attr as captum_attr
    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
except ImportError:
    captum_attr = None
    if torch is not None:
        print("NOTE: Captum is not installed — the deconvnet/guided comparisons with "
              "Captum are skipped (pip install captum).")


def relative_error(ours, reference):
    """max |ours − reference| / max |reference|."""
    ours, reference = np.asarray(ours, dtype=float), np.asarray(reference, dtype=float)
    return float(np.abs(ours - reference).max() / np.abs(reference).max())


errors = {}            # check → relative error, for the summary figure
TOLERANCE = 1e-10      # float64; use about 1e-4 for float32

# %% [markdown]
# Checks that need no framework
# -----------------------------
# Two tests catch most bugs in a hand-written backward pass, and need nothing but the
# forward operator:
#
# - the *dot-product (adjoint) test*: for random x and r, ⟨A x, r⟩ = ⟨x, B r⟩ holds for
#   every x and r exactly when B = Aᵀ.  For max-pooling, A = P(s) with the switches of x;
# - *finite differences* of ⟨f(x), r⟩ (lesson 4).
#
# We run the dot-product test on minideconv's convolution (stride 2, padding 1,
# dilation 2, groups 2, on an odd size where ``output_size`` matters) and on its pooling
# with overlapping 3 × 3 / stride 2 windows.

# %%
conv = dict(stride=2, padding=1, dilation=2, groups=2)
x = rng.standard_normal((2, 4, 11, 13))
weight = rng.standard_normal((6, 2, 3, 3))
y = md.conv2d(x, weight, **conv)
r = rng.standard_normal(y.shape)
# md.dottest: ⟨A x, r⟩ against ⟨x, B r⟩ on its own random x and r; DotTestError if they
# differ by more than rtol (relative)
adjoint_tests = {"conv2d / conv_transpose2d": md.dottest(
    lambda z: md.conv2d(z, weight, **conv),
    lambda s: md.conv_transpose2d(s, weight, output_size=(11, 13), **conv),
    x.shape, y.shape, rtol=TOLERANCE)}

pooled, switches = md.max_pool2d(x, 3, 2)
r_pool = rng.standard_normal(pooled.shape)


def pool_at_switches(z):
    """P(s) z: the entries of z at the switches s of x (max-pooling with its switches
    fixed: the linear map whose transpose max_unpool2d is)."""
    planes = z.reshape(z.shape[:2] + (-1,))
    flat = switches.reshape(switches.shape[:2] + (-1,))
    return np.take_along_axis(planes, flat, axis=2).reshape(switches.shape)


assert np.array_equal(pool_at_switches(x), pooled)
adjoint_tests["max_pool2d / max_unpool2d"] = md.dottest(
    pool_at_switches, lambda s: md.max_unpool2d(s, switches, 3, 2, output_size=(11, 13)),
    x.shape, pooled.shape, rtol=TOLERANCE)
for name, test in adjoint_tests.items():
    errors[f"adjoint test: {name}"] = test.relative_error
    print(f"adjoint test {name}: ⟨A x, r⟩ = {test.forward_side:.10f}, "
          f"⟨x, Aᵀ r⟩ = {test.adjoint_side:.10f}\n    relative mismatch "
          f"{test.relative_error:.1e}")

# %% [markdown]
# The operators against PyTorch
# -----------------------------
# Same inputs, float64, one operator at a time.  ``conv_transpose2d`` is compared twice:
# with ``torch.nn.functional.conv_transpose2d`` (``output_padding`` from
# ``minideconv.shapes``) and with the input gradient autograd computes for ``conv2d``.

# %%
if torch is not None:
    t = torch.tensor
    xt = t(x, requires_grad=True)
    wt = t(weight, requires_grad=True)
    yt = F.conv2d(xt, wt, **conv)
    errors["conv2d"] = relative_error(y, yt.detach().numpy())

    back = md.conv_transpose2d(r, weight, output_size=(11, 13), **conv)
    pads = tuple(shapes.output_padding_for_length(n, 3, 2, 1, 2) for n in (11, 13))
    errors["conv_transpose2d vs F.conv_transpose2d"] = relative_error(
        back, F.conv_transpose2d(t(r), t(weight), output_padding=pads, **conv).numpy())
    grad_x, grad_w = torch.autograd.grad((yt * t(r)).sum(), (xt, wt))      # ∂⟨y, r⟩
    errors["conv_transpose2d vs autograd"] = relative_error(back, grad_x.numpy())
    errors["conv2d_weight_grad vs autograd"] = relative_error(
        md.conv2d_weight_grad(x, r, weight.shape, **conv), grad_w.numpy())

    x_t = t(x, requires_grad=True)
    pooled_t, switches_t = F.max_pool2d(x_t, 3, 2, return_indices=True)
    errors["max_pool2d"] = relative_error(pooled, pooled_t.detach().numpy())
    assert np.array_equal(switches, switches_t.numpy()), "switches differ"
    (pool_grad,) = torch.autograd.grad((pooled_t * t(r_pool)).sum(), x_t)
    ours_unpool = md.max_unpool2d(r_pool, switches, 3, 2, output_size=(11, 13))
    errors["max_unpool2d vs autograd of max_pool2d"] = relative_error(ours_unpool,
                                                                      pool_grad.numpy())

    a = rng.standard_normal((2, 3, 5, 5))
    g = rng.standard_normal(a.shape)
    at, gt = t(a), t(g)
    torch_rules = {"backprop": gt * (at > 0), "deconvnet": F.relu(gt),
                   "guided": F.relu(gt) * (at > 0)}
    for rule, reference in torch_rules.items():
        errors[f"relu_backward ({rule})"] = relative_error(md.relu_backward(g, a, rule),
                                                           reference.numpy())
    for name, error in errors.items():
        if not name.startswith("adjoint"):
            print(f"{name:45s} {error:.1e}")
        assert error < TOLERANCE, name
    print("switches: identical to torch's return_indices")

# %% [markdown]
# Projections against autograd and Captum
# ---------------------------------------
# A small network with the deconvnet's ingredients, overlapping pooling included:
# conv 3 → 4 (5 × 5, stride 2, padding 2) → ReLU → max-pool 3 × 3 / 2 → conv 4 → 6
# (3 × 3, padding 1) → ReLU.  We project the strongest top-layer activation a back to the
# 24 × 24 input with the three rules (lesson 6), the signal starting at the value a:
#
# - backprop against a · ∂a/∂x from ``torch.autograd``;
# - deconvnet against Captum's ``NeuronDeconvolution`` (times a);
# - guided against Captum's ``NeuronGuidedBackprop`` (times a).
#
# Captum's conventions matter: it overrides the backward of ``nn.ReLU`` *modules* only
# (a functional ``F.relu`` in ``forward`` is silently left as the gradient), one module
# per call site, not in-place; and its ``Saliency`` takes absolute values by default.

# %%
image = rng.standard_normal((1, 3, 24, 24))
w1, b1 = rng.standard_normal((4, 3, 5, 5)) / 4, 0.1 * rng.standard_normal(4)
w2, b2 = rng.standard_normal((6, 4, 3, 3)) / 3, 0.1 * rng.standard_normal(6)

a1 = md.conv2d(image, w1, b1, stride=2, padding=2)
h1 = md.relu(a1)
p1, s1 = md.max_pool2d(h1, 3, 2)
a2 = md.conv2d(p1, w2, b2, padding=1)
h2 = md.relu(a2)
unit = np.unravel_index(np.argmax(h2[0]), h2.shape[1:])
value = h2[(0,) + unit]
unit = tuple(int(i) for i in unit)
print(f"strongest top activation: channel {unit[0]} at {unit[1:]}, value {value:.3f}")


def project(rule):
    """minideconv's projection: the transposes, with the rule at each ReLU."""
    g = np.zeros_like(h2)
    g[(0,) + unit] = value
    g = md.relu_backward(g, a2, rule)
    g = md.conv_transpose2d(g, w2, padding=1)
    g = md.max_unpool2d(g, s1, 3, 2, output_size=h1.shape[-2:])
    g = md.relu_backward(g, a1, rule)
    return md.conv_transpose2d(g, w1, stride=2, padding=2, output_size=(24, 24))


ours = {rule: project(rule) for rule in md.rules.NAMES}

# %%
if torch is not None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 5, stride=2, padding=2), torch.nn.ReLU(),
        torch.nn.MaxPool2d(3, 2),
        torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU()).double().eval()
    with torch.no_grad():
        for module, w, b in [(model[0], w1, b1), (model[3], w2, b2)]:
            module.weight.copy_(torch.tensor(w))
            module.bias.copy_(torch.tensor(b))
    image_t = torch.tensor(image, requires_grad=True)
    out = model(image_t)
    assert relative_error(h2, out.detach().numpy()) < TOLERANCE
    (saliency,) = torch.autograd.grad(out[(0,) + unit], image_t)
    errors["projection: backprop vs autograd"] = relative_error(
        ours["backprop"], value * saliency.numpy())
    if captum_attr is not None:
        neuron = unit
        captum_maps = {
            "deconvnet": captum_attr.NeuronDeconvolution(model, model[4]),
            "guided": captum_attr.NeuronGuidedBackprop(model, model[4])}
        for rule, method in captum_maps.items():
            reference = value * method.attribute(torch.tensor(image),
                                                 neuron_selector=neuron).detach().numpy()
            errors[f"projection: {rule} vs Captum"] = relative_error(ours[rule], reference)
    for name in errors:
        if name.startswith("projection"):
            print(f"{name:45s} {errors[name]:.1e}")
            assert errors[name] < TOLERANCE, name

# %% [markdown]
# The max_unpool2d caveat
# -----------------------
# Many hand-written PyTorch deconvnets unpool with ``F.max_unpool2d``.  It *assigns* each
# value to its switch (one write survives), while the transpose P(s)ᵀ *adds*: where 3 × 3
# / 2 windows overlap and share a switch, ``max_unpool2d`` drops all but one of the
# signals (lesson 5).  We write that deconvnet in PyTorch and compare it with the true
# transpose — and run the dot-product test on ``F.max_unpool2d``, which catches it.
# Which of the shared values survives is not even fixed: on the CPU it depends on the
# number of threads.

# %%
if torch is not None:
    with torch.no_grad():
        x1 = model[0](torch.tensor(image))
        pooled_t, idx = F.max_pool2d(F.relu(x1), 3, 2, return_indices=True)
        g = torch.zeros_like(out)
        g[(0,) + unit] = float(value)
        g = F.relu(g)
        g = F.conv_transpose2d(g, model[3].weight, padding=1)
        g = F.max_unpool2d(g, idx, 3, 2, output_size=x1.shape[-2:])
        g = F.relu(g)
        handwritten = F.conv_transpose2d(g, model[0].weight, stride=2, padding=2,
                                         output_padding=1).numpy()
    errors["torch deconvnet (F.max_unpool2d) vs transpose"] = relative_error(
        handwritten, ours["deconvnet"])
    torch_adjoint = md.dottest(                                   # ⟨P x, r⟩ vs ⟨x, U r⟩
        pool_at_switches, lambda s: F.max_unpool2d(t(s), t(switches), 3, 2,
                                                   output_size=(11, 13)).numpy(),
        x.shape, pooled.shape, raise_error=False)
    errors["adjoint test: torch F.max_unpool2d"] = torch_adjoint.relative_error
    print(f"deconvnet with F.max_unpool2d vs the transpose: relative difference "
          f"{errors['torch deconvnet (F.max_unpool2d) vs transpose']:.2f}")
    print(f"dot-product test of F.max_unpool2d: ⟨P x, r⟩ = {torch_adjoint.forward_side:.4f}"
          f" but ⟨x, U r⟩ = {torch_adjoint.adjoint_side:.4f}, relative mismatch "
          f"{errors['adjoint test: torch F.max_unpool2d']:.2f}  (minideconv's: "
          f"{errors['adjoint test: max_pool2d / max_unpool2d']:.1e})")
    assert errors["torch deconvnet (F.max_unpool2d) vs transpose"] > 1e-3
    assert errors["adjoint test: torch F.max_unpool2d"] > 1e-3

    # the 5 × 5 example of lesson 5, with one and with two threads
    r4 = t([[[[1.0, 2.0], [3.0, 4.0]]]])
    centre = torch.full((1, 1, 2, 2), 12)
    threads = torch.get_num_threads()
    seen = {}
    for n in (1, 2):
        torch.set_num_threads(n)
        seen[n] = sorted({F.max_unpool2d(r4, centre, 3, 2, output_size=(5, 5))[0, 0, 2, 2]
                          .item() for _ in range(50)})
    torch.set_num_threads(threads)
    print(f"F.max_unpool2d at the shared switch (true value 10), 50 calls each: "
          f"1 thread → {seen[1]}, 2 threads → {seen[2]}")
    assert all(v in (1.0, 2.0, 3.0, 4.0) for values in seen.values() for v in values)

# %%
names = list(errors)
values = np.array([errors[n] for n in names])
floor = 1e-18
fig, ax = plt.subplots(figsize=(11, 0.36 * len(names) + 2.0), layout="constrained")
colors = ["C2" if v <= TOLERANCE else "C3" for v in values]
ax.barh(range(len(names)), np.where(values > 0, values, 0), color=colors, left=floor)
for k, v in enumerate(values):
    ax.text(v * 1.8 if v > 0 else floor * 2, k, f"{v:.1e}" if v > 0 else "0 (exact)",
            va="center", fontsize=9)
ax.set_xscale("log")
ax.set_xlim(floor, 1e3)
ax.axvline(TOLERANCE, color="0.3", linestyle="--", linewidth=1)
ax.text(TOLERANCE * 1.5, 0.99, "tolerance 1e-10 (float64)", fontsize=9, color="0.3",
        va="top", transform=ax.get_xaxis_transform())
ax.set_yticks(range(len(names)))
ax.set_yticklabels(names)
ax.invert_yaxis()
ax.set_xlabel("relative error, log scale:  max|a − b| / max|b|  (two computations a, b);"
              "\nadjoint tests:  |⟨A x, r⟩ − ⟨x, B r⟩| / max(|⟨A x, r⟩|, |⟨x, B r⟩|)")
if torch is not None:
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="C2", label="agrees to rounding (≤ 1e-10)"),
                       Patch(color="C3", label="fails: torch's F.max_unpool2d overwrites "
                                               "shared switches")],
              loc="center right", frameon=True, framealpha=0.95, fontsize=9)
    title = ("minideconv against PyTorch and Captum — green: they agree to rounding;\n"
             "red: the checks of torch's F.max_unpool2d, which is not the transpose")
else:
    title = "Framework-free self-checks (PyTorch not installed)"
ax.set_title(title)
plots.save_lesson_figure(fig, "08_crosscheck_summary", thumbnail="08")

# %%
if torch is not None:
    panels = {"minideconv deconvnet": ours["deconvnet"][0].sum(0)}
    if captum_attr is not None:
        panels["Captum NeuronDeconvolution × a"] = value * captum_attr.NeuronDeconvolution(
            model, model[4]).attribute(torch.tensor(image), neuron_selector=neuron
                                       ).detach().numpy()[0].sum(0)
    panels["hand-written, F.max_unpool2d"] = handwritten[0].sum(0)
    panels["hand-written − minideconv"] = (handwritten - ours["deconvnet"])[0].sum(0)
    fig = plots.image_row(panels, suptitle="Deconvnet projection of one activation "
                          "(summed over RGB; one colour scale)", shared=True,
                          panel_size=3.0)
    plots.save_lesson_figure(fig, "08_unpool_caveat")

# %% [markdown]
# How to check your own implementation
# ------------------------------------
# - Run the dot-product test on every forward/backward pair (conv/transposed conv,
#   pool/unpool with fixed switches, linear layers), with random inputs, on sizes that
#   are *not* multiples of the stride, with overlapping pooling windows, groups and
#   dilation.
# - Check the gradient rule with finite differences, and the deconvnet and guided rules
#   against a second implementation (minideconv, Captum) in float64, where agreement
#   should be at the level of rounding (1e-10 relative here; about 1e-4 in float32).
# - On small cases compare with the explicit matrices of ``minideconv.matrices``: you can
#   look at W, Wᵀ, P(s) and the ReLU factors entry by entry (lessons 1, 5, 6).
# - Never unpool with ``F.max_unpool2d`` when windows overlap; use the gradient of
#   ``max_pool2d`` (or a scatter-*add* into the switches), as ``minideconv.max_unpool2d``
#   does.


# %% [markdown]
# The whole check in one call
# ---------------------------
# ``minideconv.interop.torch.crosscheck`` does all of the above for every layer of a
# network: it converts it to PyTorch (or a PyTorch module that ``torch.fx`` can trace
# to minideconv, lesson 12), compares the forward activations, projects each layer's
# strongest activation back with the three rules against autograd and Captum, and
# measures the hand-written ``F.max_unpool2d`` deconvnet against the true transpose.
# ``minideconv crosscheck`` runs it on built-in architectures from the command line.

# %%
if torch is not None and captum_attr is not None:
    from minideconv.data import load_dataset, load_model
    from minideconv.interop.torch import crosscheck

    report = crosscheck(load_model(), load_dataset("test", n=1)[0].astype(np.float64))
    print(report)
    assert report.passed, "minideconv and PyTorch/Captum disagree beyond 1e-10"
else:
    print("crosscheck needs torch and captum: skipped")

# %%
print(f"lesson 8 ran in {time.perf_counter() - start:.1f} s")

# %% [markdown]
# Exercises
# ---------
# 1. **A dot test for a whole network.**  With the ReLU masks and switches of one
#    forward pass fixed, this lesson's small network (biases left out) is a linear map.
#    Write it with the operators and dot-test it against the way back with each rule.
#    Which pass?  What does that say about how a deconvnet implementation can be
#    checked?
# 2. **float32.**  Predict how far float32 results are from float64 (relative), then run
#    one convolution and its transpose in both, and ``md.dottest`` in float32.  What
#    tolerance does a float32 cross-check need?
# 3. **(needs PyTorch and Captum)** Write this lesson's network in PyTorch twice: with
#    ``nn.ReLU`` modules, and with ``F.relu`` called inside ``forward``.  Predict which
#    minideconv projection Captum's ``NeuronDeconvolution`` matches in each case, and
#    check.
#
# The solutions, which assert every answer against an independent computation, are in
# ``lessons/solutions/08_crosschecking_a_framework.py`` (exercise 3 is skipped there
# when PyTorch or Captum is missing).
