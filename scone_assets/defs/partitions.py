"""Two dynamic partition sets: training simulations and survey data, one partition per input unit.

A training simulation is never classified and survey data is never trained on, so each
asset is partitioned only over the set it applies to and nothing shows as permanently
missing. Keys are the library's input-unit keys (a HEAD/PHOT pair, or up to 1,000 TEXT
files), e.g. `DES_SIM__DES_Ia-0001` in `training_sims` or `LOWZ_REAL__DES-SN5YR_LOWZ` in
`survey_data`. The role names are SCONE's modes: `train` and `predict` configs.
"""

from typing import Literal

import dagster as dg

Role = Literal["train", "predict"]
ROLES: tuple[Role, ...] = ("train", "predict")
TRAINING_SIMS = "training_sims"
SURVEY_DATA = "survey_data"
PARTITIONS_NAMES: dict[Role, str] = {"train": TRAINING_SIMS, "predict": SURVEY_DATA}

training_partitions = dg.DynamicPartitionsDefinition(name=TRAINING_SIMS)
survey_partitions = dg.DynamicPartitionsDefinition(name=SURVEY_DATA)
PARTITIONS: dict[Role, dg.DynamicPartitionsDefinition] = {"train": training_partitions,
                                                          "predict": survey_partitions}


def role_of(partitions_def: dg.PartitionsDefinition | None) -> Role:
    """Which config an asset's partition belongs to, from the asset's partitions definition."""
    for role, pdef in PARTITIONS.items():
        if partitions_def == pdef:
            return role
    raise ValueError(f"{partitions_def} is neither {TRAINING_SIMS} nor {SURVEY_DATA}")
