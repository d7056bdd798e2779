"""LAPACK and BLAS for compiled code: scipy's own OpenBLAS, through the
function pointers `scipy.linalg.cython_lapack` and `cython_blas` export.

At 60 observations a likelihood evaluation does about 30 us of arithmetic
in LAPACK, yet through scipy's Python wrappers (argument checks, copies of
sub-blocks) and NumPy evaluations on DES light curves (median 59 observations)
took 112 us each; compiled with these calls, one at 61 observations takes 36 us. The
pointers are registered as named symbols, so numba can cache the compiled
callers on disk (a ctypes pointer would force a compile in every process).

Matrices are the flat memory of F-ordered n x n arrays, lower triangles only.
Fortran arguments are all pointers; characters are ASCII codes.
"""

from __future__ import annotations

import llvmlite.binding as llvm
import numpy as np
from numba import njit, types
from numba.extending import get_cython_function_address

_P = types.voidptr


def _bind(module: str, name: str, nargs: int):
    symbol = f"scone_assets_{name}"
    llvm.add_symbol(symbol, get_cython_function_address(f"scipy.linalg.cython_{module}", name))
    return types.ExternalFunction(symbol, types.void(*([_P] * nargs)))


_dpotrf = _bind("lapack", "dpotrf", 5)
_dtrtri = _bind("lapack", "dtrtri", 6)
_dlauum = _bind("lapack", "dlauum", 5)
_dtrmm = _bind("blas", "dtrmm", 11)
_dtrsm = _bind("blas", "dtrsm", 11)
_dtrsv = _bind("blas", "dtrsv", 8)

L, R, N, T = 76, 82, 78, 84  # ASCII 'L', 'R', 'N', 'T'
TRI_INV_BLOCK = 32  # measured: 138 us at n = 195 against 156 at 64 (2-core AMD EPYC)

_JIT = dict(boundscheck=False, cache=True, nogil=True)


@njit(**_JIT)
def potrf_lower(a: np.ndarray, n: int) -> int:
    """Cholesky factor L in a's lower triangle; LAPACK's info (> 0: not positive definite)."""
    ch = np.array([L], np.uint8)
    iv = np.array([n, 0], np.int32)
    _dpotrf(ch.ctypes, iv.ctypes, a.ctypes, iv.ctypes, iv[1:].ctypes)
    return iv[1]


@njit(**_JIT)
def lauum_lower(a: np.ndarray, n: int) -> int:
    """L^T L in the lower triangle of `a`, which holds L (with L = C^-1 this is K^-1)."""
    ch = np.array([L], np.uint8)
    iv = np.array([n, 0], np.int32)
    _dlauum(ch.ctypes, iv.ctypes, a.ctypes, iv.ctypes, iv[1:].ctypes)
    return iv[1]


@njit(**_JIT)
def trsv_lower(a: np.ndarray, n: int, x: np.ndarray, transpose: bool) -> None:
    """x := L^-1 x, or L^-T x, in place."""
    ch = np.array([L, T if transpose else N, N], np.uint8)
    iv = np.array([n, 1], np.int32)
    _dtrsv(ch.ctypes, ch[1:].ctypes, ch[2:].ctypes, iv.ctypes, a.ctypes, iv.ctypes, x.ctypes, iv[1:].ctypes)


@njit(**_JIT)
def tri_inv_lower(a: np.ndarray, n: int, nb: int = TRI_INV_BLOCK) -> int:
    """L^-1 in place, by LAPACK's blocked `dtrtri` algorithm (last block first).

    The bundled OpenBLAS `dtrtri` runs at a third of its own multiply speed above
    ~100 x 100; with its work done by `dtrmm` and `dtrsm` on nb-wide panels and
    only the nb x nb diagonal blocks left to it, the same numbers come 2.4x
    faster at 195. Returns info (> 0: singular)."""
    ch = np.array([L, R, N], np.uint8)
    iv = np.zeros(4, np.int32)  # rows below the block, block width, info, lda
    one = np.array([1.0, -1.0])
    iv[3] = n
    j = ((n - 1) // nb) * nb
    while j >= 0:
        jb = min(nb, n - j)
        rest = n - j - jb
        iv[0], iv[1] = rest, jb
        diag = a[j * n + j:]
        if rest > 0:
            panel = a[j * n + j + jb:]
            below = a[(j + jb) * n + j + jb:]
            # panel := inv(L22) panel (L22 already inverted), then -panel inv(L11)
            _dtrmm(ch.ctypes, ch.ctypes, ch[2:].ctypes, ch[2:].ctypes, iv.ctypes, iv[1:].ctypes,
                   one.ctypes, below.ctypes, iv[3:].ctypes, panel.ctypes, iv[3:].ctypes)
            _dtrsm(ch[1:].ctypes, ch.ctypes, ch[2:].ctypes, ch[2:].ctypes, iv.ctypes, iv[1:].ctypes,
                   one[1:].ctypes, diag.ctypes, iv[3:].ctypes, panel.ctypes, iv[3:].ctypes)
        _dtrtri(ch.ctypes, ch[2:].ctypes, iv[1:].ctypes, diag.ctypes, iv[3:].ctypes, iv[2:].ctypes)
        if iv[2] != 0:
            return iv[2] + j
        j -= nb
    return 0
