"""SN Ic spectral energy distributions: the SNANA NON1A templates of observed SNe Ic.

The spectra are the eight SN Ic templates SNANA's non-Ia library is built from
(Nugent's SN Ic template mangled to the photometry of CSP-2004fe, CSP-2004gq,
SNLS-04D4jv and SDSS-004012, -013195, -014475, -015475, -017548; Kessler et
al. 2010, the SNPCC), read from the files `snsedextend==0.3.7` (Pierel et al.
2018) ships in its wheel under `example_setup/SEDs/`. `make venv` installs that
wheel `--no-deps` as a data package and it is never imported: its own
dependencies (pymc3, theano, sncosmo) are not needed. The wheel declares no
licence; the templates are SNANA's public non-Ia library. It has no SN Ib or
SN II templates, so those classes stay blackbodies.

Each file is f_lambda on a rectangular (rest-frame phase, wavelength) grid:
about 2 d by 10 A, from about -30 d to +50-140 d and 2200-2800 A to 9350-11460 A.
Choices at the edges, and the population:

- Phases are shifted so that t = 0 is the template's peak at rest-frame B (4400 A),
  the phase the drawn peak magnitude refers to. Phases the files pad with empty
  spectra (B more than 10 mag under the peak) are cut from either end.
- Before the first phase the flux falls as a t^2 fireball over RISE_EDGE days;
  after the last it fades at LATE_SLOPE mag/d, the late decline of stripped-envelope
  SNe as gamma rays escape (Wheeler et al. 2015 measure 0.015-0.03 mag/d).
- Below the bluest wavelength the bluest flux is held; beyond the reddest the
  spectrum continues as Rayleigh-Jeans, f_lambda ~ lambda^-4.
- Each object takes one of the templates uniformly, its peak M_B from the
  subtype's luminosity function (classes.py), and host dust E(B-V) ~ Exp(0.1)
  with CCM89 at R_V = 3.1, as the blackbody core-collapse classes do.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from scone_assets.extinction import ccm89
from scone_assets.simulate.sed_grid import bilinear

TEMPLATES = ("CSP-2004fe", "CSP-2004gq", "SDSS-004012", "SDSS-013195", "SDSS-014475", "SDSS-015475",
             "SDSS-017548", "SNLS-04D4jv")
SED_FOLDER = ("example_setup", "SEDs")
B_WAVE = 4400.0
RISE_EDGE = 10.0  # d of t^2 rise before a template's first phase
LATE_SLOPE = 0.02  # mag / d after a template's last phase
HOST_EBV_MEAN = 0.1
MIN_RELATIVE_FLUX = 1e-4  # B flux below which a padded phase counts as empty (10 mag under the peak)
INSTALL_HINT = ("the SN Ic template model needs the data package snsedextend==0.3.7 (SNANA's SN Ic "
                "templates); install it with `pip install --no-deps snsedextend==0.3.7` (make venv does)")


class MissingTemplateData(RuntimeError):
    pass


def _root() -> Path:
    spec = importlib.util.find_spec("snsedextend")  # the folder, without running its __init__.py
    for loc in list(spec.submodule_search_locations or []) if spec is not None else []:
        if Path(loc, *SED_FOLDER, f"{TEMPLATES[0]}.SED").is_file():
            return Path(loc)
    raise MissingTemplateData(INSTALL_HINT)


@dataclass(frozen=True)
class Template:
    name: str
    phase: np.ndarray  # rest-frame days from the B peak, regular steps
    wave: np.ndarray  # A, regular steps
    flux: np.ndarray  # (phase, wave): f_nu relative to the B peak's


def read_template(path: Path) -> Template:
    """One SNANA SED file (phase, wavelength, f_lambda rows) as a normalised grid."""
    import pandas as pd

    rows = pd.read_csv(path, sep=r"\s+", comment="#", header=None).to_numpy(float)
    phase, wave = np.unique(rows[:, 0]), np.unique(rows[:, 1])
    if rows.shape[1] != 3 or len(phase) * len(wave) != len(rows):
        raise MissingTemplateData(f"{path}: not a rectangular (phase, wavelength, flux) grid")
    order = np.lexsort((rows[:, 1], rows[:, 0]))
    f_nu = np.maximum(rows[order, 2].reshape(len(phase), len(wave)), 0) * wave**2
    j = np.clip(np.searchsorted(wave, B_WAVE), 1, len(wave) - 1)
    u = (B_WAVE - wave[j - 1]) / (wave[j] - wave[j - 1])
    f_b = (1 - u) * f_nu[:, j - 1] + u * f_nu[:, j]
    peak = int(np.argmax(f_b))
    # Some files pad their phase range with empty spectra: keep the phases with light around the peak
    dark = np.flatnonzero(f_b < MIN_RELATIVE_FLUX * f_b[peak])
    lo = int(dark[dark < peak].max()) + 1 if (dark < peak).any() else 0
    hi = int(dark[dark > peak].min()) if (dark > peak).any() else len(phase)
    keep = slice(lo, hi)
    return Template(path.stem, phase[keep] - phase[peak], wave, f_nu[keep] / f_b[peak])


class SNIcTemplates:
    """The loaded templates; `draw` picks one per object, `rest_frame_mag` evaluates it."""

    def __init__(self, root: Path):
        self.templates = [read_template(root.joinpath(*SED_FOLDER, f"{name}.SED")) for name in TEMPLATES]
        self.r_v = 3.1

    def draw(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        which = rng.integers(0, len(self.templates), n)
        first = np.array([t.phase[0] for t in self.templates])[which]
        return {"template": which, "host_ebv": rng.exponential(HOST_EBV_MEAN, n),
                "rise": RISE_EDGE - first}

    @staticmethod
    def _one(tpl: Template, t: np.ndarray, lam: np.ndarray) -> np.ndarray:
        p, w = tpl.phase, tpl.wave
        f = bilinear(p, w, tpl.flux, t, lam)
        f = f * np.where(lam > w[-1], (w[-1] / np.maximum(lam, 1.0)) ** 2, 1.0)  # f_nu of f_lambda ~ lam^-4
        early = np.clip((t - (p[0] - RISE_EDGE)) / RISE_EDGE, 0, 1) ** 2
        late = 10 ** (-0.4 * LATE_SLOPE * np.maximum(t - p[-1], 0))
        with np.errstate(divide="ignore"):
            return -2.5 * np.log10(f * np.where(t < p[0], early, 1.0) * late)

    def rest_frame_mag(self, t: np.ndarray, lam: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
        """Absolute AB magnitude (host dust included) at rest wavelength `lam`, `t` rest days
        from the B peak; `t` and `lam` are (objects, ...), p holds per-object arrays (n,)."""
        shape = np.broadcast_shapes(t.shape, lam.shape)
        t, lam = np.broadcast_to(t, shape), np.broadcast_to(lam, shape)
        out = np.empty(shape)
        for k, tpl in enumerate(self.templates):
            rows = p["template"] == k
            if rows.any():
                out[rows] = self._one(tpl, t[rows], lam[rows])
        tail = (1,) * (len(shape) - 1)
        return (out + p["m_peak"].reshape((-1,) + tail)
                + ccm89(lam, p["host_ebv"].reshape((-1,) + tail), self.r_v))


@lru_cache(maxsize=1)
def model() -> SNIcTemplates:
    return SNIcTemplates(_root())
