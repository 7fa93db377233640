# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Decisions of the privatelink role, made on plain data before (or between) its AWS and
Kubernetes calls; the role's task files only call these and loop over the plans.

``privatelink_model``: from the network definition, this party, its peers (the other parties
with a service name), the accounts and regions its endpoint service allows, the NLB listeners.
``privatelink_input_errors``: the warnings about the inputs (odd peer addresses, what check mode skips);
the rules are in module_utils/rules_privatelink.py.
``privatelink_nlb``: the NLB among the load balancers of the account, or why there is none.
``privatelink_consumer_plan``: from what exists (endpoints, security groups, Services), what is
kept, what is stale and removed, and the security group rules and tags of each peer.
``privatelink_peer_endpoints``: the endpoints created, by peer id, as privatelink_facts carries them.
``privatelink_ca_requests`` / ``privatelink_ca_progress``: where each party's CA is read, and the
bookkeeping of the bounded wait for those not published yet.
``privatelink_service_note``: what the operator passes on about the service name this party
publishes. Documentation: plugins/filter/privatelink_*.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

from ansible.errors import AnsibleFilterError

from ansible_collections.threshold_kms.mpc_party.plugins.filter.ec2_network import aws_tags as _tags
from ansible_collections.threshold_kms.mpc_party.plugins.filter.ec2_network import security_group_in_place

LOOPBACK_RE = re.compile(r"^(127(\.[0-9]{1,3}){3}|::1|\[::1\]|localhost)$")
# endpoint states that no longer carry traffic (AWS keeps deleted endpoints listed for a while)
DEAD_ENDPOINT_STATES = ("deleting", "deleted", "rejected", "failed", "expired")
PEER_LABEL = "threshold-kms.io/peer-party-id"
COMPONENT_LABEL = "app.kubernetes.io/component"
COMPONENT = "peer-endpoint"


def _plain(value):
    """Builtin containers (Ansible hands filters its own lazy/tagged types)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _int(value, default=0):
    """Jinja's `int`: a number, or `default` for anything that is not one."""
    try:
        return int(str(value).strip()) if not isinstance(value, bool) else int(value)
    except (TypeError, ValueError):
        try:
            return int(float(str(value)))
        except (TypeError, ValueError):
            return default


def _text(value):
    return "" if value is None else str(value)


def _bool(value):
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return bool(value)


def _sides(sides):
    return [str(s) for s in (sides or [])]


# ------------------------------------------------------------------------------------ model --

def privatelink_model(parties, party_id, prefix, overrides=None, expose_client_port=False):
    """This party, its peers and what its endpoint service allows (see privatelink_model.yml)."""
    parties = [p for p in _plain(parties or []) if isinstance(p, dict)]
    me_id = _int(party_id)
    overrides = {str(k): _text(v) for k, v in _plain(overrides or {}).items()}
    prefix = _text(prefix)
    mine = [p for p in parties if _int(p.get("party_id"), None) == me_id]
    me = mine[0] if mine else {}
    others = sorted((p for p in parties if _int(p.get("party_id"), None) != me_id),
                    key=lambda p: _int(p.get("party_id")))
    region = _text(me.get("region") or "")
    peers, unnamed = [], []
    for party in others:
        pid = _int(party.get("party_id"))
        service = overrides.get(str(party.get("party_id")), overrides.get(str(pid)))
        if service is None:
            service = _text(party.get("privatelink_service_name") or "")
        if not service:
            unnamed.append(pid)
            continue
        peer_region = _text(party.get("region") or "")
        name_parts = service.split(".")
        peers.append({
            "party_id": pid,
            "peer_port": _int(party.get("peer_port")),
            "region": peer_region,
            "region_matches_name": (name_parts[3] if len(name_parts) > 3 else "") == peer_region,
            "service_name": service,
            "security_group_name": "%s-to-p%d" % (prefix, pid),
            "kubernetes_service": "party%d-external" % pid,
        })
    listener_ports = [{"name": "peer", "port": _int(me.get("peer_port")), "target_group": prefix[:25] + "-peer"}]
    if _bool(expose_client_port):
        listener_ports.append({"name": "client", "port": _int(me.get("client_port")),
                               "target_group": prefix[:25] + "-client"})
    return {
        "me": me,
        "others": others,
        "peers": peers,
        "peer_ids": [str(p["party_id"]) for p in peers],
        "unnamed_peers": unnamed,
        "region": region,
        "principal_accounts": sorted({_text(p.get("aws_account_id")) for p in others}),
        "supported_regions": sorted({_text(p["region"]) for p in others
                                     if p.get("region") and _text(p["region"]) != region}),
        "listener_ports": listener_ports,
        "nlb_listeners": [{"Protocol": "TCP", "Port": p["port"],
                           "DefaultActions": [{"Type": "forward", "TargetGroupName": p["target_group"]}]}
                          for p in listener_ports],
    }


