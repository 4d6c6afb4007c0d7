"""What an inverse of a learned representation looks like (Mahendran & Vedaldi 2015).

A deconvnet projection (``minideconv.visualize.project``) passes *one* activation down
by transposes, using the forward pass's switches and ReLU masks.  An *inverse* asks the
opposite question: given the whole representation Φ₀ = Φ_l(x₀) at the output of
``net.layers[l]``, which images x have (nearly) that representation?  Mahendran &
Vedaldi ("Understanding deep image representations by inverting them", CVPR 2015) find
one, a *pre-image*, by minimising

    E(x) = ‖Φ_l(x) − Φ₀‖² / ‖Φ₀‖²  +  λ_TV · TV_β(x)  +  λ_α · N_α(x)

over the image x, from a random start, here with scipy's L-BFGS-B in float64.

The data term.  Dividing by ‖Φ₀‖² makes it scale-free: E = 1 for Φ(x) = 0, and
√(data term) is the *relative feature error* ‖Φ(x) − Φ₀‖ / ‖Φ₀‖.  Its gradient is

    ∇_x ‖Φ(x) − Φ₀‖² = 2 J_Φ(x)ᵀ (Φ(x) − Φ₀),

the chain of transposes applied to the residual: ``net.backward(residual, trace,
rule="backprop")`` — minideconv's own backward pass, with the ReLU masks and switches of
the *current* x (not of x₀).  The deconvnet rule would not give this gradient.

For a linear layer (the first convolution, Φ₀(x) = W x + b) the data term is the
least-squares problem min‖W x − (Φ₀ − b)‖², which
``minideconv.matrices.least_squares_inverse`` solves by LSQR; where W has full column
rank both give x₀.  Past a ReLU or a max-pool Φ forgets (negative pre-activations, the
non-maxima of each window), many images share Φ₀, and which one the optimiser finds
depends on the start and the regulariser.

The regularisers (both normalised per pixel value, so that their weights do not depend
on the image size; C channels, H × W pixels):

* total variation with exponent β (``tv_beta``, M&V's TV^β):

      TV_β(x) = (1 / HW) Σ_{i,j} ( |∇x|²_{i,j} + ε )^{β/2},
      |∇x|²_{i,j} = Σ_c [(x_{c,i,j+1} − x_{c,i,j})² + (x_{c,i+1,j} − x_{c,i,j})²]

  forward differences, a difference past the last row or column counted as 0, ε =
  ``tv_eps`` (it only matters for β < 2, where it keeps the term differentiable at
  flat regions; ε = 0 is allowed for β ≥ 2).  β = 2 (the default) is a quadratic
  smoothness penalty, which prefers a gentle ramp to a sharp edge of the same height;
  β = 1 is the classical TV, which charges both the same.  Lesson 11 uses β = 2 and
  λ_TV = 0.03 on the shipped network (at x₀ that costs about what a 5–7 % feature error
  does).
* the α-norm (``alpha``, default 6 as M&V), a soft box that keeps pixels in range:

      N_α(x) = (1 / CHW) Σ |(x − m) / h|^α,  m, h: centre and half-width of ``pixel_range``

  ≤ 1 while every pixel stays inside ``pixel_range`` (default (0, 1), the package's
  images), growing fast outside.

Starts.  The gradient passes only the units that are on at the *current* x, so a unit
that should be on but is off at x̂ gets no say: from a poor start L-BFGS-B can stop with
a large residual that sits entirely at such units (lesson 11's exercise 1 shows one).
The default start is grey noise (``x_init="random"``); ``"zeros"`` or an array are the
alternatives, and ``Inversion.feature_error`` says how well a start worked.

Everything is deterministic: the random start is drawn from
``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .. import checks
from ..nn import Network
from .projection import check_layer

#: The ways ``x_init`` may name a start (besides an array).
STARTS = ("random", "zeros")
#: Standard deviation of the random start, as a fraction of ``pixel_range``'s width.
RANDOM_START_SCALE = 0.05


# --------------------------------------------------------------------------- regularisers

def total_variation(x, beta: float = 2.0, eps: float = 1e-8):
    """``(TV_β(x), ∇TV_β(x))`` for one image x (C, H, W), as in the module docstring:
    the mean over pixels of (squared gradient magnitude, summed over channels, + eps)^(β/2).
    Computed in float64."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"x must be one image (C, H, W), got shape {x.shape}")
    beta, eps = _check_beta_eps(beta, eps)
    dx = np.zeros_like(x)
    dy = np.zeros_like(x)
    dx[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]
    dy[:, :-1, :] = x[:, 1:, :] - x[:, :-1, :]
    squared = (dx ** 2 + dy ** 2).sum(axis=0) + eps           # (H, W)
    pixels = squared.size
    value = float(np.sum(squared ** (beta / 2)) / pixels)
    # d/dx of s^(β/2) = (β/2) s^(β/2 − 1) · ds, ds = 2 dx d(dx) + 2 dy d(dy)
    weight = beta * squared ** (beta / 2 - 1) / pixels          # (H, W): β s^(β/2−1) / HW
    wx, wy = weight * dx, weight * dy                           # broadcast over channels
    grad = np.zeros_like(x)
    grad[:, :, 1:] += wx[:, :, :-1]
    grad[:, :, :-1] -= wx[:, :, :-1]
    grad[:, 1:, :] += wy[:, :-1, :]
    grad[:, :-1, :] -= wy[:, :-1, :]
    return value, grad


