"""The `fast` back-end's kernel tables and likelihood, compiled with numba.

Building a kernel table in NumPy takes six passes over memory (add, sqrt,
negate, exp, add, multiply), and this NumPy's float64 `sqrt` has no AVX
loop: about 3 ns per element, a third of the prediction's time. One compiled
pass that LLVM vectorises takes about 1.1 ns. `exp` has no vectorised form
in LLVM without Intel's SVML, so `exp_neg` is written out: Cody-Waite
reduction by ln 2 and a degree-13 Taylor polynomial (truncation below 1e-17
relative), within 1 ulp of glibc's `exp` (tested). Everything stays float64.

Functions compile on first use and are cached beside this module (or in
numba's user cache when the package folder is read-only).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from scone_assets.heatmaps.linalg import lauum_lower, potrf_lower, tri_inv_lower, trsv_lower

LOG2E = 1.4426950408889634
LN2_HI = 6.93147180369123816490e-01  # ln 2 split so n * LN2_HI is exact for |n| < 2^20
LN2_LO = 1.90821492927058770002e-10
LOG_2PI = 1.8378770664093453
EXP_FLOOR = 708.0  # exp(-708) ~ 3e-308, the last normal double; below it the kernel is 0

# fastmath only lets multiply-adds fuse (Horner steps become FMAs); no reassociation
_JIT = dict(fastmath={"contract"}, boundscheck=False, error_model="numpy", cache=True, nogil=True)
# a sum may be reordered into vector lanes (as BLAS orders its own sums)
_JIT_SUM = dict(_JIT, fastmath={"contract", "reassoc"})


@njit(inline="always", **_JIT)
def exp_neg(s: float) -> float:
    """exp(-s) for s >= 0 (0 beyond EXP_FLOOR, NaN for NaN)."""
    x = -min(s, EXP_FLOOR)
    n = np.floor(x * LOG2E + 0.5)
    r = (x - n * LN2_HI) - n * LN2_LO  # |r| <= ln2 / 2
    p = 1.6059043836821613e-10
    p = p * r + 2.08767569878681e-09
    p = p * r + 2.505210838544172e-08
    p = p * r + 2.755731922398589e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.48015873015873e-05
    p = p * r + 0.0001984126984126984
    p = p * r + 0.001388888888888889
    p = p * r + 0.008333333333333333
    p = p * r + 0.041666666666666664
    p = p * r + 0.16666666666666666
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    scale = np.int64((np.int64(n) + 1023) << 52).view(np.float64)  # 2^n, n in [-1022, 0]
    if s < EXP_FLOOR:
        return p * scale
    return 0.0 if s >= EXP_FLOOR else s  # NaN stays NaN, so a bad evaluation shows


@njit(**_JIT)
def exp_neg_array(s: np.ndarray, out: np.ndarray) -> None:
    """`exp_neg` over an array (for tests and comparisons)."""
    for i in range(s.size):
        out[i] = exp_neg(s[i])


@njit(**_JIT)
def pair_differences(t: np.ndarray, w: np.ndarray, dd: np.ndarray) -> None:
    """Squared time and wavelength differences of every pair i > j, packed
    column by column (j = 0: i = 1..n-1; j = 1: i = 2..n-1; ...) into dd (2, n(n-1)/2).

    Only K's lower triangle is needed (all `dpotrf` reads, and where `dlauum`
    leaves K^-1), and packing it keeps each column's inner loop contiguous."""
    n = t.size
    p = 0
    for j in range(n):
        for i in range(j + 1, n):
            dd[0, p] = (t[i] - t[j]) ** 2
            dd[1, p] = (w[i] - w[j]) ** 2
            p += 1


@njit(**_JIT)
def matern_lower(dd: np.ndarray, coef_t: float, coef_w: float, amp: float, noise: np.ndarray,
                 k: np.ndarray, e: np.ndarray) -> None:
    """K's lower triangle into `k`, the flat memory of an F-ordered n x n matrix,
    and A exp(-s) for each packed pair into `e`; s^2 = coef_t dt^2 + coef_w dw^2."""
    n = noise.size
    d0 = dd[0]
    d1 = dd[1]
    p = 0
    for j in range(n):
        k[j * n + j] = amp + noise[j]
        m = n - j - 1
        # per-column slices let LLVM vectorise the inner loop
        x0, x1, ec = d0[p:p + m], d1[p:p + m], e[p:p + m]
        kc = k[j * n + j + 1:(j + 1) * n]
        for q in range(m):
            s = np.sqrt(coef_t * x0[q] + coef_w * x1[q])
            ex = amp * exp_neg(s)
            ec[q] = ex
            kc[q] = (1.0 + s) * ex
        p += m


