"""Pictures for the asset page (scone_assets.defs.pictures): a short link the webserver serves in a
run on a real instance, the data-URI fallback outside one. The browser test that finds a real
model's ROC curve drawn on its page is in test_ui.py."""

from pathlib import Path

import dagster as dg


def _wide_png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (1000, 500), "steelblue").save(path)
    return path


def test_outside_a_run_the_picture_stays_behind_the_data_uri(tmp_path):
    import base64
    import io

    from PIL import Image

    from scone_assets.defs.pictures import MAX_WIDTH, picture_metadata

    [(key, value)] = picture_metadata(_wide_png(tmp_path / "wide.png"), "wide [x]").items()
    prefix = "![wide (x)](data:image/png;base64,"
    assert key == "wide" and value.value.startswith(prefix)
    with Image.open(io.BytesIO(base64.b64decode(value.value[len(prefix):-1]))) as image:
        assert image.size == (MAX_WIDTH, MAX_WIDTH // 2)


def test_in_a_run_the_picture_is_a_short_link_the_webserver_serves(tmp_path):
    from scone_assets.defs.pictures import INLINE_LIMIT, picture_metadata

    png = _wide_png(tmp_path / "wide.png")

    @dg.asset
    def wide() -> dg.MaterializeResult:
        return dg.MaterializeResult(metadata=picture_metadata(png, "wide", "picture"))

    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)) as instance:
        run_id = dg.materialize([wide], instance=instance).run_id
        md = instance.get_latest_materialization_event(wide.key).asset_materialization.metadata
    md = md["picture"].value
    assert md.startswith(f"![wide](/logs/{run_id}/pictures/") and md.endswith("/png)")
    assert len(md) < INLINE_LIMIT
    *_, name, _ = md[:-1].split("/")
    assert (home / "storage" / run_id / "pictures" / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