# ------------------------------------------------------------------------------------ input --

def _address_warnings(model, namespace, cluster_domain):
    odd = []
    namespace = re.escape(_text(namespace).lower())
    domain = re.escape(_text(cluster_domain).lower())
    by_id = {_int(p.get("party_id")): p for p in model["others"]}
    for peer in model["peers"]:
        raw = by_id.get(peer["party_id"], {}).get("address") or ""
        address = _text(raw).lower()
        if address.endswith("."):
            address = address[:-1]
        service_re = "^%s(\\.%s(\\.svc(\\.%s)?)?)?$" % (re.escape(peer["kubernetes_service"]), namespace, domain)
        if not (re.match(service_re, address) or LOOPBACK_RE.match(address)):
            odd.append("party %d is %s" % (peer["party_id"], json.dumps(raw)))
    return odd


def privatelink_input_errors(inputs):
    """The warnings of the role's inputs (see privatelink_input_errors.yml); the rules themselves are in
    plugins/module_utils/rules_privatelink.py, run by the role_inputs action."""
    if not isinstance(inputs, dict):
        raise AnsibleFilterError("privatelink_input_errors: expects a dict of the role's inputs")
    i = _plain(inputs)
    i["parties"] = i.get("parties") if isinstance(i.get("parties"), list) else []
    sides = _sides(i.get("sides"))
    model = privatelink_model(i["parties"], _int(i.get("party_id")), i.get("prefix", ""), i.get("service_name_overrides"))
    vpc_id = _text(i.get("vpc_id"))
    vpc_known = _bool(i.get("vpc_known", True))
    warnings, odd = [], []
    unevaluated = [x for x in ("provider", "consumer") if x in sides]
    if not vpc_known and unevaluated:
        warnings.append("Check mode: the VPC does not exist yet (privatelink_vpc_id is '%s'), so the %s side(s) would "
                        "be created from scratch after it; they were not evaluated." % (vpc_id, " and ".join(unevaluated)))
    if "consumer" in sides and _bool(i.get("address_check", True)):
        odd = _address_warnings(model, i.get("namespace"), i.get("cluster_domain"))
    if odd:
        namespace, domain = _text(i.get("namespace")), _text(i.get("cluster_domain"))
        warnings.append(
            "WARNING: privatelink_parties[].address of %s: kms_config dials that address, but this role connects to "
            "the peer through the Service party<N>-external (an alias of the peer's interface endpoint) in namespace "
            "%s. Expected party<N>-external, optionally followed by .%s, .svc and .%s. Fix the network definition (or "
            "kms_config_peer_address_overrides), or set privatelink_address_check: false if the peer is reached "
            "another way on purpose." % ("; ".join(odd), namespace, namespace, domain))
    return {"odd_addresses": odd, "warnings": warnings}


# -------------------------------------------------------------------------------------- NLB --

def privatelink_nlb(load_balancers, nlb_arn="", create_nlb=False, nlb_name="", vpc_id="", stack_tag="",
                    wait_retries=0, check_mode=False):
    """The NLB of this party among the account's load balancers (see privatelink_nlb.yml)."""
    nlb_arn, nlb_name, vpc_id, stack_tag = _text(nlb_arn), _text(nlb_name), _text(vpc_id), _text(stack_tag)
    create_nlb = _bool(create_nlb)
    matches = []
    for lb in _plain(load_balancers or []):
        if nlb_arn:
            hit = lb.get("load_balancer_arn") == nlb_arn
        elif create_nlb:
            hit = lb.get("load_balancer_name") == nlb_name
        else:
            hit = (lb.get("type") == "network" and lb.get("vpc_id") == vpc_id
                   and _tags(lb.get("tags")).get("service.k8s.aws/stack") == stack_tag)
        if hit:
            matches.append(lb)
    error = ""
    if len(matches) > 1:
        error = ("Several network load balancers in VPC %s carry service.k8s.aws/stack=%s (%s): give "
                 "privatelink_nlb_arn." % (vpc_id, stack_tag, ", ".join(m.get("load_balancer_name", "") for m in matches)))
    elif matches and (matches[0].get("type") != "network" or matches[0].get("scheme") != "internal"):
        error = ("%s is a %s %s load balancer; an endpoint service needs an internal network load balancer."
                 % (matches[0].get("load_balancer_arn"), matches[0].get("scheme"), matches[0].get("type")))
    elif not matches and _bool(check_mode):
        pass  # a first run has no NLB yet: the endpoint service step reports what it would create
    elif not matches and nlb_arn:
        error = "privatelink_nlb_arn: %s does not exist in this account and region." % nlb_arn
    elif not matches:
        what = ("named %s" % nlb_name) if create_nlb else ("tagged service.k8s.aws/stack=%s" % stack_tag)
        error = ("No internal network load balancer %s in VPC %s after %s tries: the AWS Load Balancer Controller "
                 "creates it for the peer Service of kms_workload. Check that the Service exists and the controller "
                 "runs, or give privatelink_nlb_arn, or set privatelink_create_nlb: true where no controller runs."
                 % (what, vpc_id, _int(wait_retries)))
    return {"matches": matches, "nlb": matches[0] if len(matches) == 1 and not error else {}, "error": error}


