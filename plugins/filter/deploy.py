# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""deploy_summary: what a party has after a deploy, and what its operator does next."""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.threshold_kms.mpc_party.plugins.filter.privatelink import _plain, privatelink_service_note


def parties_phrase(ids):
    """``party 2``, ``parties 2 and 4``, ``parties 2, 3 and 4``."""
    ids = sorted(int(i) for i in ids)
    if not ids:
        return "no party"
    if len(ids) == 1:
        return "party %d" % ids[0]
    return "parties %s and %d" % (", ".join(str(i) for i in ids[:-1]), ids[-1])


def _listed_service_name(network, party_id):
    for party in (network or {}).get("parties") or []:
        if str(party.get("party_id")) == str(party_id):
            return party.get("privatelink_service_name") or ""
    return ""


def deploy_summary(facts, network=None, party_id=None, check_mode=False):
    """Lines summing up one party after deploy_party.yml (see deploy_summary.yml)."""
    facts = _plain(facts or {})
    cluster, nodegroup = facts.get("eks_cluster") or {}, facts.get("nitro_nodegroup") or {}
    buckets, db = facts.get("vault_buckets") or {}, facts.get("connector_db") or {}
    workload, link, prss = facts.get("kms_workload") or {}, facts.get("privatelink") or {}, facts.get("prss_init") or {}
    lines, next_steps = [], []

    def row(label, text):
        lines.append("%-16s %s" % (label, text))

    row("cluster", "%s (Kubernetes %s, %s), VPC %s" % (cluster.get("name", "?"), cluster.get("kubernetes_version", "?"),
                                                       cluster.get("region", "?"), cluster.get("vpc_id", "?")))
    key = nodegroup.get("kms_key_alias") or nodegroup.get("kms_key_arn") or "?"
    row("node group", "%s; party key %s" % (nodegroup.get("nodegroup_name", "?"), key))
    vaults = ["private %s" % buckets["private_bucket"]] if buckets.get("private_bucket") else []
    vaults += ["public %s" % buckets["public_bucket"]] if buckets.get("public_bucket") else []
    vaults += ["backup %s" % buckets["backup_bucket"]] if buckets.get("backup_bucket") else []
    row("vaults", ", ".join(vaults) or "?")
    if db.get("enabled"):
        row("connector db", "%s (%s)" % (db.get("identifier", "?"), db.get("address") or "address not known yet"))
    if workload:
        row("node", "%s/%s, %s, image %s" % (workload.get("namespace", "?"), workload.get("pod", "?"),
                                            "enclave" if workload.get("enclave") else "no enclave", workload.get("image", "?")))

    if link.get("service_name"):
        row("service offered", "%s (%s)" % (link["service_name"], link.get("service_state") or "?"))
    note = privatelink_service_note(dict(link, party_id=party_id), _listed_service_name(network, party_id), check_mode) \
        if link else ""
    if note.startswith("ACTION: "):
        next_steps.append(note[len("ACTION: "):])
    connected = sorted(int(p) for p in (link.get("peer_endpoints") or {}))
    unnamed = sorted(int(p) for p in link.get("peers_without_service_name") or [])
    if link:
        text = "connected to %s" % parties_phrase(connected) if connected else "no peer connected yet"
        if unnamed:
            text += "; no service name yet for %s" % parties_phrase(unnamed)
        row("peers", text)

    waiting = sorted(int(p) for p in prss.get("waiting_for_peers") or [])
    if not prss:
        row("PRSS", "not run (prss_init skipped)")
    elif prss.get("initialized"):
        row("PRSS", "initialised (epoch %s)" % prss.get("epoch_id", "?"))
    elif waiting:
        row("PRSS", "WAITING: not started, this party cannot reach %s yet" % parties_phrase(waiting))
    elif prss.get("would_start") and check_mode:
        row("PRSS", "would be started by a real run")
    else:
        row("PRSS", "not initialised")
    if unnamed or waiting:
        next_steps.append("Re-run this deploy once the network coordinators have published the endpoint service "
                          "names of %s in the network definition." % parties_phrase(sorted(set(unnamed) | set(waiting))))
    if not next_steps:
        next_steps.append("Nothing: playbooks/check_network.yml shows the network's health as this party sees it.")
    for step in next_steps:
        row("next", step)
    return lines


class FilterModule(object):
    def filters(self):
        return {"deploy_summary": deploy_summary}
