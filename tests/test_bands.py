import pytest

from scone_assets.bands import BandError, band_letter, resolve_band_to_wave


def test_band_letter_reduces_full_names():
    assert band_letter("DES-g") == "g"
    assert band_letter(" LSST-z ") == "z"
    assert band_letter("CSP-r/c") == "c"
    assert band_letter("i") == "i"


def test_source_order_readme_then_config_then_full_name_then_survey():
    w = resolve_band_to_wave(["g", "r", "c"], readme_filters={"g": 4000.0}, config_map={"r": 6000.0},
                             survey="DES", full_names={"c": "CSP-r/c"})
    assert w == {"g": 4000.0, "r": 6000.0, "c": 6185.0}
    assert resolve_band_to_wave(["z"], survey="DES") == {"z": 9181.0}
    assert resolve_band_to_wave(["Y"], survey="LSST") == {"Y": 9712.0}
    # a named system wins over the survey guess for a reused letter
    assert resolve_band_to_wave(["r"], survey="DES", full_names={"r": "CFA3K-V/r"}) == {"r": 5450.0}


def test_unplaced_bands_are_named():
    with pytest.raises(BandError, match=r"band\(s\) Q, W .*band_to_wave"):
        resolve_band_to_wave(["Q", "W", "g"], survey="DES")


def test_vega_based_bands_are_named_by_their_filter():
    from scone_assets.bands import ab_minus_own

    # Johnson-Cousins and NIR letters of systems without a survey table: Vega-based
    assert ab_minus_own("CFA3S-R/x") == 0.21 and ab_minus_own("CFA3S-I/y") == 0.45
    assert ab_minus_own("CSP-B/e") == -0.09 and ab_minus_own("CSP-m/h") == 0.02  # a CSP V variant
    assert ab_minus_own("CSP-H/n") == 1.39 and ab_minus_own("CSP-y/k") == 0.634
    # SDSS-like letters, survey tables (LSST Y, Roman J) and bare letters: AB
    assert ab_minus_own("CSP-g/b") == ab_minus_own("CFA3K-r/s") == 0.0
    assert ab_minus_own("LSST-Y") == ab_minus_own("NGRST-J") == ab_minus_own("YSE-X") == ab_minus_own("R") == 0.0
