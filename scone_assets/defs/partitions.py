"""One dynamic partition per SNANA input unit, for training and survey data alike.

Keys are `<role>:<unit>`, e.g. `train:DES_SIM__DES_Ia-0001` or
`predict:LOWZ_REAL__DES-SN5YR_LOWZ`: the role says which SCONE config (train or
predict) the unit belongs to, the unit is the library's input unit (a HEAD/PHOT
pair or up to 1,000 TEXT files). Both roles flow through the same assets;
`trained_model` reads the `train:` partitions and `predictions` the `predict:` ones.
"""


import dagster as dg

PARTITIONS_NAME = "snana_inputs"
ROLES = ("train", "predict")

snana_partitions = dg.DynamicPartitionsDefinition(name=PARTITIONS_NAME)


def partition_key(role: str, unit_key: str) -> str:
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    return f"{role}:{unit_key}"


def split_key(key: str) -> tuple[str, str]:
    role, sep, unit = key.partition(":")
    if not sep or role not in ROLES:
        raise ValueError(f"partition key {key!r} is not '<train|predict>:<unit>'")
    return role, unit
