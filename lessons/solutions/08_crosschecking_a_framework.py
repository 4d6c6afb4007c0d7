# %% [markdown]
# Lesson 8, solutions to the exercises
# ====================================
#
# Each answer is computed with minideconv and asserted against an independent
# computation: the dot-product test on the network's linearization, float64 as the
# reference for float32, and (when PyTorch and Captum are installed) Captum.  Exercise
# 3 needs PyTorch and Captum and is skipped, with a message, without them; the rest
# needs neither.  Run it as a script; it fails loudly if an answer is wrong.

# %%
import time
import warnings

import numpy as np

import minideconv as md

start = time.perf_counter()
rng = np.random.default_rng(808)

# The lesson's small network: conv 3 → 4 (5 × 5, stride 2, padding 2) → ReLU →
# max-pool 3 × 3 / 2 → conv 4 → 6 (3 × 3, padding 1) → ReLU, on a 24 × 24 image.
image = rng.standard_normal((1, 3, 24, 24))
w1, b1 = rng.standard_normal((4, 3, 5, 5)) / 4, 0.1 * rng.standard_normal(4)
w2, b2 = rng.standard_normal((6, 4, 3, 3)) / 3, 0.1 * rng.standard_normal(6)
a1 = md.conv2d(image, w1, b1, stride=2, padding=2)
p1, s1 = md.max_pool2d(md.relu(a1), 3, 2)
a2 = md.conv2d(p1, w2, b2, padding=1)
h2 = md.relu(a2)


def backward(g, rule):
    """The way back from the top, with ``rule`` at both ReLUs."""
    g = md.relu_backward(g, a2, rule)
    g = md.conv_transpose2d(g, w2, padding=1)
    g = md.max_unpool2d(g, s1, 3, 2, output_size=a1.shape[-2:])
    g = md.relu_backward(g, a1, rule)
    return md.conv_transpose2d(g, w1, stride=2, padding=2, output_size=(24, 24))


# %% [markdown]
# Exercise 1: a dot test for the whole network
# --------------------------------------------
# With this image's ReLU masks and switches fixed, the network (without biases) is a
# linear map z ↦ D₂ W₂ P(s) D₁ W₁ z, written below with the operators.  Its transpose is
# the backprop way back, so the dot-product test passes for ``rule="backprop"``.  The
# deconvnet's way back is no fixed matrix (it depends on the sign of the signal), so it
# is the transpose of nothing, and the test fails: a deconvnet has to be checked against
# a second implementation (Captum, lesson 8), not with a dot test.

# %%
def linearized(z):
    g = md.conv2d(z, w1, stride=2, padding=2) * (a1 > 0)
    planes = g.reshape(g.shape[:2] + (-1,))
    g = np.take_along_axis(planes, s1.reshape(s1.shape[:2] + (-1,)), axis=2)
    g = md.conv2d(g.reshape(s1.shape), w2, padding=1)
    return g * (a2 > 0)


assert linearized(image).shape == h2.shape
tests = {rule: md.dottest(linearized, lambda r, rule=rule: backward(r, rule),
                          image.shape, h2.shape, raise_error=False)
         for rule in md.rules.NAMES}
for rule, test in tests.items():
    print(f"dot test, linearized network / {rule:9s} way back: ⟨F z, r⟩ = "
          f"{test.forward_side:9.4f}, ⟨z, B r⟩ = {test.adjoint_side:9.4f}, "
          f"mismatch {test.relative_error:.1e}")
assert tests["backprop"].relative_error < 1e-10
assert tests["deconvnet"].relative_error > 1e-2 and tests["guided"].relative_error > 1e-2

# %% [markdown]
# Exercise 2: how far apart are float32 and float64?
# --------------------------------------------------
# float32 keeps 24 bits, a relative rounding of 2⁻²⁴ ≈ 6e-8 per operation; a sum of n
# terms drifts by about √n times that.  So float32 results should differ from float64
# by roughly 1e-7 relative — far above the 1e-10 tolerance of a float64 cross-check, far
# below 1e-4.  Measured on the network's first convolution and its transpose, and with
# the dot-product test in float32 (whose default tolerance is 1e-4).

