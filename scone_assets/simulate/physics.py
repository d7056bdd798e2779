"""From a rest-frame supernova model to observed SNANA fluxes.

Each observation's magnitude is the class's rest-frame light curve at
t_rest = (MJD - peak) / (1 + z), coloured by a blackbody at the model's
temperature, redshifted, dimmed by the distance modulus of flat LambdaCDM
(H0 = 70, Omega_m = 0.3), reddened by host dust in the rest frame and Milky
Way dust in the observer frame (CCM89, R_V = 3.1), and averaged in flux
through a Gaussian band throughput. Fluxes use SNANA's zero point:
FLUXCAL = 10^(-0.4 m + 11).

Subtypes with a spectral model (`Subtype.sed`: the default SN Ia, BayeSN W22
on the Hsiao template, sed_ia.py; SN Ic from SNANA's templates, sed_ic.py) take their rest-frame magnitudes, host dust
included (Fitzpatrick 1999), from that model instead of the blackbody; the
redshifting, distance, Milky Way dust and band average are the same.
"""

from __future__ import annotations

import numpy as np

from scone_assets.extinction import ccm89
from scone_assets.simulate.classes import Subtype

H0 = 70.0
OMEGA_M = 0.3
C_KM_S = 299792.458
HC_OVER_K = 1.4387769e8  # Angstrom * K
B_WAVE = 4400.0  # rest-frame B, where peak magnitudes are defined
BLANKETING_EDGE, BLANKETING_DAYS = 5500.0, 40.0  # SN II line blanketing: below this, full from this day
_THROUGHPUT = np.array([-1.5, -0.75, 0.0, 0.75, 1.5])
_THROUGHPUT_W = np.exp(-0.5 * _THROUGHPUT**2) / np.exp(-0.5 * _THROUGHPUT**2).sum()
# Spectra have lines narrower than a band: 13 steps of 0.33 sigma (the throughput is the same Gaussian)
_THROUGHPUT_SED = np.linspace(-2.0, 2.0, 13)
_THROUGHPUT_SED_W = np.exp(-0.5 * _THROUGHPUT_SED**2) / np.exp(-0.5 * _THROUGHPUT_SED**2).sum()

_Z = np.linspace(0.0, 4.0, 4001)
_E = np.sqrt(OMEGA_M * (1 + _Z) ** 3 + (1 - OMEGA_M))
_DC = np.concatenate([[0.0], np.cumsum(0.5 * (1 / _E[1:] + 1 / _E[:-1]) * np.diff(_Z))]) * C_KM_S / H0  # Mpc


def distance_modulus(z: np.ndarray) -> np.ndarray:
    dl = (1 + z) * np.interp(z, _Z, _DC)
    return 5 * np.log10(dl * 1e6 / 10.0)


def redshift_sampler(z_min: float, z_max: float):
    """Inverse CDF of a volumetric rate: dV/dz / (1+z) x (1+z)^1.5 (star-formation-like
    rise, Madau & Dickinson 2014) on [z_min, z_max]."""
    z = np.linspace(z_min, z_max, 2000)
    dc = np.interp(z, _Z, _DC)
    e = np.sqrt(OMEGA_M * (1 + z) ** 3 + (1 - OMEGA_M))
    pdf = dc**2 / e * (1 + z) ** 0.5
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(z))])
    cdf /= cdf[-1]
    return lambda u: np.interp(u, cdf, z)


def blackbody_color(wave_rest: np.ndarray, temp: np.ndarray) -> np.ndarray:
    """AB magnitude at `wave_rest` relative to rest-frame B for a blackbody (f_nu)."""
    def log_bnu(w):
        x = np.minimum(HC_OVER_K / (w * temp), 600.0)
        return -3 * np.log(w) - np.log(np.expm1(x))

    return -2.5 / np.log(10) * (log_bnu(wave_rest) - log_bnu(B_WAVE))


def decline_mag(sub: Subtype, t: np.ndarray, plateau: np.ndarray | None) -> np.ndarray:
    """Magnitudes below peak after peak (t >= 0, rest-frame days)."""
    if sub.plateau is not None and plateau is not None:
        p = plateau
        return np.select(
            [t < 10, t < p, t < p + 20],
            [0.03 * t, 0.3 + 0.6 * (t - 10) / (p - 10), 0.9 + 2.0 * (t - p) / 20],
            2.9 + 0.0098 * (t - p - 20),  # Co-56 decay
        )
    kt = np.array([k[0] for k in sub.decline])
    km = np.array([k[1] for k in sub.decline])
    slope = (km[-1] - km[-2]) / (kt[-1] - kt[-2])
    return np.where(t <= kt[-1], np.interp(t, kt, km), km[-1] + slope * (t - kt[-1]))


