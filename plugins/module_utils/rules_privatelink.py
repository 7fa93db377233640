# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Rules of privatelink's inputs (registry and conventions: role_rules.py).

The role runs in parts (``privatelink_sides``: provider, consumer, own_ca, peer_ca); a rule about a
part speaks only when that part runs, so deploy_party.yml, which reaches the role once per part,
meets each rule once. A message never names the parts: the same mistake reads the same every time.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    ACCOUNT_RE, SERVICE_NAME_RE, SG_ID_RE, VPC_ID_RE, cidr_errors, range_errors)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.role_rules import got, rule

R = "privatelink"
# A load balancer name: 1-32 letters, digits or '-', not starting or ending with '-'.
NLB_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,30}[A-Za-z0-9])?$")
CA_SOURCES = ("vault", "pem", "path")


def _int(value):
    try:
        return int(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None


def _text(value):
    return "" if value is None else str(value)


def _parties(v):
    return [p for p in v["privatelink_parties"] if isinstance(p, dict)]


def _me(v):
    mine = [p for p in _parties(v) if _int(p.get("party_id")) == v["privatelink_party_id"]]
    return mine[0] if len(mine) == 1 else {}


def _others(v):
    return [p for p in _parties(v) if _int(p.get("party_id")) != v["privatelink_party_id"]]


def _ca_source(party):
    ca = party.get("ca_certificate") or {"source": "vault"}
    return _text(ca.get("source") or "vault") if isinstance(ca, dict) else "vault"


def _vpc_known(v, context):
    """False only in check mode before eks_cluster made the VPC (its facts then hold placeholders):
    the provider and consumer parts have nothing to look at yet, and their network rules wait."""
    return (not context.get("check_mode") or bool(VPC_ID_RE.match(v["privatelink_vpc_id"]))
            or (bool(v["privatelink_nlb_arn"]) and "consumer" not in v["privatelink_sides"]))


# ------------------------------------------------------------------------ network and party --

@rule(R, "privatelink_parties", "privatelink_party_id")
def _party_once(v, _):
    ids = [p.get("party_id") for p in _parties(v)]
    if [_int(i) for i in ids].count(v["privatelink_party_id"]) != 1:
        return ["privatelink_party_id: this party must appear exactly once among privatelink_parties (party ids %s) %s"
                % (ids, got(v["privatelink_party_id"]))]
    return []


@rule(R, "privatelink_sides", "privatelink_parties", "privatelink_party_id")
def _accounts(v, _):
    bad = [p for p in _others(v) if not ACCOUNT_RE.match(_text(p.get("aws_account_id")))]
    if "provider" in v["privatelink_sides"] and bad:
        return ["privatelink_parties: every other party needs aws_account_id as 12 digits (its account becomes an "
                "allowed principal of this party's endpoint service); wrong for %s"
                % "; ".join("party %s (got %r)" % (p.get("party_id"), p.get("aws_account_id")) for p in bad)]
    return []


def _peers(v):
    """(party, service name, where the name came from) of every other party with a service name."""
    overrides = dict((str(k), _text(s)) for k, s in v["privatelink_service_name_overrides"].items())
    peers = []
    for party in _others(v):
        pid = str(party.get("party_id"))
        if pid in overrides:
            name, source = overrides[pid], "privatelink_service_name_overrides[%s]" % pid
        else:
            name = _text(party.get("privatelink_service_name") or "")
            source = "privatelink_parties[party_id=%s].privatelink_service_name" % pid
        if name:
            peers.append((party, name, source))
    return peers


_PEER_NEEDS = ("privatelink_sides", "privatelink_parties", "privatelink_party_id", "privatelink_service_name_overrides")


@rule(R, *_PEER_NEEDS)
def _service_names(v, _):
    if "consumer" not in v["privatelink_sides"]:
        return []
    problems = []
    for party, name, source in _peers(v):
        if not SERVICE_NAME_RE.match(name):
            problems.append("%s: an endpoint service name com.amazonaws.vpce.<region>.vpce-svc-<hex> %s" % (source, got(name)))
        elif name.split(".")[3] != _text(party.get("region")):
            problems.append("%s: names the region of the service, which must be the party's region %s %s"
                            % (source, _text(party.get("region")), got(name)))
    return problems


# ------------------------------------------------------------------------------ provider side --

@rule(R, "privatelink_sides", "privatelink_vpc_id", "privatelink_nlb_arn")
def _provider_vpc(v, context):
    if "provider" in v["privatelink_sides"] and _vpc_known(v, context) and not v["privatelink_nlb_arn"] \
            and not VPC_ID_RE.match(v["privatelink_vpc_id"]):
        return ["privatelink_vpc_id: the cluster's VPC (vpc-...) is required by the provider part unless "
                "privatelink_nlb_arn is given %s" % got(repr(v["privatelink_vpc_id"]))]
    return []


@rule(R, "privatelink_sides", "privatelink_create_nlb", "privatelink_nlb_name")
def _nlb_name(v, _):
    name = v["privatelink_nlb_name"]
    if "provider" in v["privatelink_sides"] and v["privatelink_create_nlb"] and (
            not NLB_NAME_RE.match(name) or name.startswith("internal-")):
        return ["privatelink_nlb_name: 1-32 letters, digits or '-', not starting or ending with '-' nor starting with "
                "'internal-' %s" % got(repr(name))]
    return []


@rule(R, "privatelink_sides", "privatelink_create_nlb", "privatelink_private_subnet_ids", "privatelink_vpc_id",
      "privatelink_nlb_arn")
def _nlb_subnets(v, context):
    if "provider" in v["privatelink_sides"] and v["privatelink_create_nlb"] and _vpc_known(v, context) \
            and not v["privatelink_private_subnet_ids"]:
        return ["privatelink_private_subnet_ids: the subnets of the NLB privatelink_create_nlb creates, at least one "
                "%s" % got(v["privatelink_private_subnet_ids"])]
    return []


@rule(R, "privatelink_sides", "privatelink_parties", "privatelink_party_id")
def _peer_port(v, _):
    me = _me(v)
    port = _int(me.get("peer_port"))
    if "provider" in v["privatelink_sides"] and me and not (port and port > 0):
        return ["privatelink_parties[party_id=%s].peer_port: this party's peer port, which the NLB forwards %s"
                % (v["privatelink_party_id"], got(me.get("peer_port")))]
    return []


# ------------------------------------------------------------------------------ consumer side --

@rule(R, "privatelink_sides", "privatelink_kubeconfig", "privatelink_kube_api_server")
def _consumer_cluster(v, _):
    if "consumer" in v["privatelink_sides"] and not (v["privatelink_kubeconfig"] or v["privatelink_kube_api_server"]):
        return ["privatelink_kubeconfig: a kubeconfig (or privatelink_kube_api_server) is needed to manage the "
                "party<N>-external Services (got neither)"]
    return []


_CONSUMER_NET = _PEER_NEEDS + ("privatelink_vpc_id", "privatelink_nlb_arn")


@rule(R, *(_CONSUMER_NET + ("privatelink_private_subnet_ids",)))
def _consumer_network(v, context):
    if "consumer" not in v["privatelink_sides"] or not _peers(v) or not _vpc_known(v, context):
        return []
    problems = []
    if not VPC_ID_RE.match(v["privatelink_vpc_id"]):
        problems.append("privatelink_vpc_id: the cluster's VPC (vpc-...) is required by the consumer part %s"
                        % got(repr(v["privatelink_vpc_id"])))
    if not v["privatelink_private_subnet_ids"]:
        problems.append("privatelink_private_subnet_ids: the subnets of the peer endpoints, at least one %s"
                        % got(v["privatelink_private_subnet_ids"]))
    return problems


def cidr_any_errors(name, value):
    """An IPv4 CIDR (input_rules.cidr_errors) or an IPv6 one, never a /0 (every address)."""
    text = _text(value)
    if ":" in text:
        try:
            network = ipaddress.IPv6Network(text, strict=True)
        except ValueError:
            return ["%s: an IPv6 CIDR such as fd00::/8, the host bits zero %s" % (name, got(repr(value)))]
    else:
        errors = cidr_errors(name, text)
        if errors:
            return errors
        network = ipaddress.IPv4Network(text)
    if network.prefixlen == 0:
        return ["%s: a /0 opens the peer port to every address that can reach the VPC; name the sources %s"
                % (name, got(text))]
    return []


@rule(R, "privatelink_sides", "privatelink_allowed_cidrs")
def _allowed_cidrs(v, _):
    problems = []
    for index, value in enumerate(v["privatelink_allowed_cidrs"] if "consumer" in v["privatelink_sides"] else []):
        problems += cidr_any_errors("privatelink_allowed_cidrs[%d]" % index, value)
    return problems


@rule(R, "privatelink_sides", "privatelink_node_security_group_id", "privatelink_vpc_id", "privatelink_nlb_arn")
def _node_sg(v, context):
    sg = v["privatelink_node_security_group_id"]
    if "consumer" in v["privatelink_sides"] and sg and not SG_ID_RE.match(sg) and _vpc_known(v, context):
        return ["privatelink_node_security_group_id: empty or a security group id sg-... %s" % got(repr(sg))]
    return []


@rule(R, *(_CONSUMER_NET + ("privatelink_node_security_group_id", "privatelink_allowed_cidrs")))
def _consumer_sources(v, context):
    if "consumer" in v["privatelink_sides"] and _peers(v) and _vpc_known(v, context) \
            and not (v["privatelink_node_security_group_id"] or v["privatelink_allowed_cidrs"]):
        return ["privatelink_node_security_group_id: the peer endpoints admit traffic only from this security group "
                "and privatelink_allowed_cidrs; at least one of them is required (got neither)"]
    return []


# ---------------------------------------------------------------------------- CA certificates --

@rule(R, "privatelink_sides", "privatelink_tls_mode", "privatelink_parties", "privatelink_party_id",
      "privatelink_ca_pem")
def _peer_cas(v, _):
    if "peer_ca" not in v["privatelink_sides"] or v["privatelink_tls_mode"] == "none":
        return []
    problems = []
    for party in _parties(v):
        pid = party.get("party_id")
        where = "privatelink_parties[party_id=%s]" % pid
        own = _int(pid) == v["privatelink_party_id"] and v["privatelink_ca_pem"] != ""
        source = _ca_source(party)
        if not own and source not in CA_SOURCES:
            problems.append("%s.ca_certificate.source: vault, pem or path %s" % (where, got(source)))
        elif not own and source == "vault" and not _text(party.get("public_vault_url") or ""):
            problems.append("%s.public_vault_url: needed to read the party's CA (ca_certificate.source vault; "
                            "tls_mode %s needs every party's CA) (got none)" % (where, v["privatelink_tls_mode"]))
        if not _text(party.get("mpc_identity") or ""):
            problems.append("%s.mpc_identity: the CN the party's CA must carry (got none)" % where)
    return problems


@rule(R, "privatelink_sides", "privatelink_ca_wait_timeout")
def _ca_wait_timeout(v, _):
    return [] if "peer_ca" not in v["privatelink_sides"] else range_errors("privatelink_ca_wait_timeout", v["privatelink_ca_wait_timeout"], low=0, what="seconds")


@rule(R, "privatelink_sides", "privatelink_ca_wait_delay")
def _ca_wait_delay(v, _):
    return [] if "peer_ca" not in v["privatelink_sides"] else range_errors("privatelink_ca_wait_delay", v["privatelink_ca_wait_delay"], low=1, what="seconds")


@rule(R, "privatelink_sides", "privatelink_ca_warn_days")
def _ca_warn_days(v, _):
    return [] if "peer_ca" not in v["privatelink_sides"] else range_errors("privatelink_ca_warn_days", v["privatelink_ca_warn_days"], low=0, what="days")


@rule(R, "privatelink_sides", "privatelink_nlb_wait_retries", "privatelink_nlb_wait_delay")
def _nlb_wait(v, _):
    if "provider" not in v["privatelink_sides"]:
        return []
    return (range_errors("privatelink_nlb_wait_retries", v["privatelink_nlb_wait_retries"], low=1, what="a count")
            + range_errors("privatelink_nlb_wait_delay", v["privatelink_nlb_wait_delay"], low=1, what="seconds"))


def _publishes(v):
    return v["privatelink_ca_pem"] != "" and bool(set(v["privatelink_sides"]) & {"own_ca", "provider", "peer_ca"})


@rule(R, "privatelink_sides", "privatelink_ca_pem")
def _ca_pem_no_key(v, _):
    if _publishes(v) and "PRIVATE KEY" in v["privatelink_ca_pem"]:
        return ["privatelink_ca_pem: the CA certificate only; a private key is never published (got a PEM holding "
                "a PRIVATE KEY)"]
    return []


@rule(R, "privatelink_sides", "privatelink_ca_pem", "privatelink_public_bucket")
def _ca_bucket(v, _):
    if _publishes(v) and not v["privatelink_public_bucket"]:
        return ["privatelink_public_bucket: this party's public vault bucket, where privatelink_ca_pem is published "
                "(got none)"]
    return []


@rule(R, "privatelink_sides", "privatelink_ca_pem", "privatelink_ca_object_name")
def _ca_object_name(v, _):
    name = v["privatelink_ca_object_name"]
    if _publishes(v) and (not name or "/" in name):
        return ["privatelink_ca_object_name: an object name without '/' under <prefix>/TlsIdentity/ %s" % got(repr(name))]
    return []


@rule(R, "privatelink_tls_mode", "privatelink_ca_pem", "privatelink_public_prefix")
def _ca_pem_auto(v, _):
    if v["privatelink_tls_mode"] == "auto" and v["privatelink_ca_pem"]:
        return ["privatelink_ca_pem: must be empty in tls_mode auto: the node uses the CA its key generation wrote to "
                "%s/CACert/<signing key id> (the server checks that it is signed by its own signing key), so an "
                "operator-supplied CA cannot replace it (got a PEM)" % v["privatelink_public_prefix"]]
    return []


@rule(R, "privatelink_sides", "privatelink_tls_mode", "privatelink_ca_pem", "privatelink_parties",
      "privatelink_party_id")
def _own_ca_url(v, _):
    """Where the peers read this party's CA. (That the own_ca part has the PEM in tls_mode manual is
    checked in tasks/own_ca.yml: the PEM is kms_workload_keys' output, which deploy_party.yml hands on
    with a default, so preflight cannot tell "not made yet" from "missing".)"""
    tls_mode = v["privatelink_tls_mode"]
    if "own_ca" not in v["privatelink_sides"] or tls_mode == "none" or (tls_mode == "auto" and v["privatelink_ca_pem"]):
        return []  # auto with a PEM: _ca_pem_auto says so
    me = _me(v)
    if me and _ca_source(me) not in ("pem", "path") and not _text(me.get("public_vault_url") or ""):
        return ["privatelink_parties[party_id=%s].public_vault_url: where the peers read this party's CA, needed by "
                "the own_ca part unless its ca_certificate.source is pem or path (got none)" % v["privatelink_party_id"]]
    return []
