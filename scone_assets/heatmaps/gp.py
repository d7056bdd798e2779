"""SCONE's 2D Gaussian process, in two back-ends that give one answer.

The model (SCONE's, after avocado): flux over (MJD, wavelength) with kernel
A * Matern-3/2(r), r^2 = dt^2 / l_t^2 + dw^2 / l_w^2, flux errors as white
noise, no mean. Free parameters, in george's order and log space:
(log A, log l_t^2, log l_w^2), started at A = (0.5 scale)^2, l_t = 20 d,
l_w = 6000 A; log A bounded to +-10 around its start, log l_t^2 to
[0, log(1000^2)], log l_w^2 free (as SCONE leaves it). The marginal likelihood
is maximised with scipy's L-BFGS-B and analytic gradients in both back-ends.

- `george`: george itself, the reference.
- `fast`: the same model and optimiser, one Cholesky factorisation per
  likelihood-and-gradient evaluation (george factorises twice), K^-1 from a
  blocked triangular inverse and `lauum` (george solves against the identity),
  the amplitude gradient in O(n), all of it compiled (`kernels.py`, calling
  scipy's LAPACK directly through `linalg.py`) into buffers reused across light
  curves; the prediction starts from the last evaluation's L^-1, builds grid
  kernel values in one compiled pass over its wavelength x time structure, and
  gets the variance from one in-place triangular multiply with L^-1 (george
  solves with the Cholesky factor twice).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import blas
from scipy.optimize import minimize

from scone_assets.heatmaps.kernels import column_sumsq, matern_grid, nll_and_grad, pair_differences
from scone_assets.heatmaps.lbfgsb import lbfgsb

L_T0 = 20.0
L_W0 = 6000.0
WHITE_NOISE = np.exp(-27.40787756)  # george's default (frozen) white-noise variance
GRID_BLOCK_ROWS = 720  # measured best on 2-core AMD EPYC (L2-sized blocks), see BENCHMARKS.md


class GPFitError(RuntimeError):
    """The fit failed: non-positive-definite matrix or optimiser failure."""


@dataclass
class GPFit:
    params: np.ndarray  # (log A, log l_t^2, log l_w^2)
    nll: float
    n_eval: int
    converged: bool
    message: str
    # (L^-1, K^-1 y) at `params`, when the fit has them: spares the prediction a refactorisation
    factor: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)


def initial_guess(flux: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, list[tuple]]:
    snr = np.abs(flux) / np.sqrt(err**2 + (0.01 * np.max(flux)) ** 2)
    scale = np.abs(flux[np.argmax(snr)])
    if not np.isfinite(scale) or scale <= 0:
        raise GPFitError("no non-zero flux to set the GP amplitude")
    p0 = np.array([np.log((0.5 * scale) ** 2), np.log(L_T0**2), np.log(L_W0**2)])
    bounds = [(p0[0] - 10, p0[0] + 10), (0.0, np.log(1000.0**2)), (None, None)]
    return p0, bounds


# ---------------------------------------------------------------- george (reference)

def _george_gp(t, w, err, params):
    import george
    from george import kernels

    gp = george.GP(np.exp(params[0]) * kernels.Matern32Kernel(
        [np.exp(params[1]), np.exp(params[2])], ndim=2))
    gp.compute(np.vstack([t, w]).T, err)
    return gp


def fit_george(t, w, flux, err) -> GPFit:
    p0, bounds = initial_guess(flux, err)
    gp = _george_gp(t, w, err, p0)
    count = [0]

    def nll(p):
        count[0] += 1
        gp.set_parameter_vector(p)
        return -gp.log_likelihood(flux)

    def grad(p):
        gp.set_parameter_vector(p)
        return -gp.grad_log_likelihood(flux)

    # george stores this kernel's constant as log(A / 2); bounds and start are
    # SCONE's, set on george's own vector, and the result is reported as log A
    g0 = gp.get_parameter_vector()
    offset = p0[0] - g0[0]
    gbounds = [(g0[0] - 10, g0[0] + 10)] + bounds[1:]
    try:
        res = minimize(nll, g0, jac=grad, bounds=gbounds)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise GPFitError(f"george fit failed: {exc}") from None
    if not np.all(np.isfinite(res.x)) or not np.isfinite(res.fun):
        raise GPFitError(f"george fit did not converge ({res.message})")
    params = res.x + np.array([offset, 0.0, 0.0])
    return GPFit(params, float(res.fun), count[0], bool(res.success), str(res.message))


def predict_george(t, w, flux, err, params, grid_t, grid_w, factor=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation images (len(grid_w), len(grid_t)); george
    refactorises, as SCONE does, so `factor` is not used."""
    gp = _george_gp(t, w, err, params)
    x = np.column_stack([np.tile(grid_t, len(grid_w)), np.repeat(grid_w, len(grid_t))])
    mean, var = gp.predict(flux, x, return_var=True)
    shape = (len(grid_w), len(grid_t))
    return mean.reshape(shape), np.sqrt(np.clip(var, 0, None)).reshape(shape)


# ---------------------------------------------------------------- fast

