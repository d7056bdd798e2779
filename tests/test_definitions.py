import dagster as dg


def test_code_location_loads():
    from scone_assets.definitions import defs

    assert isinstance(defs, dg.Definitions)
