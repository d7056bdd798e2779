from scone_assets.snana.readme import parse_readme
from scone_assets.snana.types import class_name, type_name_for


def test_modern_documentation_block(des_sim):
    info = parse_readme((des_sim / "PIP_sim.README.example").read_text())
    assert info.is_sim
    assert info.gentype_to_name[1] == "SNIa" and info.ia_flags[1] and not info.ia_flags[20]
    assert info.gentype_to_name[20] == "SNIIP" and info.gentype_to_name[32] == "SNIb"
    assert info.filters == {"g": 4827.7, "r": 6434.8, "i": 7828.1, "z": 9181.2}


def test_snpcc_tags(snpcc):
    info = parse_readme((snpcc / "snpcc_dev.README").read_text())
    assert info.gentype_to_name == {1: "Ia", 2: "II", 3: "Ib/c", 21: "IIn", 22: "IIP",
                                    23: "IIL", 32: "Ib", 33: "Ic"}


def test_class_names():
    cases = {"Ia": "SNIa", "SNIa": "SNIa", "SALT3.DOVEKIE": "SNIa", "SNIIP": "SNII", "IIn": "SNII",
             "SNIIIL2": "SNII", "Ib/c": "SNIbc", "Ic": "SNIbc", "Ibc": "SNIbc", "SNIax": "SNIax",
             "SNIa-91bg": "SNIa-91bg", "SLSN-I": "SLSN-I", "nonIa": "nonIa", "KN": "KN"}
    assert {k: class_name(k) for k in cases} == cases


def test_type_code_order_readme_config_default():
    assert type_name_for(20, readme_map={20: "SNIIP"}, config_map={20: "SNIbc"}) == "SNII"
    assert type_name_for(42, config_map={42: "SNII"}) == "SNII"
    assert type_name_for(111) == "SNIax" and type_name_for(191) == "SNIa-91bg"
    assert type_name_for(999) == "unknown"