def rest_frame_mag(sub: Subtype, t: np.ndarray, params: dict[str, np.ndarray],
                   wave_rest: np.ndarray) -> np.ndarray:
    """Absolute AB magnitude at rest wavelength `wave_rest`, `t` days from peak.
    `params` arrays broadcast against `t` (one value per object)."""
    rise = params["rise"]
    ts = t / params["stretch"]
    with np.errstate(divide="ignore", invalid="ignore"):
        rising = -5 * np.log10(np.clip((ts + rise) / rise, 1e-30, None))
    shape = np.where(ts < 0, rising, decline_mag(sub, np.maximum(ts, 0), params.get("plateau")))
    shape = np.where(ts <= -rise, np.inf, shape)  # before explosion: no light
    cooling = sub.t_late + (sub.t_peak - sub.t_late) * np.exp(-np.maximum(ts, 0) / sub.t_tau)
    early = sub.t_peak * (1 + 0.3 * np.clip(-ts / rise, 0, 1))  # hotter while rising
    temp = np.where(ts < 0, early, cooling)
    mag = params["m_peak"] + shape + blackbody_color(wave_rest, temp)
    if sub.shape_wave != B_WAVE:  # the decline describes this band: it keeps it as the colours change
        at = np.full(np.shape(temp), sub.shape_wave)
        mag = mag - blackbody_color(at, temp) + blackbody_color(at, np.full(np.shape(temp), float(sub.t_peak)))
    if sub.uv_blanketing:
        mag = mag + 1.0857 * np.clip((4000.0 - wave_rest) / 1000.0, 0, None)
    if sub.blanketing:  # SN II: metal lines take the blue as the ejecta cool (classes.py)
        depth = np.clip((BLANKETING_EDGE - wave_rest) / 1000.0, 0, None) ** 1.5
        mag = mag + sub.blanketing * np.clip(ts / BLANKETING_DAYS, 0, 1) * depth
    return mag


def spectral_model(name: str):
    """The loaded spectral model a subtype names (`Subtype.sed`)."""
    if name == "snana-ic":
        from scone_assets.simulate.sed_ic import model
    else:
        from scone_assets.simulate.sed_ia import model
    return model()


def observed_mag(sub: Subtype, mjd: np.ndarray, wave: np.ndarray, width: np.ndarray,
                 params: dict[str, np.ndarray]) -> np.ndarray:
    """Observed AB magnitudes; `mjd`, `wave`, `width` are (objects, observations)."""
    z = params["z"][:, None]
    t_rest = (mjd - params["peak_mjd"][:, None]) / (1 + z)
    if sub.sed is not None:  # a spectrum: finer steps through the same Gaussian band, host dust inside
        lam = wave[..., None] + width[..., None] * _THROUGHPUT_SED
        lam_rest = lam / (1 + z[..., None])
        mag = spectral_model(sub.sed).rest_frame_mag(t_rest[..., None], lam_rest, params)
        mag = mag + ccm89(lam, params["mwebv"][:, None, None], 3.1)
        weights = _THROUGHPUT_SED_W
    else:
        p2 = {k: (v[:, None, None] if isinstance(v, np.ndarray) else v) for k, v in params.items()}
        lam = wave[..., None] + width[..., None] * _THROUGHPUT  # (n, m, k)
        lam_rest = lam / (1 + z[..., None])
        mag = rest_frame_mag(sub, t_rest[..., None], p2, lam_rest)
        mag = mag + ccm89(lam_rest, p2["host_ebv"], 3.1) + ccm89(lam, p2["mwebv"], 3.1)
        weights = _THROUGHPUT_W
    mag = mag + (params["mu"] - 2.5 * np.log10(1 + params["z"]))[:, None, None]
    flux = np.sum(weights * 10 ** (-0.4 * mag), axis=-1)
    with np.errstate(divide="ignore"):
        return -2.5 * np.log10(flux)


def fluxcal(mag: np.ndarray) -> np.ndarray:
    return 10 ** (-0.4 * mag + 11)