# %%
x32, w1_32, w2_32 = image.astype(np.float32), w1.astype(np.float32), w2.astype(np.float32)
y64 = md.conv2d(image, w1, stride=2, padding=2)
y32 = md.conv2d(x32, w1_32, stride=2, padding=2)
conv_error = np.abs(y32 - y64).max() / np.abs(y64).max()
r = rng.standard_normal(y64.shape)
back64 = md.conv_transpose2d(r, w1, stride=2, padding=2, output_size=(24, 24))
back32 = md.conv_transpose2d(r.astype(np.float32), w1_32, stride=2, padding=2,
                             output_size=(24, 24))
back_error = np.abs(back32 - back64).max() / np.abs(back64).max()
test32 = md.dottest(lambda z: md.conv2d(z, w1_32, stride=2, padding=2),
                    lambda s: md.conv_transpose2d(s, w1_32, stride=2, padding=2,
                                                  output_size=(24, 24)),
                    image.shape, y64.shape, dtype=np.float32)
print(f"float32 vs float64: conv2d {conv_error:.1e}, conv_transpose2d {back_error:.1e} "
      f"(relative); float32 dot test mismatch {test32.relative_error:.1e}")
assert y32.dtype == np.float32 and back32.dtype == np.float32
for error in (conv_error, back_error):
    assert 1e-10 < error < 1e-5
assert test32.relative_error < 1e-4

# %% [markdown]
# Exercise 3 (PyTorch and Captum): a ReLU Captum cannot see
# ---------------------------------------------------------
# Captum's ``NeuronDeconvolution`` changes the backward pass of ``nn.ReLU`` *modules*.
# Write the same network twice in PyTorch: with ``nn.ReLU`` modules, and with
# ``F.relu`` called inside ``forward``.  Prediction: the first agrees with minideconv's
# deconvnet projection; the second, silently, with minideconv's *backprop* projection —
# Captum computed a gradient and called it a deconvnet.  A cross-check against
# minideconv shows it at once; without one, the picture just looks plausible.

# %%
try:
    import captum.attr as captum_attr
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = None
    print("PyTorch or Captum is not installed: exercise 3 skipped "
          "(pip install 'minideconv[crosscheck]').")

if torch is not None:
    warnings.filterwarnings("ignore", category=UserWarning, module=r"captum\.")
    unit = tuple(int(i) for i in np.unravel_index(np.argmax(h2[0]), h2.shape[1:]))
    value = float(h2[(0,) + unit])
    ours = {}
    for rule in md.rules.NAMES:
        start_signal = np.zeros_like(h2)
        start_signal[(0,) + unit] = value
        ours[rule] = backward(start_signal, rule)

    class Modules(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 4, 5, stride=2, padding=2)
            self.relu1 = torch.nn.ReLU()
            self.pool = torch.nn.MaxPool2d(3, 2)
            self.conv2 = torch.nn.Conv2d(4, 6, 3, padding=1)
            self.relu2 = torch.nn.ReLU()
            self.top = torch.nn.Identity()        # the layer whose unit is projected

        def forward(self, z):
            z = self.pool(self.relu1(self.conv1(z)))
            return self.top(self.relu2(self.conv2(z)))

    class Functional(Modules):
        def forward(self, z):                     # the same network, F.relu instead
            z = self.pool(F.relu(self.conv1(z)))
            return self.top(F.relu(self.conv2(z)))

    relative = {}
    for cls in (Modules, Functional):
        model = cls().double().eval()
        with torch.no_grad():
            for module, w, b in [(model.conv1, w1, b1), (model.conv2, w2, b2)]:
                module.weight.copy_(torch.tensor(w))
                module.bias.copy_(torch.tensor(b))
        captum_map = value * captum_attr.NeuronDeconvolution(model, model.top).attribute(
            torch.tensor(image), neuron_selector=unit).detach().numpy()
        for rule in ("deconvnet", "backprop"):
            relative[cls.__name__, rule] = (np.abs(captum_map - ours[rule]).max()
                                            / np.abs(ours[rule]).max())
        print(f"{cls.__name__:10s}: Captum NeuronDeconvolution vs minideconv deconvnet "
              f"{relative[cls.__name__, 'deconvnet']:.1e}, vs minideconv backprop "
              f"{relative[cls.__name__, 'backprop']:.1e}")
    assert relative["Modules", "deconvnet"] < 1e-10
    assert relative["Modules", "backprop"] > 1e-3
    assert relative["Functional", "backprop"] < 1e-10
    assert relative["Functional", "deconvnet"] > 1e-3

# %%
print(f"solutions of lesson 8 ran in {time.perf_counter() - start:.1f} s")
