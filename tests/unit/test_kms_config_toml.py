"""The to_toml / from_toml filters (plugins/filter/toml.py), used by the kms_config role."""
import tomllib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.threshold_kms.mpc_party.plugins.filter.toml import FilterModule, from_toml, to_toml


class TaggedStr(str):
    """Stands for the str subclasses Ansible hands to filters."""


def test_filters_are_registered():
    assert set(FilterModule().filters()) == {"to_toml", "from_toml"}


def test_round_trip_with_array_of_tables_and_pem():
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    doc = {
        "service": {"listen_address": TaggedStr("0.0.0.0"), "listen_port": 50100},
        "threshold": {"peers": [{"party_id": 1, "address": "p1", "port": 50001, "tls_cert": {"pem": pem}},
                                {"party_id": 2, "address": "p2", "port": 50002, "tls_cert": {"pem": pem}}],
                      "tls": {"auto": {"trusted_releases": [{"pcr0": "a", "pcr1": "b", "pcr2": "c"}]}}},
        "telemetry": {"enable_sys_metrics": True, "ratio": 1.5},
    }
    text = to_toml(doc)
    assert "[[threshold.peers]]" in text
    assert '"""' in text  # the PEM is written as a multi-line string
    assert tomllib.loads(text) == doc
    assert from_toml(text) == doc


def test_none_means_absent_in_tables():
    text = to_toml({"threshold": {"my_id": 1, "num_sessions_preproc": None}, "backup_vault": None})
    assert tomllib.loads(text) == {"threshold": {"my_id": 1}}


def test_none_can_be_refused():
    with pytest.raises(AnsibleFilterError, match="threshold.num_sessions_preproc: TOML has no null"):
        to_toml({"threshold": {"num_sessions_preproc": None}}, skip_none=False)


def test_none_in_an_array_is_an_error_naming_the_path():
    with pytest.raises(AnsibleFilterError, match=r"threshold.peers\[1\]: TOML arrays cannot hold null"):
        to_toml({"threshold": {"peers": [{"party_id": 1}, None]}})


def test_top_level_must_be_a_table():
    with pytest.raises(AnsibleFilterError, match="top level of a TOML document is a table"):
        to_toml([1, 2])


def test_unserialisable_value_names_the_path():
    with pytest.raises(AnsibleFilterError, match="service.listen_port: a set cannot be written"):
        to_toml({"service": {"listen_port": {1, 2}}})


def test_integer_keys_become_strings():
    assert tomllib.loads(to_toml({"pems": {1: "a"}})) == {"pems": {"1": "a"}}


def test_from_toml_reports_syntax_errors():
    with pytest.raises(AnsibleFilterError, match="from_toml: not valid TOML"):
        from_toml("[service\n")