# --------------------------------------------------------------------------------- consumer --

def _group_rules(peer, node_security_group_id, allowed_cidrs):
    port = peer["peer_port"]
    rules = []
    if node_security_group_id:
        rules.append({"proto": "tcp", "ports": [port], "group_id": node_security_group_id,
                      "rule_desc": "KMS nodes to party %d" % peer["party_id"]})
    for cidr in allowed_cidrs:
        rules.append({"proto": "tcp", "ports": [port], ("cidr_ipv6" if ":" in cidr else "cidr_ip"): cidr,
                      "rule_desc": "to party %d" % peer["party_id"]})
    return rules


def _group_in_place(group, rules, tags):
    """Whether amazon.aws.ec2_security_group (rules purged, no egress rule, tags purged) would leave
    ``group`` (as ec2_security_group_info returns it) as it is."""
    return security_group_in_place(group, rules, tags, purge_rules=True, rules_egress=[], purge_rules_egress=True)


def _selected(labels, selectors):
    """Whether labels match equality (k=v) and existence (k) selectors."""
    for selector in selectors:
        key, sep, value = selector.partition("=")
        if key.strip() not in labels or (sep and _text(labels[key.strip()]) != value.strip()):
            return False
    return True


def privatelink_consumer_plan(peers, endpoints=None, groups=None, services=None, node_security_group_id="",
                              allowed_cidrs=None, tags=None, service_selectors=None, unnamed=None):
    """What the consumer side keeps, creates and removes (see privatelink_consumer_plan.yml)."""
    peers = _plain(peers or [])
    node_sg = _text(node_security_group_id)
    cidrs = [_text(c) for c in (allowed_cidrs or [])]
    base_tags = dict(_tags(_plain(tags or {})), **{"threshold_kms/component": COMPONENT})
    wanted = {str(p["party_id"]): p["service_name"] for p in peers}
    # Parties of the network whose service name this copy of the definition does not give: what
    # exists towards them is neither changed nor removed (only a party that left loses it).
    waiting = {str(_int(u)) for u in _plain(unnamed or [])} - set(wanted)

    live, stale, kept_unnamed = [], [], []
    for ep in _plain(endpoints or []):
        if _text(ep.get("state")).lower() in DEAD_ENDPOINT_STATES:
            continue
        peer = _tags(ep.get("tags")).get("threshold_kms/peer-party-id", "")
        entry = {"vpc_endpoint_id": ep.get("vpc_endpoint_id"), "service_name": ep.get("service_name"), "peer": peer}
        if peer in waiting:
            kept_unnamed.append(entry)
        elif peer not in wanted or wanted[peer] != ep.get("service_name"):
            stale.append(entry)
        else:
            live.append(entry)
    group_names = {p["security_group_name"] for p in peers}
    stale_groups = [{"group_id": g.get("group_id"), "group_name": g.get("group_name")}
                    for g in _plain(groups or []) if g.get("group_name") not in group_names
                    and _tags(g.get("tags")).get("threshold_kms/peer-party-id", "") not in waiting]
    # the labels are checked here, whatever the server's selector returned
    base = [_text(x) for x in (service_selectors or ["%s=%s" % (COMPONENT_LABEL, COMPONENT), PEER_LABEL])]
    if "%s=%s" % (COMPONENT_LABEL, COMPONENT) not in base or PEER_LABEL not in base:
        raise AnsibleFilterError("privatelink_consumer_plan: service_selectors must select %s=%s and %s"
                                 % (COMPONENT_LABEL, COMPONENT, PEER_LABEL))
    stale_services = []
    for svc in _plain(services or []):
        meta = svc.get("metadata") or {}
        labels = {str(k): _text(v) for k, v in (meta.get("labels") or {}).items()}
        if _selected(labels, base) and labels[PEER_LABEL] not in wanted and labels[PEER_LABEL] not in waiting:
            stale_services.append({"name": meta.get("name"), "peer": labels[PEER_LABEL]})
    kept_ids = sorted(set(wanted) | waiting, key=_int)
    selectors = [x for x in base if x != PEER_LABEL] + [
        ("%s notin (%s)" % (PEER_LABEL, ",".join(kept_ids))) if kept_ids else PEER_LABEL]

    by_name = {}
    for group in _plain(groups or []):
        by_name.setdefault(group.get("group_name"), []).append(group)
    planned = []
    for peer in peers:
        kept = [e for e in live if e["peer"] == str(peer["party_id"])]
        rules = _group_rules(peer, node_sg, cidrs)
        group_tags = dict(base_tags, **{"Name": peer["security_group_name"],
                                        "threshold_kms/peer-party-id": str(peer["party_id"])})
        same_name = by_name.get(peer["security_group_name"]) or []
        group = same_name[0] if len(same_name) == 1 else {}
        in_place = _group_in_place(group, rules, group_tags)
        planned.append(dict(peer, rules=rules, tags=group_tags,
                            group_id=_text(group.get("group_id")) if in_place else "", group_in_place=in_place,
                            vpc_endpoint_id=kept[0]["vpc_endpoint_id"] if kept else None))
    removed = sorted({_int(e["peer"]) for e in stale} | {_int(s["peer"]) for s in stale_services})
    return {"peers": planned, "stale_endpoints": stale, "stale_groups": stale_groups,
            "stale_services": stale_services, "stale_service_selectors": selectors, "removed_peers": removed,
            "unnamed_peers": sorted((_int(u) for u in waiting), key=_int),
            "kept_unnamed_endpoints": kept_unnamed}


