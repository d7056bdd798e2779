"""scipy's L-BFGS-B, driven directly.

`scipy.optimize.minimize(method="L-BFGS-B")` wraps the optimiser core
(`_lbfgsb.setulb`, reverse communication) in argument checking and a
memoising function wrapper that cost more per evaluation than a small GP
likelihood does. This is the same loop as scipy's `_minimize_lbfgsb`, with the
same defaults (maxcor 10, ftol 2.22e-9, gtol 1e-5, maxls 20), so it takes the
same steps. The core is internal to scipy; if its signature is not the one
this was written for (scipy >= 1.15), `minimize` itself is used.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

MAXCOR, FTOL, GTOL, MAXLS, MAXITER, MAXFUN = 10, 2.2204460492503131e-09, 1e-5, 20, 15000, 15000
_NBD = {(False, False): 0, (True, False): 1, (True, True): 2, (False, True): 3}


def _core(fun: Callable, x0: np.ndarray, bounds: list[tuple], setulb) -> tuple[np.ndarray, float, int, bool, str]:
    n = len(x0)
    low, up, nbd = np.zeros(n), np.zeros(n), np.zeros(n, np.int32)
    for i, (lo, hi) in enumerate(bounds):
        has_lo, has_hi = lo is not None and np.isfinite(lo), hi is not None and np.isfinite(hi)
        low[i], up[i] = (lo if has_lo else 0.0), (hi if has_hi else 0.0)
        nbd[i] = _NBD[(has_lo, has_hi)]
    x = np.clip(np.asarray(x0, float), np.where(np.isin(nbd, (1, 2)), low, -np.inf),
                np.where(np.isin(nbd, (2, 3)), up, np.inf))
    f, g = np.array(0.0), np.zeros(n)
    wa = np.zeros(2 * MAXCOR * n + 5 * n + 11 * MAXCOR * MAXCOR + 8 * MAXCOR)
    iwa = np.zeros(3 * n, np.int32)
    task, ln_task = np.zeros(2, np.int32), np.zeros(2, np.int32)
    lsave, isave, dsave = np.zeros(4, np.int32), np.zeros(44, np.int32), np.zeros(29)
    factr = FTOL / np.finfo(float).eps
    nfev = nit = 0
    while True:
        setulb(MAXCOR, x, low, up, nbd, f, g, factr, GTOL, wa, iwa, task, lsave, isave, dsave, MAXLS, ln_task)
        if task[0] == 3:
            f, g = fun(x)
            g = np.asarray(g, dtype=np.float64)
            nfev += 1
        elif task[0] == 1:
            nit += 1
            if nit >= MAXITER:
                task[:] = (5, 504)
            elif nfev > MAXFUN:
                task[:] = (5, 502)
        else:
            break
    return x, float(f), nfev, bool(task[0] == 4), f"task {task[0]}:{task[1]}"


def _probe():
    try:
        from scipy.optimize import _lbfgsb

        x, f, nfev, ok, _ = _core(lambda x: ((x[0] - 1.0) ** 2, np.array([2 * (x[0] - 1.0)])),
                                  np.array([0.0]), [(None, None)], _lbfgsb.setulb)
        return _lbfgsb.setulb if ok and abs(x[0] - 1.0) < 1e-6 else None
    except Exception:  # noqa: BLE001 - any change in scipy internals means: use minimize
        return None


_SETULB = _probe()


def lbfgsb(fun: Callable, x0: np.ndarray, bounds: list[tuple]) -> tuple[np.ndarray, float, int, bool, str]:
    """Minimise `fun(x) -> (f, grad)`; returns (x, f, evaluations, converged, message)."""
    if _SETULB is not None:
        return _core(fun, x0, bounds, _SETULB)
    res = minimize(fun, x0, jac=True, bounds=bounds, method="L-BFGS-B")
    return res.x, float(res.fun), int(res.nfev), bool(res.success), str(res.message)
