"""deploy_summary: the lines a deploy ends with, per party (plugins/filter/deploy.py)."""
import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.filter.deploy import deploy_summary, parties_phrase

NETWORK = {"parties": [{"party_id": 1, "privatelink_service_name": ""},
                       {"party_id": 2, "privatelink_service_name": "com.amazonaws.vpce.eu-west-1.vpce-svc-02"},
                       {"party_id": 3, "privatelink_service_name": ""}]}
SERVICE_1 = "com.amazonaws.vpce.eu-west-1.vpce-svc-01"


def facts(**override):
    base = {
        "eks_cluster": {"name": "kms-p1", "kubernetes_version": "1.32", "region": "eu-west-1", "vpc_id": "vpc-1"},
        "nitro_nodegroup": {"nodegroup_name": "kms-p1-enclave", "kms_key_alias": "alias/kms-p1"},
        "vault_buckets": {"private_bucket": "p1-private", "public_bucket": "p1-public", "backup_bucket": ""},
        "connector_db": {"enabled": False},
        "kms_workload": {"namespace": "kms", "pod": "kms-core-0", "enclave": True, "image": "ghcr.io/zama-ai/kms/core-service-enclave:v0.14.1"},
        "privatelink": {"service_name": SERVICE_1, "service_state": "Available",
                        "peer_endpoints": {2: {"endpoint_id": "vpce-2"}}, "peers_without_service_name": [3]},
        "prss_init": {"initialized": False, "waiting_for_peers": [3]},
    }
    base.update(override)
    return base


def by_label(lines):
    out = {}
    for line in lines:
        out.setdefault(line[:16].strip(), []).append(line[17:])
    return out


@pytest.mark.parametrize("ids,text", [([], "no party"), ([4], "party 4"), (["4", 2], "parties 2 and 4"),
                                      ([3, 2, 4], "parties 2, 3 and 4")])
def test_parties_phrase(ids, text):
    assert parties_phrase(ids) == text


def test_a_first_deploy_names_what_to_send_and_whom_to_wait_for():
    rows = by_label(deploy_summary(facts(), NETWORK, 1))
    assert rows["cluster"] == ["kms-p1 (Kubernetes 1.32, eu-west-1), VPC vpc-1"]
    assert rows["node group"] == ["kms-p1-enclave; party key alias/kms-p1"]
    assert rows["vaults"] == ["private p1-private, public p1-public"]
    assert "connector db" not in rows
    assert rows["node"] == ["kms/kms-core-0, enclave, image ghcr.io/zama-ai/kms/core-service-enclave:v0.14.1"]
    assert rows["service offered"] == [SERVICE_1 + " (Available)"]
    assert rows["peers"] == ["connected to party 2; no service name yet for party 3"]
    assert rows["PRSS"] == ["WAITING: not started, this party cannot reach party 3 yet"]
    assert len(rows["next"]) == 2
    assert SERVICE_1 in rows["next"][0] and "network coordinators" in rows["next"][0]
    assert "published the endpoint service names of party 3" in rows["next"][1]


def test_a_network_in_place_has_nothing_left_to_do():
    network = {"parties": [dict(p, privatelink_service_name=SERVICE_1) if p["party_id"] == 1 else p
                           for p in NETWORK["parties"]]}
    done = facts(privatelink=dict(facts()["privatelink"], peers_without_service_name=[],
                                  peer_endpoints={2: {}, 3: {}}),
                 prss_init={"initialized": True, "epoch_id": "e1", "waiting_for_peers": []})
    rows = by_label(deploy_summary(done, network, 1))
    assert rows["peers"] == ["connected to parties 2 and 3"]
    assert rows["PRSS"] == ["initialised (epoch e1)"]
    assert rows["next"] == ["Nothing: playbooks/check_network.yml shows the network's health as this party sees it."]


def test_roles_left_out_by_tags_are_reported_as_not_run():
    rows = by_label(deploy_summary(facts(privatelink={}, prss_init={}, kms_workload={}), NETWORK, 1))
    assert "peers" not in rows and "node" not in rows and "service offered" not in rows
    assert rows["PRSS"] == ["not run (prss_init skipped)"]


def test_a_connector_database_is_listed_when_enabled():
    rows = by_label(deploy_summary(facts(connector_db={"enabled": True, "identifier": "kms-p1-connector",
                                                       "address": ""}), NETWORK, 1))
    assert rows["connector db"] == ["kms-p1-connector (address not known yet)"]