def alpha_norm(x, alpha: float = 6.0, pixel_range=(0.0, 1.0)):
    """``(N_α(x), ∇N_α(x))``: the mean of |(x − m)/h|^α, m and h the centre and half-width
    of ``pixel_range``.  Computed in float64."""
    x = np.asarray(x, dtype=np.float64)
    alpha = checks.check_real(alpha, "alpha", 1)
    low, high = _check_pixel_range(pixel_range)
    centre, half = (low + high) / 2, (high - low) / 2
    u = (x - centre) / half
    value = float(np.mean(np.abs(u) ** alpha))
    grad = alpha * np.abs(u) ** (alpha - 1) * np.sign(u) / (half * u.size)
    return value, grad


# --------------------------------------------------------------------------- the objective

@dataclass(frozen=True)
class ObjectiveTerms:
    """The parts of E(x) at one x: ``data`` = ‖Φ(x) − Φ₀‖²/‖Φ₀‖², ``tv`` = TV_β(x) and
    ``alpha`` = N_α(x) (unweighted), ``total`` = data + λ_TV tv + λ_α alpha."""

    total: float
    data: float
    tv: float
    alpha: float

    @property
    def feature_error(self) -> float:
        """‖Φ(x) − Φ₀‖ / ‖Φ₀‖."""
        return float(np.sqrt(self.data))