class _Objective:
    """Negative log likelihood and gradient (compiled: `kernels.nll_and_grad`).

    n x n work happens in per-thread buffers reused across light curves; only K's
    lower triangle is built (all `dpotrf` reads). The last evaluation's L^-1 and
    alpha = K^-1 y are kept: the prediction at the optimum reuses them."""

    def __init__(self, t, w, flux, err):
        n = len(flux)
        pairs = n * (n - 1) // 2
        self.dd = _workspace("fit_d", (2, pairs))
        pair_differences(t, w, self.dd)
        self.e = _workspace("fit_e", (pairs,))
        self.noise = err**2 + WHITE_NOISE
        self.y = flux
        # flat memory of F-ordered n x n matrices, as LAPACK works on them in place
        self.kflat, self.kinvflat = _workspace("fit_k", (n * n,)), _workspace("fit_kinv", (n * n,))
        self.linv = self.kflat.reshape(n, n).T
        self.alpha = np.empty(n)
        self.sums, self.out = np.empty(2), np.empty(4)
        self.last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(self, p):
        self.last = None
        status = nll_and_grad(p, self.dd, self.noise, self.y, self.kflat, self.e, self.kinvflat,
                              self.alpha, self.sums, self.out)
        if status == 1:
            raise GPFitError("covariance matrix is not positive definite")
        if status == 2:
            raise GPFitError("covariance matrix is singular")
        self.last = (p.copy(), self.linv, self.alpha)
        return self.out[0], self.out[1:].copy()


def fit_fast(t, w, flux, err) -> GPFit:
    p0, bounds = initial_guess(flux, err)
    obj = _Objective(np.asarray(t, float), np.asarray(w, float), np.asarray(flux, float), np.asarray(err, float))
    try:
        x, fun, n_eval, converged, message = lbfgsb(obj, p0, bounds)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise GPFitError(f"fit failed: {exc}") from None
    if not np.all(np.isfinite(x)) or not np.isfinite(fun):
        raise GPFitError(f"fit did not converge ({message})")
    # L-BFGS-B usually ends on the point it last evaluated; then the prediction
    # starts from that evaluation's factorisation instead of refactorising
    factor = None
    if obj.last is not None and np.array_equal(obj.last[0], x):
        factor = (obj.last[1].copy(order="F"), obj.last[2].copy())  # both live in reused buffers
    return GPFit(x, fun, n_eval, converged, message, factor)


def predict_fast(t, w, flux, err, params, grid_t, grid_w, factor=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation images (len(grid_w), len(grid_t)).

    The grid is wavelengths x times, so scaled squared distances come from a
    (times, n) and a (wavelengths, n) table, and kernel values are built a few
    wavelengths at a time into a reused, cache-sized buffer; the variance
    k^T K^-1 k = |L^-1 k|^2 is an in-place triangular multiply. Everything stays
    float64: for bright, well-sampled light curves K is ill-conditioned (cond
    ~1e8) and A * sum|K^-1 y| reaches 1e4 x the peak flux, so float32 kernel
    values put single pixels off by percents."""
    t, w = np.asarray(t, float), np.asarray(w, float)
    amp, it, iw = np.exp(params[0]), np.exp(-params[1]), np.exp(-params[2])
    if factor is None:
        obj = _Objective(t, w, np.asarray(flux, float), np.asarray(err, float))
        try:
            obj(np.asarray(params, float))
        except GPFitError as exc:
            raise GPFitError(f"{exc} at the fitted parameters") from None
        _, linv, alpha = obj.last
    else:
        linv, alpha = factor
    nt, nw, n = len(grid_t), len(grid_w), len(t)
    tt = (np.asarray(grid_t, float)[:, None] - t[None, :]) ** 2 * (3.0 * it)
    ww = (np.asarray(grid_w, float)[:, None] - w[None, :]) ** 2 * (3.0 * iw)
    # a few wavelengths at a time, so each block stays in cache through every pass
    per_block = max(1, GRID_BLOCK_ROWS // nt)
    kb = _workspace("k", (per_block * nt, n), np.float64)
    mean = np.empty(nw * nt)
    quad = np.empty(nw * nt)
    for g0 in range(0, nw, per_block):
        g1 = min(nw, g0 + per_block)
        rows = slice(g0 * nt, g1 * nt)
        kx = kb[: (g1 - g0) * nt]
        matern_grid(ww[g0:g1], tt, kx)  # (1 + s) exp(-s): the kernel over amp
        mean[rows] = kx @ alpha
        # v^T = L^-1 kx^T in place: kx^T is the F-ordered view of kx
        vt = blas.dtrmm(1.0, linv, kx.T, side=0, lower=1, overwrite_b=1)
        column_sumsq(vt.T, quad[rows])
    var = amp - amp * amp * quad
    shape = (nw, nt)
    return (mean * amp).reshape(shape), np.sqrt(np.clip(var, 0, None)).reshape(shape)


def warm_up() -> None:
    """Load every compiled function the `fast` back-end uses (numba compiles or
    reads its cache on first call), on a small fixed light curve."""
    t = np.array([0.0, 10.0, 20.0, 30.0, 40.0, -100.0, 140.0])
    w = np.array([4800.0, 6400.0, 7800.0, 4800.0, 6400.0, 7800.0, 7800.0])
    flux = np.array([5.0, 20.0, 15.0, 8.0, 4.0, 0.0, 0.0])
    err = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.1, 0.1])
    fit = fit_fast(t, w, flux, err)
    predict_fast(t, w, flux, err, fit.params, np.linspace(-30.0, 150.0, 18), np.linspace(3000.0, 10100.0, 4),
                 factor=fit.factor)
    predict_fast(t, w, flux, err, fit.params, np.linspace(-30.0, 150.0, 18), np.linspace(3000.0, 10100.0, 4))


_WORKSPACE = threading.local()


def _workspace(name: str, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """A reused per-thread buffer: fresh megabyte arrays per light curve cost
    more in page faults than the arithmetic done in them."""
    size = int(np.prod(shape))
    buffers = _WORKSPACE.__dict__
    buf = buffers.get((name, dtype))
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        buffers[(name, dtype)] = buf
    return buf[:size].reshape(shape)


BACKENDS = {"fast": (fit_fast, predict_fast), "george": (fit_george, predict_george)}
