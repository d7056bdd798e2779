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
  likelihood-and-gradient evaluation through LAPACK, pairwise distances
  computed once per light curve and buffers reused; on the prediction grid,
  distances built by broadcasting over its wavelength x time structure and the
  variance from one in-place triangular multiply with L^-1 (george solves
  with the Cholesky factor twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import blas, lapack
from scipy.optimize import minimize

from scone_assets.heatmaps.lbfgsb import lbfgsb

L_T0 = 20.0
L_W0 = 6000.0
WHITE_NOISE = np.exp(-27.40787756)  # george's default (frozen) white-noise variance
GRID_BLOCK_ROWS = 720  # measured best on 2-core AMD EPYC (L2-sized blocks), see BENCHMARKS.md
LOG_2PI = np.log(2 * np.pi)


class GPFitError(RuntimeError):
    """The fit failed: non-positive-definite matrix or optimiser failure."""


@dataclass
class GPFit:
    params: np.ndarray  # (log A, log l_t^2, log l_w^2)
    nll: float
    n_eval: int
    converged: bool
    message: str


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


def predict_george(t, w, flux, err, params, grid_t, grid_w) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation images (len(grid_w), len(grid_t))."""
    gp = _george_gp(t, w, err, params)
    x = np.column_stack([np.tile(grid_t, len(grid_w)), np.repeat(grid_w, len(grid_t))])
    mean, var = gp.predict(flux, x, return_var=True)
    shape = (len(grid_w), len(grid_t))
    return mean.reshape(shape), np.sqrt(np.clip(var, 0, None)).reshape(shape)


# ---------------------------------------------------------------- fast

class _Objective:
    """Negative log likelihood and its gradient, sharing one factorisation.

    All n x n work happens in buffers made once per light curve. With
    W = alpha alpha^T - K^-1, d(-lnL)/dtheta = -0.5 sum(W * dK/dtheta), and
    for symmetric X, sum(K^-1 * X) = 2 sum(tril(K^-1) * X) - sum(diag(K^-1) diag(X)),
    so only the lower triangle LAPACK returns is needed. dK/dlog A = Kk;
    dK/dlog l^2 = 1.5 A exp(-s) d^2 / l^2, whose diagonal is zero."""

    def __init__(self, t, w, flux, err):
        n = len(flux)
        self.dt2 = (t[:, None] - t[None, :]) ** 2
        self.dw2 = (w[:, None] - w[None, :]) ** 2
        self.noise = err**2 + WHITE_NOISE
        self.y = flux
        self.n = n
        self.count = 0
        self.s, self.e, self.kk, self.k, self.tmp = (np.empty((n, n)) for _ in range(5))

    def __call__(self, p):
        self.count += 1
        amp, it, iw = np.exp(p[0]), np.exp(-p[1]), np.exp(-p[2])
        s, e, kk, k, tmp, y = self.s, self.e, self.kk, self.k, self.tmp, self.y
        np.multiply(self.dt2, 3.0 * it, out=s)
        np.multiply(self.dw2, 3.0 * iw, out=tmp)
        s += tmp
        np.sqrt(s, out=s)
        np.negative(s, out=e)
        np.exp(e, out=e)
        np.add(s, 1.0, out=kk)
        kk *= e
        kk *= amp
        np.copyto(k, kk)
        k.flat[:: self.n + 1] += self.noise
        # k is symmetric, so its F-ordered transpose view is k itself: LAPACK works in place
        chol, info = lapack.dpotrf(k.T, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise GPFitError("covariance matrix is not positive definite")
        alpha, _ = lapack.dpotrs(chol, y, lower=1)
        logdet_half = np.log(np.diagonal(chol)).sum()
        kinv, info = lapack.dpotri(chol, lower=1, overwrite_c=1)
        if info != 0:
            raise GPFitError("covariance matrix is singular")
        upper = kinv.T  # C-ordered; sum(upper * X) = sum(tril(K^-1) * X) for symmetric X
        diag_kinv = np.diagonal(upper).sum()
        nll = 0.5 * (y @ alpha) + logdet_half + 0.5 * self.n * LOG_2PI
        g_a = -0.5 * (alpha @ (kk @ alpha) - (2.0 * np.vdot(upper, kk) - diag_kinv * amp))
        np.multiply(upper, e, out=tmp)
        tr_t, tr_w = 2.0 * np.vdot(tmp, self.dt2), 2.0 * np.vdot(tmp, self.dw2)
        np.multiply(e, self.dt2, out=tmp)
        q_t = alpha @ (tmp @ alpha)
        np.multiply(e, self.dw2, out=tmp)
        q_w = alpha @ (tmp @ alpha)
        c = -0.75 * amp
        return nll, np.array([g_a, c * it * (q_t - tr_t), c * iw * (q_w - tr_w)])


def fit_fast(t, w, flux, err) -> GPFit:
    p0, bounds = initial_guess(flux, err)
    obj = _Objective(np.asarray(t, float), np.asarray(w, float), np.asarray(flux, float), np.asarray(err, float))
    try:
        x, fun, n_eval, converged, message = lbfgsb(obj, p0, bounds)
    except (ValueError, np.linalg.LinAlgError) as exc:
        raise GPFitError(f"fit failed: {exc}") from None
    if not np.all(np.isfinite(x)) or not np.isfinite(fun):
        raise GPFitError(f"fit did not converge ({message})")
    return GPFit(x, fun, n_eval, converged, message)


def predict_fast(t, w, flux, err, params, grid_t, grid_w) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation images (len(grid_w), len(grid_t)).

    The grid is wavelengths x times, so scaled squared distances are built by
    broadcasting a (times, n) and a (wavelengths, n) table into a reused,
    cache-sized buffer, a few wavelengths at a time; the variance
    k^T K^-1 k = |L^-1 k|^2 is an in-place triangular multiply. Everything stays float64: for bright, well-sampled light curves
    K is ill-conditioned (cond ~1e8) and A * sum|K^-1 y| reaches 1e4 x the peak
    flux, so float32 kernel values put single pixels off by percents."""
    t, w = np.asarray(t, float), np.asarray(w, float)
    amp, it, iw = np.exp(params[0]), np.exp(-params[1]), np.exp(-params[2])
    s = np.sqrt(3.0 * ((t[:, None] - t[None, :]) ** 2 * it + (w[:, None] - w[None, :]) ** 2 * iw))
    k = amp * (1.0 + s) * np.exp(-s)
    k[np.diag_indices(len(t))] += err**2 + WHITE_NOISE
    chol, info = lapack.dpotrf(k, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise GPFitError("covariance matrix is not positive definite at the fitted parameters")
    alpha, _ = lapack.dpotrs(chol, flux, lower=1)
    linv, info = lapack.dtrtri(chol, lower=1)
    if info != 0:
        raise GPFitError("covariance matrix is singular at the fitted parameters")
    nt, nw, n = len(grid_t), len(grid_w), len(t)
    tt = (np.asarray(grid_t, float)[:, None] - t[None, :]) ** 2 * (3.0 * it)
    ww = (np.asarray(grid_w, float)[:, None] - w[None, :]) ** 2 * (3.0 * iw)
    # a few wavelengths at a time, so each block stays in cache through every pass
    per_block = max(1, GRID_BLOCK_ROWS // nt)
    kb = _workspace("k", (per_block, nt, n), np.float64)
    eb = _workspace("e", (per_block * nt, n), np.float64)
    mean = np.empty(nw * nt)
    quad = np.empty(nw * nt)
    for g0 in range(0, nw, per_block):
        g1 = min(nw, g0 + per_block)
        rows = slice(g0 * nt, g1 * nt)
        kx = kb[: g1 - g0]
        np.add(ww[g0:g1, None, :], tt[None, :, :], out=kx)
        kx = kx.reshape(-1, n)
        ex = eb[: len(kx)]
        np.sqrt(kx, out=kx)
        np.negative(kx, out=ex)
        np.exp(ex, out=ex)
        kx += 1.0
        kx *= ex  # (1 + s) exp(-s): the kernel over amp
        mean[rows] = kx @ alpha
        # v^T = L^-1 kx^T in place: kx^T is the F-ordered view of kx
        vt = blas.dtrmm(1.0, linv, kx.T, side=0, lower=1, overwrite_b=1)
        quad[rows] = np.einsum("ji,ji->i", vt, vt)
    var = amp - amp * amp * quad
    shape = (nw, nt)
    return (mean * amp).reshape(shape), np.sqrt(np.clip(var, 0, None)).reshape(shape)


_WORKSPACE: dict[tuple[str, type], np.ndarray] = {}


def _workspace(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """A reused per-process buffer: fresh megabyte arrays per light curve cost
    more in page faults than the arithmetic done in them."""
    size = int(np.prod(shape))
    buf = _WORKSPACE.get((name, dtype))
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype=dtype)
        _WORKSPACE[(name, dtype)] = buf
    return buf[:size].reshape(shape)


BACKENDS = {"fast": (fit_fast, predict_fast), "george": (fit_george, predict_george)}