class InversionObjective:
    """E(x) of the module docstring for one network, layer and target, in float64.

    ``objective(x)`` returns ``(E(x), ∇E(x))`` for x of the image's shape (C, H, W) or
    flattened; ``objective.terms(x)`` the parts.  The gradient of the data term is
    ``2 J_Φᵀ (Φ(x) − Φ₀) / ‖Φ₀‖²``, from ``net.backward`` with ``rule="backprop"``.
    Build one with ``InversionObjective.for_image`` (the target is Φ_l(x₀)) or directly
    with a target representation."""

    def __init__(self, net: Network, layer: int | str, target, image_shape, *,
                 tv_weight=0.0, tv_beta=2.0, tv_eps=1e-8, alpha=6.0, alpha_weight=0.0,
                 pixel_range=(0.0, 1.0)):
        self.layer = check_layer(net, layer)
        self.net = _float64(net)
        self.image_shape = tuple(int(v) for v in image_shape)
        if len(self.image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {image_shape!r}")
        self.target = np.asarray(target, dtype=np.float64)
        expected = tuple(self.net.layer_shapes(self.image_shape)[self.layer])
        if self.target.shape[-len(expected):] != expected or \
                self.target.size != int(np.prod(expected)):
            raise ValueError(f"target must have the shape {expected} of the output of "
                             f"{net.describe(self.layer)}, got {self.target.shape}")
        self.target = self.target.reshape((1,) + expected)
        self.scale = float(np.sum(self.target ** 2))
        if not self.scale > 0:
            raise ValueError(f"the representation to invert is zero at "
                             f"{net.describe(self.layer)}: ‖Φ₀‖ = 0, nothing to match")
        self.tv_weight = checks.check_real(tv_weight, "tv_weight", 0)
        self.tv_beta, self.tv_eps = _check_beta_eps(tv_beta, tv_eps)
        self.alpha = checks.check_real(alpha, "alpha", 1)
        self.alpha_weight = checks.check_real(alpha_weight, "alpha_weight", 0)
        self.pixel_range = _check_pixel_range(pixel_range)
        self.evaluations = 0
        self._last = None          # (x, terms) of the last evaluation with its gradient

    @classmethod
    def for_image(cls, net: Network, x0, layer: int | str, **kwargs) -> "InversionObjective":
        """The objective whose target is Φ_layer(x0), x0 one image (C, H, W)."""
        layer = check_layer(net, layer)
        x0 = _check_image(x0, "x0")
        net = _float64(net)
        target = net.trace(x0[None], upto=layer).outputs[layer]
        return cls(net, layer, target, x0.shape, **kwargs)

    def representation(self, x):
        """Φ_layer(x) for one image x (C, H, W), float64, with the batch axis."""
        return self.net.trace(self._image(x)[None], upto=self.layer).outputs[self.layer]

    def _image(self, x):
        return np.asarray(x, dtype=np.float64).reshape(self.image_shape)

    def _evaluate(self, x, gradient: bool):
        image = self._image(x)
        trace = self.net.trace(image[None], upto=self.layer)
        residual = trace.outputs[self.layer] - self.target
        data = float(np.sum(residual ** 2)) / self.scale
        grad = None
        if gradient:
            # ∇‖Φ(x) − Φ₀‖² = 2 J_Φᵀ (Φ(x) − Φ₀): the backward pass of the residual.
            grad = 2.0 * self.net.backward(residual, trace, start=self.layer,
                                           rule="backprop")[0] / self.scale
        tv = alpha = 0.0
        if self.tv_weight:
            tv, tv_grad = total_variation(image, self.tv_beta, self.tv_eps)
            if gradient:
                grad = grad + self.tv_weight * tv_grad
        if self.alpha_weight:
            alpha, alpha_grad = alpha_norm(image, self.alpha, self.pixel_range)
            if gradient:
                grad = grad + self.alpha_weight * alpha_grad
        total = data + self.tv_weight * tv + self.alpha_weight * alpha
        return ObjectiveTerms(total=total, data=data, tv=tv, alpha=alpha), grad

    def terms(self, x) -> ObjectiveTerms:
        """E(x) and its parts (those of the last ``objective(x)`` call when x is its x:
        an optimiser's accepted step is usually the point it evaluated last)."""
        if self._last is not None and np.array_equal(self._last[0], np.ravel(x)):
            return self._last[1]
        return self._evaluate(x, gradient=False)[0]

    def __call__(self, x):
        """``(E(x), ∇E(x))``, the gradient flattened (what scipy.optimize expects)."""
        self.evaluations += 1
        terms, grad = self._evaluate(x, gradient=True)
        self._last = (np.array(x, dtype=np.float64).ravel(), terms)
        return terms.total, grad.ravel()


# --------------------------------------------------------------------------- inversion

@dataclass(frozen=True)
class Inversion:
    """A pre-image found by ``invert_representation``.

    ``image`` (C, H, W) float64 is the pre-image x̂; ``losses[k]`` is E after k L-BFGS-B
    iterations (``losses[0]`` at the start, so ``len(losses) == iterations + 1``) and
    ``data_losses[k]`` its data term ‖Φ(x) − Φ₀‖²/‖Φ₀‖² alone (the regularisers left out);
    ``terms`` are E's parts at x̂; ``feature_error`` = ‖Φ(x̂) − Φ₀‖/‖Φ₀‖;
    ``image_error`` = ‖x̂ − x₀‖/‖x₀‖ (x₀ is known here, the optimiser never sees it);
    ``converged`` is scipy's success flag (a tolerance met, not the iteration limit),
    ``message`` its reason; ``evaluations`` counts objective-and-gradient evaluations
    (one forward and one backward pass each); ``seconds`` is the wall time of the
    optimisation (the only field that varies between identical calls)."""

    image: np.ndarray
    losses: np.ndarray
    data_losses: np.ndarray
    terms: ObjectiveTerms
    feature_error: float
    image_error: float
    layer: int
    iterations: int
    evaluations: int
    converged: bool
    message: str
    seconds: float


def invert_representation(net: Network, x0, layer: int | str, *, tv_weight: float = 0.0,
                          tv_beta: float = 2.0, tv_eps: float = 1e-8, alpha: float = 6.0,
                          alpha_weight: float = 0.0, pixel_range=(0.0, 1.0),
                          x_init=None, max_iter: int = 500, tol: float = 1e-12,
                          memory: int = 20, bounds=None, seed: int = 0) -> Inversion:
    """A pre-image of Φ_layer(x0): argmin_x E(x) of the module docstring, by L-BFGS-B.

    Parameters
    ----------
    net : a ``minideconv.nn`` network, ``Sequential`` or ``Graph`` (float32 or float64; a
        float64 copy is used)
    x0 : one image (C, H, W); its representation at the output of ``net.layers[layer]``
        is the target
    layer : index into ``net.layers`` (negative counts from the end)
    tv_weight, tv_beta, tv_eps : λ_TV ≥ 0, β ≥ 1 and ε ≥ 0 of the TV_β term (ε > 0 when
        β < 2)
    alpha, alpha_weight : α ≥ 1 and λ_α ≥ 0 of the α-norm term
    pixel_range : (low, high), the range the α-norm keeps pixels in and the random start
        is centred on
    x_init : ``None`` or ``"random"`` (the default: the centre of ``pixel_range`` plus
        i.i.d. Gaussian noise of ``RANDOM_START_SCALE`` × its width, from ``seed``),
        ``"zeros"``, or an array of x0's shape
    max_iter : the most L-BFGS-B iterations
    tol : scipy's ``ftol`` (relative decrease of E) and ``gtol`` (largest gradient entry)
    memory : the number of correction pairs L-BFGS keeps (``maxcor``)
    bounds : ``None`` or (low, high) for every pixel (a hard box, L-BFGS-B's bounds)
    seed : the random start's seed

    Returns
    -------
    ``Inversion``.  The same arguments give the same ``image`` and ``losses``.
    """
    from scipy.optimize import minimize

    layer = check_layer(net, layer)
    x0 = _check_image(x0, "x0")
    max_iter = checks.check_int(max_iter, "max_iter", 1)
    memory = checks.check_int(memory, "memory", 1)
    seed = checks.check_int(seed, "seed", 0)
    tol = checks.check_real(tol, "tol", above=0)
    objective = InversionObjective.for_image(
        net, x0, layer, tv_weight=tv_weight, tv_beta=tv_beta, tv_eps=tv_eps, alpha=alpha,
        alpha_weight=alpha_weight, pixel_range=pixel_range)
    start = _start(x_init, x0, objective.pixel_range, seed)
    box = None if bounds is None else [_check_bounds(bounds)] * start.size

    first = objective.terms(start)
    losses, data_losses = [first.total], [first.data]

    def record(intermediate_result):
        losses.append(float(intermediate_result.fun))
        data_losses.append(objective.terms(intermediate_result.x).data)

    began = time.perf_counter()
    result = minimize(objective, start.ravel(), jac=True, method="L-BFGS-B", bounds=box,
                      callback=record,
                      options=dict(maxiter=max_iter, maxcor=memory, ftol=float(tol),
                                   gtol=float(tol), maxls=50))
    seconds = time.perf_counter() - began
    image = result.x.reshape(x0.shape)
    image.setflags(write=False)
    terms = objective.terms(image)
    norm = np.linalg.norm(x0)
    image_error = float(np.linalg.norm(image - x0) / norm) if norm > 0 else \
        float(np.linalg.norm(image))
    losses, data_losses = (np.asarray(v, dtype=np.float64) for v in (losses, data_losses))
    losses.setflags(write=False)
    data_losses.setflags(write=False)
    return Inversion(image=image, losses=losses, data_losses=data_losses, terms=terms,
                     feature_error=terms.feature_error, image_error=image_error,
                     layer=layer, iterations=int(result.nit),
                     evaluations=objective.evaluations, converged=bool(result.success),
                     message=str(result.message), seconds=seconds)


# --------------------------------------------------------------------------- checks

def _float64(net):
    if not isinstance(net, Network):
        raise TypeError(f"net must be a minideconv.nn network (Sequential or Graph), got "
                        f"{type(net).__name__}")
    dtypes = {a.dtype for layer in net.layers for a in layer.params().values()}
    return net if dtypes <= {np.dtype(np.float64)} else net.astype(np.float64)


def _check_image(x, name):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (C, H, W), got {type(x).__name__}")
    if x.ndim != 3:
        raise ValueError(f"{name} must be one image (C, H, W), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} must be a float array, got dtype {x.dtype}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    return x.astype(np.float64)


def _check_beta_eps(beta, eps):
    beta = checks.check_real(beta, "tv_beta", 1, why="TV^β, M&V use 1 or 2")
    eps = checks.check_real(eps, "tv_eps")
    if eps < 0 or (beta < 2 and eps == 0):
        raise ValueError(f"tv_eps must be >= 0, and > 0 when tv_beta < 2 (the term is not "
                         f"differentiable at flat pixels otherwise), got {eps}")
    return beta, eps


def _check_pair(pair, name):
    if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
        raise TypeError(f"{name} must be a pair (low, high), got {pair!r}")
    low, high = (checks.check_real(v, name) for v in pair)
    if not low < high:
        raise ValueError(f"{name} must have low < high, got {tuple(pair)}")
    return low, high


def _check_pixel_range(pixel_range):
    return _check_pair(pixel_range, "pixel_range")


def _check_bounds(bounds):
    return _check_pair(bounds, "bounds")


def _start(x_init, x0, pixel_range, seed) -> np.ndarray:
    if x_init is None or (isinstance(x_init, str) and x_init == "random"):
        low, high = pixel_range
        rng = np.random.default_rng(seed)
        return (low + high) / 2 + RANDOM_START_SCALE * (high - low) * \
            rng.standard_normal(x0.shape)
    if isinstance(x_init, str):
        if x_init == "zeros":
            return np.zeros(x0.shape)
        raise ValueError(f"x_init must be None, one of {STARTS} or an array, "
                         f"got {x_init!r}")
    if not isinstance(x_init, np.ndarray):
        raise TypeError(f"x_init must be None, one of {STARTS} or an array, got "
                        f"{type(x_init).__name__}")
    if x_init.shape != x0.shape:
        raise ValueError(f"x_init must have x0's shape {x0.shape}, got {x_init.shape}")
    if not np.all(np.isfinite(x_init)):
        raise ValueError("x_init must be finite")
    return np.asarray(x_init, dtype=np.float64).copy()


__all__ = ["invert_representation", "Inversion", "InversionObjective", "ObjectiveTerms",
           "total_variation", "alpha_norm", "STARTS", "RANDOM_START_SCALE"]
