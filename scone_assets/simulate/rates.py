"""Class fractions a survey holds: volumetric rates times what its selection keeps.

A survey's sample is not the mix of supernovae that explode: bright classes are seen
out to far larger volumes, so a magnitude-limited sample is mostly SNe Ia while most
explosions are core collapse. SNANA simulates rates and lets the selection decide; a
`--like` simulation does the same without simulating every rejected object: a pilot
batch of each subtype, drawn and observed as the survey's objects were (like.py), gives
the share its detection and selection keep, and the written mix is rate x share.

Relative volumetric rates, per explosion in a volume-limited sample (Li et al. 2011,
LOSS: SNe Ia 24%, Ibc 19%, II 57%):
- SN Ia subtypes (Li et al. 2011): normal and 91T-like 79% of SNe Ia, 91bg-like 15%,
  02cx-like (Iax) 5%;
- SN II subtypes (Li et al. 2011): II-P 70%, II-L 10%, IIn 9%, and IIb 12%, which has no
  model here and is counted with II-L (a decline without a plateau);
- SN Ibc: Ib and Ic in the proportion of the default mix (classes.py);
- SLSN-I: about 3e-4 of the core-collapse rate (Quimby et al. 2013).
"""

from __future__ import annotations

import numpy as np

from scone_assets.simulate.classes import SUBTYPES, SimulationError

_IA, _IBC, _II = 0.24, 0.19, 0.57
VOLUMETRIC_RATES: dict[str, float] = {
    "SNIa": _IA * 0.79, "SNIa-91bg": _IA * 0.15, "SNIax": _IA * 0.05,
    "SNIIP": _II * 0.70, "SNIIL": _II * (0.10 + 0.12), "SNIIn": _II * 0.09,
    "SNIb": _IBC * 7 / 18, "SNIc": _IBC * 11 / 18,
    "SLSN-I": (_II + _IBC) * 3e-4,
}
PILOT = 2000  # objects per subtype; the share kept is then known to a few percent of itself


def survey_mix(model, seed: int, pilot: int = PILOT) -> tuple[dict[str, float], dict[str, float]]:
    """(written fractions, share kept per subtype) for a `--like` survey model: each
    subtype's volumetric rate times the share of a pilot batch its detection and selection
    keep. Seeded apart from the simulation's own draws."""
    from scone_assets.simulate.generate import simulate_batch_like

    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    kept = {}
    for name in sorted(VOLUMETRIC_RATES, key=lambda k: SUBTYPES[k].gentype):
        detected = simulate_batch_like(SUBTYPES[name], model, pilot, rng).detected
        kept[name] = float(np.mean(detected))
    weights = {k: VOLUMETRIC_RATES[k] * kept[k] for k in VOLUMETRIC_RATES}
    total = sum(weights.values())
    if total <= 0:
        raise SimulationError(f"--like: none of {pilot} simulated objects of any class passes the survey's "
                              "detection and selection; give --mix to choose the classes")
    return {k: v / total for k, v in weights.items() if v > 0}, kept