def privatelink_peer_endpoints(results, namespace, cluster_domain):
    """The interface endpoints by peer id, from the results of the endpoint task (each item: [peer, group id])."""
    endpoints = {}
    for res in _plain(results or []):
        item = res.get("item") or [{}, ""]
        peer, group_id = item[0], item[1] if len(item) > 1 else ""
        group_id = group_id or peer.get("group_id") or ""  # a group in place: its task was skipped
        endpoints[peer["party_id"]] = {
            "endpoint_id": res.get("vpc_endpoint_id") or "",
            "state": res.get("state") or "absent",
            "dns_name": res.get("dns_name") or "",
            "service_name": peer["service_name"],
            "service_region": res.get("service_region") or peer.get("region") or "",
            "security_group_id": group_id or "",
            "port": peer["peer_port"],
            "kubernetes_service": peer["kubernetes_service"],
            "address": "%s.%s.svc.%s" % (peer["kubernetes_service"], _text(namespace), _text(cluster_domain)),
        }
    return endpoints


# ------------------------------------------------------------------------------ CA certificates --

def privatelink_ca_requests(parties, party_id, ca_pem="", public_prefix="", tls_mode="", object_name=""):
    """Where each party's CA is read (see privatelink_ca_requests.yml): arguments of peer_ca_info."""
    me_id = _int(party_id)
    requests = []
    for party in sorted((p for p in _plain(parties or []) if isinstance(p, dict)), key=lambda p: _int(p.get("party_id"))):
        own = _int(party.get("party_id")) == me_id
        ca = party.get("ca_certificate") or {}
        source = "input" if own and _text(ca_pem) else _text((ca.get("source") if isinstance(ca, dict) else "") or "vault")
        vault = source == "vault"
        requests.append({
            "party_id": _int(party.get("party_id")),
            "expected_cn": _text(party.get("mpc_identity") or ""),
            "source": source,
            "public_vault_url": _text(party.get("public_vault_url")) if vault else None,
            "prefix": (_text(public_prefix) if own else (party.get("prefixes") or {}).get("public")) if vault else None,
            "tls_mode": _text(tls_mode) if vault else None,
            "object_name": _text(object_name) if vault else None,
            "pem": _text(ca_pem) if source == "input" else (_text(ca.get("pem")) if source == "pem" else None),
            "path": _text(ca.get("path")) if source == "path" else None,
        })
    return requests


