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
  the amplitude gradient in O(n), pairwise distances computed once per light
  curve and buffers reused; the prediction starts from the last evaluation's
  L^-1, builds grid distances by broadcasting over its wavelength x time
  structure, and gets the variance from one in-place triangular multiply with
  L^-1 (george solves with the Cholesky factor twice).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

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

def _tri_inv(c: np.ndarray, leaf: int = 64) -> np.ndarray:
    """Inverse of the lower-triangular, F-ordered `c`, in place.

    The bundled OpenBLAS `dtrtri` (and `dpotri`, which calls it) runs at a third
    of the speed of its own triangular multiplies above ~100 x 100; splitting
    [[A, 0], [B, C]]^-1 = [[A^-1, 0], [-C^-1 B A^-1, C^-1]] down to `leaf`-sized
    blocks gives the same numbers 1.7x faster at 187 and 2.7x at 400."""
    n = c.shape[0]
    if n <= leaf:
        inv, info = lapack.dtrtri(c, lower=1)
        if info != 0:
            raise GPFitError("covariance matrix is singular")
        c[...] = inv
        return c
    h = n // 2
    _tri_inv(c[:h, :h], leaf)
    _tri_inv(c[h:, h:], leaf)
    b = blas.dtrmm(-1.0, c[h:, h:], c[h:, :h], side=0, lower=1)
    c[h:, :h] = blas.dtrmm(1.0, c[:h, :h], b, side=1, lower=1)
    return c


class _Objective:
    """Negative log likelihood and its gradient, sharing one factorisation.

    All n x n work happens in per-thread buffers reused across light curves. With
    W = alpha alpha^T - K^-1, d(-lnL)/dtheta = -0.5 sum(W * dK/dtheta).
    - log A: dK = K - N (N the noise diagonal), and K alpha = y, tr(K^-1 K) = n,
      so sum(W * dK) = y.alpha - sum(N alpha^2) - n + sum(diag(K^-1) N): O(n).
    - log l^2: dK = 1.5 A exp(-s) d^2 / l^2, zero on the diagonal. K^-1 is
      lauum(L^-1) in its lower triangle, zeros above; read as the C-ordered view it
      is an upper triangle U, and for symmetric X with zero diagonal,
      sum(K^-1 * X) = 2 sum(U * X). So both use sum(M * A exp(-s) * d^2) with
      M = alpha alpha^T - 2 U; both squared-distance tables sit in one (n^2, 2)
      array, so BLAS builds s^2 and contracts both gradients in one pass each.
    The last evaluation's L^-1 and alpha are kept: the prediction at the optimum
    reuses them."""

    def __init__(self, t, w, flux, err):
        n = len(flux)
        d = _workspace("fit_d", (2, n, n))
        np.subtract.outer(t, t, out=d[0])
        np.subtract.outer(w, w, out=d[1])
        d **= 2
        self.d = d.reshape(2, n * n).T  # F-ordered (n^2, 2)
        self.noise = err**2 + WHITE_NOISE
        self.y = flux
        self.n = n
        self.s, self.e = _workspace("fit_s", (n, n)), _workspace("fit_e", (n, n))
        # F-ordered, as LAPACK works on them in place
        self.k, self.kinv = _workspace("fit_k", (n, n)).T, _workspace("fit_kinv", (n, n)).T
        self.coef = np.empty(2)
        self.last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(self, p):
        self.last = None
        it, iw = np.exp(-p[1]), np.exp(-p[2])
        s, e, k, kinv, y, n, noise = self.s, self.e, self.k, self.kinv, self.y, self.n, self.noise
        self.coef[0], self.coef[1] = 3.0 * it, 3.0 * iw
        blas.dgemv(1.0, self.d, self.coef, y=s.reshape(-1), overwrite_y=1)
        np.sqrt(s, out=s)
        np.subtract(p[0], s, out=e)
        np.exp(e, out=e)  # A exp(-s)
        kt = k.T  # K is symmetric: write its F-ordered buffer through the C-ordered view
        np.add(s, 1.0, out=kt)
        kt *= e
        k.flat[:: n + 1] += noise
        chol, info = lapack.dpotrf(k, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise GPFitError("covariance matrix is not positive definite")
        alpha, _ = lapack.dpotrs(chol, y, lower=1)
        logdet_half = np.log(np.diagonal(chol)).sum()
        linv = _tri_inv(chol)
        np.copyto(kinv, linv)
        kinv, info = lapack.dlauum(kinv, lower=1, overwrite_c=1)
        if info != 0:
            raise GPFitError("covariance matrix is singular")
        y_alpha = y @ alpha
        g_a = -0.5 * (y_alpha - noise @ (alpha * alpha) - n + np.diagonal(kinv) @ noise)
        m = kinv.T  # C-ordered view: U
        m *= -2.0
        m = blas.dger(1.0, alpha, alpha, a=kinv, overwrite_a=1).T  # alpha alpha^T - 2 U, in place
        m *= e
        g_tw = blas.dgemv(1.0, self.d, m.reshape(-1), trans=1)
        nll = 0.5 * y_alpha + logdet_half + 0.5 * n * LOG_2PI
        self.last = (p.copy(), linv, alpha)
        return nll, np.array([g_a, -0.75 * it * g_tw[0], -0.75 * iw * g_tw[1]])


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
        factor = (obj.last[1].copy(order="F"), obj.last[2])  # L^-1 lives in a reused buffer
    return GPFit(x, fun, n_eval, converged, message, factor)


def predict_fast(t, w, flux, err, params, grid_t, grid_w, factor=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation images (len(grid_w), len(grid_t)).

    The grid is wavelengths x times, so scaled squared distances are built by
    broadcasting a (times, n) and a (wavelengths, n) table into a reused,
    cache-sized buffer, a few wavelengths at a time; the variance
    k^T K^-1 k = |L^-1 k|^2 is an in-place triangular multiply. Everything stays float64: for bright, well-sampled light curves
    K is ill-conditioned (cond ~1e8) and A * sum|K^-1 y| reaches 1e4 x the peak
    flux, so float32 kernel values put single pixels off by percents."""
    t, w = np.asarray(t, float), np.asarray(w, float)
    amp, it, iw = np.exp(params[0]), np.exp(-params[1]), np.exp(-params[2])
    if factor is None:
        s = np.sqrt(3.0 * ((t[:, None] - t[None, :]) ** 2 * it + (w[:, None] - w[None, :]) ** 2 * iw))
        k = amp * (1.0 + s) * np.exp(-s)
        k[np.diag_indices(len(t))] += err**2 + WHITE_NOISE
        chol, info = lapack.dpotrf(k, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise GPFitError("covariance matrix is not positive definite at the fitted parameters")
        alpha, _ = lapack.dpotrs(chol, flux, lower=1)
        linv = _tri_inv(chol)
    else:
        linv, alpha = factor
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