@njit(**_JIT_SUM)
def lengthscale_sums(dd: np.ndarray, e: np.ndarray, kinv: np.ndarray, alpha: np.ndarray,
                     out: np.ndarray) -> None:
    """sum over i != j of (alpha_i alpha_j - K^-1_ij) A exp(-s_ij) d_ij^2, for dt and dw.

    Both matrices are symmetric with a zero diagonal, so this is twice the sum
    below the diagonal; `kinv` is the flat memory of the F-ordered K^-1 whose
    lower triangle `dlauum` filled."""
    n = alpha.size
    d0 = dd[0]
    d1 = dd[1]
    gt = 0.0
    gw = 0.0
    p = 0
    for j in range(n):
        aj = alpha[j]
        m = n - j - 1
        x0, x1, ec, ai = d0[p:p + m], d1[p:p + m], e[p:p + m], alpha[j + 1:]
        kc = kinv[j * n + j + 1:(j + 1) * n]
        for q in range(m):
            v = (ai[q] * aj - kc[q]) * ec[q]
            gt += v * x0[q]
            gw += v * x1[q]
        p += m
    out[0] = 2.0 * gt
    out[1] = 2.0 * gw


@njit(**_JIT)
def matern_grid(ww: np.ndarray, tt: np.ndarray, out: np.ndarray) -> None:
    """(1 + s) exp(-s) for every (wavelength, time) grid point and observation.

    `ww` (wavelengths, n) and `tt` (times, n) hold scaled squared differences;
    row a * len(tt) + b of `out` (C-ordered) is grid point (ww[a], tt[b]). s^2
    is laid down first, then the kernel runs over the block as one flat loop:
    with rows of ~60 observations, a per-row loop would leave an eighth of the
    elements to the scalar remainder of each vectorised row."""
    nw, n = ww.shape
    nt = tt.shape[0]
    for a in range(nw):
        wa = ww[a]
        for b in range(nt):
            row = out[a * nt + b]
            tb = tt[b]
            for i in range(n):
                row[i] = wa[i] + tb[i]
    flat = out.reshape(out.size)
    for q in range(flat.size):
        s = np.sqrt(flat[q])
        flat[q] = (1.0 + s) * exp_neg(s)


@njit(**_JIT_SUM)
def column_sumsq(v: np.ndarray, out: np.ndarray) -> None:
    """out[c] = sum of squares of column c of the F-ordered `v` (given as its
    C-ordered transpose, so each column is a contiguous row here)."""
    for c in range(v.shape[0]):
        row = v[c]
        acc = 0.0
        for i in range(row.size):
            acc += row[i] * row[i]
        out[c] = acc


@njit(**_JIT)
def nll_and_grad(p: np.ndarray, dd: np.ndarray, noise: np.ndarray, y: np.ndarray, k: np.ndarray,
                 e: np.ndarray, kinv: np.ndarray, alpha: np.ndarray, sums: np.ndarray, out: np.ndarray) -> int:
    """-ln L and its gradient at p = (log A, log l_t^2, log l_w^2) into `out` (4).

    One Cholesky factorisation serves both. With W = alpha alpha^T - K^-1,
    d(-lnL)/dtheta = -0.5 sum(W * dK/dtheta):
    - log A: dK = K - N (N the noise diagonal), K alpha = y, tr(K^-1 K) = n, so
      sum(W * dK) = y.alpha - sum(N alpha^2) - n + sum(diag(K^-1) N): O(n).
    - log l^2: dK = 1.5 A exp(-s) d^2 / l^2, zero on the diagonal: `lengthscale_sums`.
    Leaves L^-1 in `k` and alpha = K^-1 y in `alpha` (the prediction reuses
    them). Returns 0, 1 (K not positive definite) or 2 (singular)."""
    n = y.size
    it, iw = np.exp(-p[1]), np.exp(-p[2])
    matern_lower(dd, 3.0 * it, 3.0 * iw, np.exp(p[0]), noise, k, e)
    if potrf_lower(k, n) != 0:
        return 1
    logdet_half = 0.0
    for i in range(n):
        logdet_half += np.log(k[i * n + i])
    alpha[:] = y  # solved with L (more accurate than multiplying by L^-1 when K is ill-conditioned)
    trsv_lower(k, n, alpha, False)
    trsv_lower(k, n, alpha, True)
    if tri_inv_lower(k, n) != 0:
        return 2
    kinv[:] = k
    if lauum_lower(kinv, n) != 0:
        return 2
    y_alpha = 0.0
    trace_terms = 0.0
    for i in range(n):
        y_alpha += y[i] * alpha[i]
        trace_terms += noise[i] * (kinv[i * n + i] - alpha[i] * alpha[i])
    lengthscale_sums(dd, e, kinv, alpha, sums)
    out[0] = 0.5 * y_alpha + logdet_half + 0.5 * n * LOG_2PI
    out[1] = -0.5 * (y_alpha - n + trace_terms)
    out[2] = -0.75 * it * sums[0]
    out[3] = -0.75 * iw * sums[1]
    return 0
