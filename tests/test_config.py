import warnings

import pytest

from scone_assets.config import (
    ConfigError,
    SconeConfig,
    UnknownConfigKeyWarning,
    config_from_dict,
    load_config,
)


def test_defaults_are_scones():
    c = SconeConfig()
    assert (c.num_wavelength_bins, c.num_mjd_bins) == (32, 180)
    assert c.prob_column_name == "PROB_SCONE"
    assert c.streaming_threshold == 75000 and c.chunk_size == 1000 and c.micro_batch_size == 64
    assert c.enable_balanced_mode and c.memory_optimize and not c.force_streaming
    assert c.debug_flag == 0 and c.class_balanced is False and c.mode == "train"


def test_every_scone_key_is_accepted_without_warning(tmp_path):
    text = """
input_path: $HOME/sims
heatmaps_path: /tmp/h
output_path: /tmp/o
mode: train
num_epochs: 3
sn_type_id_to_name: {1: SNIa, 20: SNII}
class_balanced: true
categorical: false
max_per_type: 100
with_z: true
num_wavelength_bins: 16
num_mjd_bins: 40
batch_size: 8
train_proportion: 0.7
val_proportion: 0.15
seed: 3
prob_column_name: PROB_X
output_predict_file: /tmp/p.csv
early_lightcurves: [0, 5]
early_lightcurves_mixed: false
has_peakmjd: true
band_to_wave: {g: 4800}
labels_path: /tmp/l.csv
survey: DES
enable_balanced_mode: true
balanced_batch_size: 64
chunk_size: 500
streaming_threshold: 1000
gc_frequency: 10
enable_micro_batching: false
micro_batch_size: 16
memory_optimize: false
force_streaming: false
debug_flag: -901
verbose_data_loading: true
"""
    path = tmp_path / "c.yml"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = load_config(path)
    assert c.input_path.endswith("/sims") and "$HOME" not in c.input_path
    assert c.sn_type_id_to_name == {1: "SNIa", 20: "SNII"}
    assert c.early_truncations == [0.0, 5.0]
    assert c.debug_flag == -901 and c.num_mjd_bins == 40


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"num_epochs.*(integer|int)"):
        config_from_dict({"num_epochs": "many"})
    with pytest.raises(ConfigError, match="debug_flag"):
        config_from_dict({"debug_flag": 5})
    with pytest.raises(ConfigError, match="mode"):
        config_from_dict({"mode": "fit"})


def test_unknown_key_warns_with_its_name():
    with pytest.warns(UnknownConfigKeyWarning, match="num_epoch'"):
        config_from_dict({"num_epoch": 3})


def test_paired_paths_and_predict_need_their_partners():
    with pytest.raises(ConfigError, match="together"):
        config_from_dict({"metadata_paths": ["a_HEAD.FITS"]})
    with pytest.raises(ConfigError, match="pair 1-1"):
        config_from_dict({"metadata_paths": ["a", "b"], "lcdata_paths": ["c"]})
    with pytest.raises(ConfigError, match="trained_model"):
        config_from_dict({"mode": "predict"})
    with pytest.raises(ConfigError, match="train_proportion"):
        config_from_dict({"train_proportion": 0.9, "val_proportion": 0.2})


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("num_epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_scone_selection_and_slurm_keys_have_scones_meaning(tmp_path, caplog, monkeypatch):
    """prescale/nevt as SCONE writes them, heatmaps_path and output_predict_file defaults,
    SCONE's memory knobs accepted with a note naming them, an unknown key still warned."""
    import logging

    monkeypatch.setenv("TEMPLATES", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="scone_assets.config"), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        c = config_from_dict({
            "output_path": str(tmp_path / "out"), "prescale_heatmaps": "20,10", "nevt_select_heatmaps": 500,
            "Ia_fraction": 0.5, "output_predict_file": "pred.csv", "sbatch_template_train": "$TEMPLATES/t.sh",
            "sbatch_job_name": "LSST__scone", "ultra_low_memory_mode": True, "has_ids": True, "num_epoch": 3})
    assert c.prescale_heatmaps == (20, 10) and c.nevt_select_heatmaps == (500, 500)
    assert c.heatmaps_path == str(tmp_path / "out" / "heatmaps")
    assert c.predictions_file() == tmp_path / "out" / "pred.csv"
    assert c.sbatch_template_train == str(tmp_path / "t.sh")
    notes = [r.getMessage() for r in caplog.records]
    assert any("ultra_low_memory_mode is accepted and has no effect" in n for n in notes)
    assert any("has_ids is accepted" in n for n in notes)
    unknown = [str(x.message) for x in w if issubclass(x.category, UnknownConfigKeyWarning)]
    assert unknown == ["unknown config key 'num_epoch' is ignored (check its spelling)"]
    assert config_from_dict({"output_predict_file": "/elsewhere/p.csv", "output_path": "/o"}
                            ).predictions_file().as_posix() == "/elsewhere/p.csv"
    assert config_from_dict({"Ia_fraction": "categorical"}).Ia_fraction == "categorical"
    # count_as_ia: any spelling of a class, reduced to the name the heatmaps hold, once each
    assert config_from_dict({"count_as_ia": ["Ia-91bg", "SN Ia-91bg", "Iax"]}).count_as_ia == ["SNIa-91bg", "SNIax"]
    assert config_from_dict({"count_as_ia": "SNIa-91bg"}).count_as_ia == ["SNIa-91bg"]
    assert config_from_dict({}).count_as_ia == []
    for bad, key in (({"prescale_heatmaps": "a,b"}, "prescale_heatmaps"), ({"prescale_heatmaps": "1,2,3"},
                     "prescale_heatmaps"), ({"nevt_select_heatmaps": 0}, "nevt_select_heatmaps"),
                     ({"nevt_select_heatmaps": [0, 5]}, "nevt_select_heatmaps"),
                     ({"Ia_fraction": 1.5}, "Ia_fraction"), ({"count_as_ia": ["SN Ia"]}, "count_as_ia"),
                     ({"count_as_ia": [""]}, "count_as_ia")):
        with pytest.raises(ConfigError, match=key):
            config_from_dict(bad)


def test_heatmaps_paths_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="heatmaps_paths: training on several heatmap folders"):
        config_from_dict({"heatmaps_paths": ["/a/heatmaps", "/b/heatmaps"]})


def test_readme_names_every_accepted_and_refused_scone_key():
    """The Pippin section of the README lists what a SCONE user's keys do here."""
    from pathlib import Path

    from scone_assets.config import NOT_APPLICABLE, REFUSED

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Using it from Pippin"):readme.index("## Layout")]
    missing = [k for k in (*NOT_APPLICABLE, *REFUSED) if f"`{k}`" not in section and f"/`{k}`" not in section]
    assert missing == []