def privatelink_ca_progress(results, found=None, checked=None, settings=None):
    """One look at the pending CAs folded into what is known, and what to do about those still
    missing (see privatelink_ca_progress.yml)."""
    found = {_int(k): v for k, v in _plain(found or {}).items()}
    checked = list(_plain(checked or []))
    s = _plain(settings or {})
    pending, lines = [], []
    for res in _plain(results or []):
        item = res.get("item") or {}
        if res.get("pem") is not None:
            found[_int(item.get("party_id"))] = res["pem"]
            checked.append({"party_id": _int(item.get("party_id")), "subject_cn": res.get("subject_cn"),
                            "not_after": res.get("not_after"), "days_left": _int(res.get("days_left"))})
        elif res.get("missing"):
            pending.append(item)
            lines.append("party %s at %s" % (item.get("party_id"), res.get("url")))
    timeout, tls_mode, missing = _int(s.get("wait_timeout")), _text(s.get("tls_mode")), _text(s.get("missing") or "fail")
    action, message = "", ""
    ids = ", ".join(str(p.get("party_id")) for p in pending)
    if pending and _bool(s.get("check_mode")):
        action = "check"
        message = ("Check mode: no CA certificate published yet by %s. A real run waits up to %d s for them, then %s "
                   "unless they are there by then." % ("; ".join(lines), timeout, "fails" if missing == "fail" else "warns"))
    elif pending and missing == "warn":
        action = "warn"
        message = ("WARNING: no CA certificate published yet by %s (waited %d s). Continuing because "
                   "privatelink_ca_missing is warn: privatelink_facts.peer_ca_pems lacks party id(s) %s, and kms_config "
                   "refuses to render a configuration without every party's CA while tls_mode is %s. Re-run once they "
                   "have published." % ("; ".join(lines), timeout, ids, tls_mode))
    elif pending:
        action = "fail"
        own = _int(s.get("party_id"))
        message = ("%swaiting for parties %s: tls_mode is %s, so the node needs every party's CA certificate, and "
                   "theirs are not published (waited %d s; nothing readable anonymously at the URL checked: %s). Each "
                   "party publishes its CA in the first phase of its own deploy (deploy_party.yml). Re-run when they "
                   "have deployed: nothing made so far is lost, and the run continues from here "
                   "(privatelink_ca_wait_timeout sets how long a run waits; a CA can also be put in the network "
                   "definition, ca_certificate.source pem or path)."
                   % ("Party %d published its own CA certificate; " % own if own in found else "", ids, tls_mode,
                      timeout, "; ".join(lines)))
    warn_days = _int(s.get("warn_days"), 30)
    expiring = ["WARNING: the CA certificate of party %d (%s) expires on %s, in %d days: that party must publish its "
                "new CA, and every party re-run the peer_ca step, before then."
                % (c["party_id"], c["subject_cn"], c["not_after"], c["days_left"])
                for c in checked if c["days_left"] < warn_days]
    return {"found": found, "checked": checked, "pending": pending, "pending_lines": lines,
            "action": action, "message": message, "expiring": expiring}


def privatelink_service_note(facts, listed_name="", check_mode=False):
    """What the operator must pass on about this party's endpoint service name (see privatelink_service_note.yml)."""
    facts = _plain(facts or {})
    name, party, listed = _text(facts.get("service_name")), facts.get("party_id"), _text(listed_name)
    if not name:
        return ("Party %s has no endpoint service yet%s, so there is no service name to publish; re-run after the NLB "
                "exists." % (party, " (check mode: it would be created by a real run)" if _bool(check_mode) else ""))
    if name == listed:
        return ("Party %s publishes the endpoint service %s, already in the network definition "
                "(mpc_network.parties[party_id=%s].privatelink_service_name): nothing to send." % (party, name, party))
    return ("ACTION: party %s publishes the endpoint service %s. Send this name to the network coordinators, to be set "
            "as mpc_network.parties[party_id=%s].privatelink_service_name in the network definition%s; the other "
            "parties' next run then connects to it."
            % (party, name, party, " (it now says %s)" % listed if listed else ""))


class FilterModule(object):
    def filters(self):
        return {
            "privatelink_model": privatelink_model,
            "privatelink_input_errors": privatelink_input_errors,
            "privatelink_nlb": privatelink_nlb,
            "privatelink_consumer_plan": privatelink_consumer_plan,
            "privatelink_peer_endpoints": privatelink_peer_endpoints,
            "privatelink_ca_requests": privatelink_ca_requests,
            "privatelink_ca_progress": privatelink_ca_progress,
            "privatelink_service_note": privatelink_service_note,
        }
