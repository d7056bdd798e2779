"""Heatmap shards are written and read without TensorFlow (heatmaps/tfrecord.py), and
TensorFlow, which training reads them with, agrees with every byte: frames, checksums and
records, ours read by it and its own (SCONE's records among them) read here."""

import subprocess
import sys

import numpy as np
import pytest

from scone_assets.config import SconeConfig
from scone_assets.heatmaps import store, tfrecord
from scone_assets.heatmaps.run import make_heatmaps
from scone_assets.simulate.run import simulate

SHAPE = (32, 30)


@pytest.fixture(scope="module")
def unit(tmp_path_factory):
    """A unit of 20 heatmaps made from simulated SNANA files."""
    root = tmp_path_factory.mktemp("tfr")
    simulate(root / "S", 20, survey="des", seed=8, per_file=20, jobs=1, progress=False)
    cfg = SconeConfig(input_path=str(root / "S"), heatmaps_path=str(root / "h"), num_mjd_bins=SHAPE[1])
    [res] = make_heatmaps(cfg, jobs=1, progress=False).results
    assert res.status == "done" and res.written == 20
    return res.folder


def test_tensorflow_reads_our_shards_and_writes_the_same_bytes(unit, tmp_path):
    import tensorflow as tf

    shard = unit / store.SHARD
    ours = list(store.read_shard(shard, SHAPE))
    assert len(ours) == 20 and len({r["snid"] for r in ours}) == 20
    raw = list(tf.data.TFRecordDataset(str(shard)).as_numpy_iterator())
    assert raw == list(tfrecord.read_records(shard))
    # training's parser (tf.io.parse_single_example) on our records: same objects, same images
    parsed = list(tf.data.TFRecordDataset(str(shard)).map(store.parse_fn(SHAPE)).as_numpy_iterator())
    assert [p[1].decode() for p in parsed] == [r["snid"] for r in ours]
    assert [p[2].decode() for p in parsed] == [r["type_name"] for r in ours]
    for (image, _, _, z, _), rec in zip(parsed, ours, strict=True):
        np.testing.assert_array_equal(image, rec["image"] / rec["image"][:, :, 0].max())
        assert z == np.float32(rec["z"])
    # TensorFlow's writer frames the same records into the same bytes
    copy = tmp_path / "tf.tfrecord"
    with tf.io.TFRecordWriter(str(copy)) as writer:
        for r in raw:
            writer.write(r)
    assert copy.read_bytes() == shard.read_bytes()


def test_examples_agree_with_tensorflow_both_ways(tmp_path):
    import tensorflow as tf

    values = {"ints": [1, -2, 2**40, 0], "floats": [0.5, -1.25, 3.0e-5], "names": [b"2019lbi", b""],
              "one": -9}
    ex = tf.train.Example.FromString(tfrecord.encode_example(values))
    f = ex.features.feature
    assert list(f["ints"].int64_list.value) == [1, -2, 2**40, 0]
    assert list(f["floats"].float_list.value) == [0.5, -1.25, pytest.approx(3.0e-5)]
    assert list(f["names"].bytes_list.value) == [b"2019lbi", b""]
    assert list(f["one"].int64_list.value) == [-9]
    # and what TensorFlow serializes decodes here the same
    assert tfrecord.decode_example(ex.SerializeToString()) == tfrecord.decode_example(
        tfrecord.encode_example(values)) == {**values, "floats": [0.5, -1.25, float(np.float32(3.0e-5))],
                                             "one": [-9]}
    with pytest.raises(TypeError, match="all int, all float or all bytes"):
        tfrecord.encode_example({"mixed": [1, 2.0]})
    with pytest.raises(TypeError, match="all int, all float or all bytes"):
        tfrecord.encode_example({"flag": True})

    # SCONE's own records, written by TensorFlow: float64 images, no snid or type_name
    image = np.random.default_rng(1).random((*SHAPE, 2))
    feature = {"id": tf.train.Feature(int64_list=tf.train.Int64List(value=[1186139])),
               "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[1])),
               "z": tf.train.Feature(float_list=tf.train.FloatList(value=[0.21])),
               "z_err": tf.train.Feature(float_list=tf.train.FloatList(value=[0.01])),
               "image_raw": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()]))}
    without_z = {k: v for k, v in feature.items() if k not in ("z", "z_err")}  # and one without a redshift
    path = tmp_path / "scone.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for features in (feature, without_z):
            writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    [rec, no_z] = store.read_shard(path, SHAPE)
    assert (rec["snid"], rec["id"], rec["label"], rec["type_name"]) == ("1186139", 1186139, 1, "")
    assert rec["z"] == pytest.approx(0.21) and rec["image"].dtype == np.float32
    np.testing.assert_array_equal(rec["image"], image.astype(np.float32))
    # read as training's parser reads it: the missing redshift is SCONE's -9
    [parsed] = list(tf.data.TFRecordDataset(str(path)).skip(1).map(store.parse_fn(SHAPE)).as_numpy_iterator())
    assert (no_z["z"], no_z["z_err"]) == (parsed[3], parsed[4]) == (store.NO_Z, store.NO_Z)


def test_damaged_shards_name_the_file_and_the_byte(unit, tmp_path):
    data = (unit / store.SHARD).read_bytes()
    starts = np.cumsum([0] + [12 + len(r) + 4 for r in tfrecord.read_records(unit / store.SHARD)])
    assert len(starts) == 21 and starts[-1] == len(data)
    cut = tmp_path / "cut.tfrecord"
    cut.write_bytes(data[:-100])
    with pytest.raises(tfrecord.RecordError, match=rf"cut\.tfrecord: cut short at byte {starts[19]} "):
        list(store.read_shard(cut, SHAPE))
    flipped = bytearray(data)
    flipped[starts[2] + 500] ^= 0x01  # inside the third record's image
    bad = tmp_path / "bad.tfrecord"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(tfrecord.RecordError, match=rf"bad\.tfrecord: the record at byte {starts[2]} does not "
                                                    "match its checksum"):
        list(store.read_shard(bad, SHAPE))
    assert len(list(tfrecord.read_records(unit / store.SHARD))) == 20  # the original is untouched
    # well framed, but not a heatmap record: the features it lacks are named
    other = tmp_path / "other.tfrecord"
    with open(other, "wb") as f:
        tfrecord.write_records(f, [tfrecord.encode_example({"id": 7, "z": 0.1})])
    with pytest.raises(tfrecord.RecordError, match=r"other\.tfrecord: a record without label, image_raw$"):
        list(store.read_shard(other, SHAPE))


def test_making_heatmaps_never_loads_tensorflow(unit, tmp_path):
    """`scone heatmaps` and reading a shard back (the Dagster asset's example picture) run
    without TensorFlow: it would cost every heatmaps process about 3 s and 480 MB."""
    sims = unit.parents[2] / "S"
    config = tmp_path / "c.yml"
    config.write_text(f"input_path: {sims}\nheatmaps_path: {tmp_path / 'h'}\nnum_mjd_bins: {SHAPE[1]}\n")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from scone_assets.cli import main\n"
        "from scone_assets.heatmaps import store\n"
        f"code = main(['heatmaps', '--config_path', {str(config)!r}, '--jobs', '1'])\n"
        f"n = sum(1 for _ in store.read_shard(next(Path({str(tmp_path / 'h')!r}).rglob(store.SHARD)), {SHAPE}))\n"
        "print('exit', code, 'records', n, 'tensorflow', 'tensorflow' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert res.stdout.splitlines()[-1] == "exit 0 records 20 tensorflow False", res.stdout + res.stderr
