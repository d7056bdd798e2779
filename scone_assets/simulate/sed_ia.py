"""SN Ia spectral energy distribution: the BayeSN W22 model on the Hsiao template.

Rest-frame SN Ia spectra instead of a blackbody, from the data files of the
PyPI wheel `bayesn==0.4.0` (MIT), used only as a data package: it is installed
with `pip install --no-deps` (the project's `make venv` does it) and never
imported, so its jax/numpyro dependencies are not needed. Files:

- `bayesn/data/hsiao.h5`: the Hsiao et al. (2007, ApJ 663, 1187) SN Ia
  spectral template, f_lambda on phases -19..+85 d (1 d steps) and
  1000-25000 A (10 A steps).
- `bayesn/model_files/W22_model/BAYESN.YAML`: the BayeSN model of Ward et al.
  (2023, ApJ 956, 111; arXiv:2209.10558) in the framework of Mandel et al.
  (2022, MNRAS 510, 3939), trained on the Avelino et al. (2019) low-z
  compilation plus Foundation DR1 (BgVrizYJH): wavelength knots 3000-18500 A
  (11), phase knots -10..+40 d (6), the mean warping W0 and the first
  functional component W1 (11 x 6 each), the Cholesky factor L_Sigma (54 x 54)
  of the residual epsilon on the 9 interior wavelength knots, and the
  population numbers M0 = -19.5, sigma0 = 0.094 mag, R_V = 2.659,
  tau_A = 0.252 mag.

The model (Mandel et al. 2022, eq. 12-13; as in bayesn_model.get_spectra):

    f_lambda(t, lam) = H(t, lam) 10^(-0.4 [M0 + dM + W(t, lam) + A_host(lam)])
    W = W0 + theta W1 + epsilon, interpolated in (lam, t) by natural cubic
        splines through the knots (Mandel et al. 2022, sec. 2.2),

with theta ~ N(0, 1), dM ~ N(0, sigma0) (grey scatter), epsilon = L_Sigma e,
e ~ N(0, I), laid on the interior wavelength knots column by column (Fortran
order, as BayeSN does) with zero at the first and last wavelength knots, and
host dust A_V ~ Exponential(tau_A) with the Fitzpatrick (1999, PASP 111, 63)
law at R_V = 2.659 (the law BayeSN fits with; its optical/IR spline knots and
UV formula below). H is the Hsiao template linearly interpolated in phase and
wavelength, as BayeSN does in phase.

Choices where the trained model says nothing, all kept continuous:

- Phases outside the W22 knots (-10..+40 d): W is held at its value on the
  nearest phase knot, so the light curve's evolution there is the Hsiao
  template's alone (BayeSN itself extrapolates linearly, which diverges).
  Wavelengths above 18500 A likewise take W at the last knot. Below 4000 A W
  is held at its 4000 A value, so the UV is the Hsiao template's: W22 was
  trained on BgVrizYJH, whose bluest light is about 3600-4000 A, and the
  unconstrained 3000 A edge knot (W0 from -5.2 to +10.0 mag across phase)
  makes the spline swing by several magnitudes below about 3900 A.
- Before the Hsiao template's first day (-19 d), the flux falls as a t^2
  fireball to zero at -20 d (explosion about 20 rest-frame days before B
  maximum, Hsiao et al. 2007; Riess et al. 1999): no light before explosion.
- After its last day (+85 d), each wavelength fades by 0.015 mag/d, the
  +60..+100 d slope of the blackbody model's decline (classes.py).

M0 is defined for BayeSN's fiducial cosmology, H0 = 73.24 (Riess et al. 2016;
bayesn_model.SEDmodel's default); the project's distances use H0 = 70, so
M0 becomes M0 + 5 log10(70 / 73.24) = M0 - 0.098. Magnitudes are AB:
m_AB(lam) = -2.5 log10(f_lambda lam^2 / c / 3631 Jy), so the result plugs
into physics.py's redshifting, Milky Way dust and band averaging unchanged.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from scone_assets.simulate.sed_grid import bilinear

H0_BAYESN = 73.24
H0 = 70.0
EXPLOSION = -20.0  # rest-frame days from B maximum
LATE_SLOPE = 0.015  # mag / d after the template's last day
W_BLUE = 4000.0  # A: bluest wavelength where the W22 warping is used (held below)
_C_FAB = 2.99792458e18 * 3631e-23  # c [A/s] x 3631 Jy [erg/s/cm2/Hz]

INSTALL_HINT = ("the SN Ia model needs the data package bayesn==0.4.0 (Hsiao template and BayeSN W22 files); "
                "install it with `make venv`, or `.venv/bin/pip install --no-deps -c constraints.txt bayesn==0.4.0`")


class MissingSEDData(RuntimeError):
    pass


def _root() -> Path:
    spec = importlib.util.find_spec("bayesn")  # finds the folder without running bayesn/__init__.py
    locs = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locs:
        if (Path(loc) / "data" / "hsiao.h5").is_file():
            return Path(loc)
    raise MissingSEDData(INSTALL_HINT)


def natural_spline_matrix(knots: np.ndarray) -> np.ndarray:
    """M with y'' = M y for a natural cubic spline through (knots, y): zero second
    derivative at both ends (BayeSN's spline_utils.invKD_irr)."""
    x = np.asarray(knots, float)
    n = len(x)
    k = np.zeros((n - 2, n - 2))
    d = np.zeros((n - 2, n))
    for r in range(n - 2):
        j = r + 1
        if r > 0:
            k[r, r - 1] = (x[j] - x[j - 1]) / 6
        k[r, r] = (x[j + 1] - x[j - 1]) / 3
        if r < n - 3:
            k[r, r + 1] = (x[j + 1] - x[j]) / 6
        d[r, r:r + 3] = [1 / (x[j] - x[j - 1]), -(1 / (x[j + 1] - x[j]) + 1 / (x[j] - x[j - 1])), 1 / (x[j + 1] - x[j])]
    m = np.zeros((n, n))
    m[1:-1] = np.linalg.solve(k, d)
    return m


def _spline_weights(x: np.ndarray, knots: np.ndarray):
    """Interval index q and weights (a, b, c, d): y(x) = a y_q + b y_q+1 + c y''_q + d y''_q+1,
    with x clamped to the knot range (constant beyond it)."""
    xc = np.clip(x, knots[0], knots[-1])
    q = np.clip(np.searchsorted(knots, xc, side="right") - 1, 0, len(knots) - 2)
    h = knots[q + 1] - knots[q]
    a = (knots[q + 1] - xc) / h
    b = 1 - a
    return q, a, b, (a**3 - a) * h**2 / 6, (b**3 - b) * h**2 / 6


def spline_eval(x: np.ndarray, knots: np.ndarray, y: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Natural cubic spline through (knots, y[..., :]) at x; y broadcasts against x[..., None]."""
    q, a, b, c, d = _spline_weights(x, knots)
    ypp = y @ m.T
    y, ypp = np.broadcast_to(y, x.shape + y.shape[-1:]), np.broadcast_to(ypp, x.shape + y.shape[-1:])

    def take(v, i):
        return np.take_along_axis(v, i[..., None], axis=-1)[..., 0]

    return a * take(y, q) + b * take(y, q + 1) + c * take(ypp, q) + d * take(ypp, q + 1)


def f99_a_over_av(wave: np.ndarray, r_v: float) -> np.ndarray:
    """Fitzpatrick (1999) A_lambda / A_V: the UV formula (Fitzpatrick & Massa 1990 form,
    x0 = 4.596, gamma = 0.99, c3 = 3.23, c4 = 0.41, c2 = -0.824 + 4.717 / R_V,
    c1 = 2.030 - 3.007 c2) below 2700 A, and a natural cubic spline in 1/lambda
    through Fitzpatrick's optical/IR anchors above (the knots BayeSN uses)."""
    x = 1e4 / np.asarray(wave, float)
    c2 = -0.824 + 4.717 / r_v
    c1 = 2.030 - 3.007 * c2

    def uv(xx):
        dd = xx**2 / ((xx**2 - 4.596**2) ** 2 + (0.99 * xx) ** 2)
        ff = np.where(xx >= 5.9, 0.5392 * (xx - 5.9) ** 2 + 0.05644 * (xx - 5.9) ** 3, 0.0)
        return c1 + c2 * xx + 3.23 * dd + 0.41 * ff  # E(lambda - V) / E(B - V)

    xk = np.array([0.0, 1e4 / 26500, 1e4 / 12200, 1e4 / 6000, 1e4 / 5470, 1e4 / 4670, 1e4 / 4110,
                   1e4 / 2700, 1e4 / 2600])
    yk = np.array([-r_v, 0.26469 * r_v / 3.1 - r_v, 0.82925 * r_v / 3.1 - r_v,
                   -0.422809 + 1.00270 * r_v + 2.13572e-4 * r_v**2 - r_v,
                   -5.13540e-2 + 1.00216 * r_v - 7.35778e-5 * r_v**2 - r_v,
                   0.700127 + 1.00184 * r_v - 3.32598e-5 * r_v**2 - r_v,
                   1.19456 + 1.01707 * r_v - 5.46959e-3 * r_v**2 + 7.97809e-4 * r_v**3 - 4.45636e-5 * r_v**4 - r_v,
                   uv(xk[7]), uv(xk[8])])
    k = np.where(x >= xk[7], uv(x), spline_eval(np.clip(x, 0, xk[7]), xk, yk, natural_spline_matrix(xk)))
    return 1 + k / r_v


class SNIaSED:
    """The loaded model; `draw` makes per-object parameters, `rest_frame_mag` the spectra."""

    def __init__(self, root: Path):
        import h5py
        import yaml

        with h5py.File(root / "data" / "hsiao.h5", "r") as f:
            d = f["default"]
            self.h_phase = d["phase"][()].astype(float)
            self.h_wave = d["wave"][()].astype(float)
            self.h_flux = d["flux"][()].astype(float)  # (phase, wave), f_lambda
        with open(root / "model_files" / "W22_model" / "BAYESN.YAML") as fh:
            y = yaml.safe_load(fh)
        self.l_knots = np.array(y["L_KNOTS"], float)
        self.t_knots = np.array(y["TAU_KNOTS"], float)
        self.w0 = np.array(y["W0"], float)
        self.w1 = np.array(y["W1"], float)
        self.l_sigma = np.array(y["L_SIGMA_EPSILON"], float)
        self.m0 = float(y["M0"]) + 5 * np.log10(H0 / H0_BAYESN)
        self.sigma0 = float(y["SIGMA0"])
        self.r_v = float(y["RV"])
        self.tau_a = float(y["TAUA"])
        self.m_l = natural_spline_matrix(self.l_knots)
        self.m_t = natural_spline_matrix(self.t_knots)
        self._dust_wave = np.linspace(1000.0, 30000.0, 2901)
        self._dust = f99_a_over_av(self._dust_wave, self.r_v)

    def draw(self, n: int, rng: np.random.Generator, tau_a: float | None = None) -> dict[str, np.ndarray]:
        """Population draws; `tau_a` replaces the model's host-dust scale (a survey's own)."""
        nl, nt = len(self.l_knots), len(self.t_knots)
        theta = rng.normal(0.0, 1.0, n)
        av = rng.exponential(self.tau_a if tau_a is None else tau_a, n)
        dm = rng.normal(0.0, self.sigma0, n)
        e = rng.normal(size=(n, self.l_sigma.shape[0]))
        eps = np.zeros((n, nl, nt))
        eps[:, 1:-1, :] = (e @ self.l_sigma.T).reshape(n, nl - 2, nt, order="F")
        return {"theta": theta, "host_av": av, "m_peak": self.m0 + dm, "sed_eps": eps}

    def hsiao(self, t: np.ndarray, lam: np.ndarray) -> np.ndarray:
        """Template f_lambda, bilinear in (phase, wavelength), with the fireball start and late fade."""
        p = self.h_phase
        out = bilinear(p, self.h_wave, self.h_flux, t, lam)
        early = np.clip((t - EXPLOSION) / (p[0] - EXPLOSION), 0, 1) ** 2
        late = 10 ** (-0.4 * LATE_SLOPE * np.maximum(t - p[-1], 0))
        return out * np.where(t < p[0], early, 1.0) * late

    def warp(self, t: np.ndarray, lam: np.ndarray, w_obj: np.ndarray) -> np.ndarray:
        """W(t, lam) for per-object knot matrices `w_obj` (n, n_l, n_t); t and lam are (n, ...)
        and broadcast (t may have length 1 on the band-step axis)."""
        extra = t.ndim - 1
        wt = w_obj.reshape(w_obj.shape[:1] + (1,) * extra + w_obj.shape[1:])  # (n, 1.., n_l, n_t)
        # the phase spline for all wavelength knots at once, at t's own shape
        q, a, b, c, d = _spline_weights(t, self.t_knots)
        ypp = wt @ self.m_t.T
        idx = np.broadcast_to(q[..., None, None], t.shape + (wt.shape[-2], 1))

        def take(v, i):
            return np.take_along_axis(np.broadcast_to(v, t.shape + v.shape[-2:]), i, axis=-1)[..., 0]

        w_at_t = (a[..., None] * take(wt, idx) + b[..., None] * take(wt, idx + 1)
                  + c[..., None] * take(ypp, idx) + d[..., None] * take(ypp, idx + 1))  # (..., n_l)
        shape = np.broadcast_shapes(t.shape, lam.shape)
        lam_w = np.clip(np.broadcast_to(lam, shape), W_BLUE, None)
        return spline_eval(lam_w, self.l_knots, w_at_t, self.m_l)

    def host_dust(self, lam: np.ndarray, av: np.ndarray) -> np.ndarray:
        return av * np.interp(lam, self._dust_wave, self._dust)

    def rest_frame_mag(self, t: np.ndarray, lam: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """Absolute AB magnitude (host dust included) at rest wavelength `lam`, `t` rest days
        from B maximum; `t` and `lam` are (objects, ...), p holds per-object arrays (n,)."""
        n = p["theta"].shape[0]
        w_obj = self.w0 + p["theta"][:, None, None] * self.w1 + p["sed_eps"]
        w = self.warp(t, lam, w_obj)
        shape = (n,) + (1,) * (np.broadcast_shapes(t.shape, lam.shape).__len__() - 1)
        h = self.hsiao(t, lam)
        with np.errstate(divide="ignore"):
            m_h = -2.5 * np.log10(h * lam**2 / _C_FAB)
        return (p["m_peak"].reshape(shape) + w + m_h
                + self.host_dust(lam, p["host_av"].reshape(shape)))


@lru_cache(maxsize=1)
def model() -> SNIaSED:
    return SNIaSED(_root())
