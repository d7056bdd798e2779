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
