"""The scone-assets Dagster code location (`workspace.yaml` loads `defs`).

The library under `scone_assets/` knows nothing of Dagster; the assets,
partitions, IO managers, sensors and schedules that wrap it live under
`scone_assets/defs/` and are collected here as they land.
"""

import dagster as dg

defs = dg.Definitions()
