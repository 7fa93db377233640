# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""The network model: validation and normalisation of a network definition.

Pure Python, no Ansible and no cloud: the preflight module calls `validate()` before any
other task runs, and unit tests call it directly. Every error names the field (a path such
as ``mpc_network.parties[party_id=3].pcr0``) and the rule it breaks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    ACCOUNT_RE, CLUSTER_NAME_RE, PCR_RE, REGION_RE, SERVICE_NAME_RE, service_name_region)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.peer_ca import PeerCaError, parse_certificate

ENVIRONMENTS = ("testnet", "mainnet")
TLS_MODES = ("none", "manual", "auto")
CA_SOURCES = ("none", "vault", "pem", "path")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
URL_RE = re.compile(r"^https?://[^\s/]+(/\S*)?$")

# Vault type names: a vault's prefix must not start with another vault's type name.
VAULT_TYPES = {"public": "PUB", "private": "PRIV", "backup": "BACKUP"}
# How the backup vault is encrypted: its own AWS KMS key, custodian secret sharing, or (only
# without an enclave-protected private vault, e.g. the sandbox) not at all.
BACKUP_KEYCHAINS = ("aws_kms", "secret_sharing", "none")

PARTY_KEYS = {
    "party_id", "name", "aws_account_id", "region", "address", "mpc_identity", "peer_port",
    "client_port", "metrics_port", "public_bucket", "public_vault_url",
    "privatelink_service_name", "ca_certificate", "trusted_releases",
}
PARTY_REQUIRED = ("party_id", "aws_account_id", "region", "address", "peer_port", "client_port")
NETWORK_KEYS = {"name", "environment", "n", "t", "tls_mode", "trusted_releases", "parties"}
NETWORK_REQUIRED = ("name", "environment", "n", "t", "parties")
PARTY_DEFAULTS = {"metrics_port": 9646, "privatelink_service_name": "", "ca_certificate": {"source": "none"}}


class NetworkError(Exception):
    """Raised with the list of every rule the definition breaks."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(NetworkError, self).__init__("\n".join(self.errors))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def s3_bucket_name_errors(name):
    """The S3 naming rules for general purpose buckets, one message per broken rule."""
    errs = []
    if not isinstance(name, str):
        return ["must be a string"]
    if not 3 <= len(name) <= 63:
        errs.append("S3 bucket names are 3 to 63 characters long (got %d)" % len(name))
    if not re.match(r"^[a-z0-9.-]*$", name):
        errs.append("S3 bucket names use only lowercase letters, digits, dots and hyphens")
    if name and (not name[0].isalnum() or not name[-1].isalnum()):
        errs.append("S3 bucket names begin and end with a letter or digit")
    if ".." in name:
        errs.append("S3 bucket names must not contain two adjacent dots")
    try:
        ipaddress.IPv4Address(name)
        errs.append("S3 bucket names must not be formatted as an IP address")
    except ValueError:
        pass
    for bad in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(bad):
            errs.append("S3 bucket names must not start with '%s'" % bad)
    for bad in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if name.endswith(bad):
            errs.append("S3 bucket names must not end with '%s'" % bad)
    return errs


def prefix_errors(prefix, vault):
    """Rules the server applies to a vault prefix (see kms-node.md)."""
    if not isinstance(prefix, str) or not prefix:
        return ["must be a non-empty string (an empty prefix makes object keys start with '/')"]
    errs = []
    if not PREFIX_RE.match(prefix):
        errs.append("use letters, digits, '-' and '_' only, starting with a letter or digit (got %r)" % prefix)
    for other, type_name in VAULT_TYPES.items():
        if other != vault and prefix.startswith(type_name):
            errs.append("a %s vault prefix must not start with another vault's type name '%s'" % (vault, type_name))
    return errs


def vault_prefixes(party_id):
    return {vault: "%s-p%d" % (type_name, party_id) for vault, type_name in VAULT_TYPES.items()}


def ca_pem_errors(pem):
    """Why a CA certificate given inline (``ca_certificate.pem``) is not one PEM X.509 certificate
    that parses: the same parser the peers' CAs go through (peer_ca.parse_certificate)."""
    if not isinstance(pem, str):
        return ["must be a PEM certificate as text (got %s)" % type(pem).__name__]
    try:
        parse_certificate(pem)
    except PeerCaError as err:
        return ["must be one PEM X.509 certificate that parses: %s" % err]
    return []


def _check_release(release, where, errs):
    if not isinstance(release, dict):
        errs.append("%s: must be a mapping with pcr0, pcr1 and pcr2" % where)
        return
    for key in sorted(set(release) - {"pcr0", "pcr1", "pcr2"}):
        errs.append("%s.%s: unknown key (allowed: pcr0, pcr1, pcr2)" % (where, key))
    for pcr in ("pcr0", "pcr1", "pcr2"):
        value = release.get(pcr)
        if value is None:
            errs.append("%s.%s: required" % (where, pcr))
        elif not isinstance(value, str) or not PCR_RE.match(value):
            got = ("%d characters" % len(value)) if isinstance(value, str) else type(value).__name__
            errs.append("%s.%s: must be 96 lowercase hexadecimal characters (a SHA-384 digest; got %s)" % (where, pcr, got))


def _check_port(value, where, errs):
    if not _is_int(value):
        errs.append("%s: must be an integer port (got %r)" % (where, value))
        return False
    if not 1 <= value <= 65535:
        errs.append("%s: must be a port in 1..65535 (got %d)" % (where, value))
        return False
    return True


def _check_party(party, index, n, errs):
    pid = party.get("party_id")
    where = "mpc_network.parties[%s]" % ("party_id=%s" % pid if _is_int(pid) else index)
    for key in sorted(set(party) - PARTY_KEYS):
        errs.append("%s.%s: unknown key (allowed: %s)" % (where, key, ", ".join(sorted(PARTY_KEYS))))
    for key in PARTY_REQUIRED:
        if party.get(key) in (None, ""):
            errs.append("%s.%s: required" % (where, key))
    if "party_id" in party and not _is_int(pid):
        errs.append("%s.party_id: must be an integer (got %r)" % (where, pid))
    elif _is_int(pid) and _is_int(n) and not 1 <= pid <= n:
        errs.append("%s.party_id: must be in 1..n = 1..%d (got %d)" % (where, n, pid))
    account = party.get("aws_account_id")
    if account not in (None, "") and not (isinstance(account, str) and ACCOUNT_RE.match(account)):
        errs.append("%s.aws_account_id: must be a string of 12 digits, quoted in YAML (got %r)" % (where, account))
    region = party.get("region")
    if region not in (None, "") and not (isinstance(region, str) and REGION_RE.match(region)):
        errs.append("%s.region: must be an AWS region such as eu-west-1 (got %r)" % (where, region))
    address = party.get("address")
    if address not in (None, ""):
        if not isinstance(address, str) or not (HOSTNAME_RE.match(address) or _is_ip(address)):
            errs.append("%s.address: must be a DNS name or IP address without scheme or port (got %r)" % (where, address))
    identity = party.get("mpc_identity")
    if identity is not None and not (isinstance(identity, str) and HOSTNAME_RE.match(identity)):
        errs.append("%s.mpc_identity: must be a DNS name (the CN of the party's TLS certificate; got %r)" % (where, identity))
    ports = {}
    for key in ("peer_port", "client_port", "metrics_port"):
        if key in party and _check_port(party[key], "%s.%s" % (where, key), errs):
            ports[key] = party[key]
    seen = {}
    for key, value in ports.items():
        if value in seen:
            errs.append("%s.%s: port %d collides with %s" % (where, key, value, seen[value]))
        seen[value] = key
    bucket = party.get("public_bucket")
    if bucket not in (None, ""):
        for msg in s3_bucket_name_errors(bucket):
            errs.append("%s.public_bucket: %s" % (where, msg))
    url = party.get("public_vault_url")
    if url not in (None, "") and not (isinstance(url, str) and URL_RE.match(url)):
        errs.append("%s.public_vault_url: must be an http(s) URL (got %r)" % (where, url))
    svc = party.get("privatelink_service_name")
    if svc not in (None, "") and not (isinstance(svc, str) and SERVICE_NAME_RE.match(svc)):
        errs.append("%s.privatelink_service_name: must look like com.amazonaws.vpce.<region>.vpce-svc-<8 to 17 lowercase hex digits> (got %r)" % (where, svc))
    elif svc and isinstance(region, str) and REGION_RE.match(region) and service_name_region(svc) != region:
        # A party offers its endpoint service in its own region; the name carries that region.
        errs.append("%s.privatelink_service_name: the service's region %s must be the party's region %s (got %r)"
                    % (where, service_name_region(svc), region, svc))
    ca = party.get("ca_certificate")
    if ca is not None:
        if not isinstance(ca, dict) or ca.get("source", "none") not in CA_SOURCES:
            errs.append("%s.ca_certificate.source: must be one of %s" % (where, ", ".join(CA_SOURCES)))
        elif ca.get("source") in ("pem", "path") and not ca.get(ca["source"]):
            errs.append("%s.ca_certificate.%s: required when source is %s" % (where, ca["source"], ca["source"]))
        elif ca.get("source") == "pem":
            for msg in ca_pem_errors(ca["pem"]):
                errs.append("%s.ca_certificate.pem: %s" % (where, msg))
    releases = party.get("trusted_releases")
    if releases is not None:
        if not isinstance(releases, list):
            errs.append("%s.trusted_releases: must be a list" % where)
        else:
            for i, rel in enumerate(releases):
                _check_release(rel, "%s.trusted_releases[%d]" % (where, i), errs)


def _is_ip(value):
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def validate_network(network):
    """Check a network definition; return the normalised copy or raise NetworkError."""
    errs = []
    if not isinstance(network, dict):
        raise NetworkError(["mpc_network: must be a mapping (got %s)" % type(network).__name__])
    for key in sorted(set(network) - NETWORK_KEYS):
        errs.append("mpc_network.%s: unknown key (allowed: %s)" % (key, ", ".join(sorted(NETWORK_KEYS))))
    for key in NETWORK_REQUIRED:
        if network.get(key) in (None, ""):
            errs.append("mpc_network.%s: required" % key)
    name = network.get("name")
    if name not in (None, "") and not (isinstance(name, str) and DNS_LABEL_RE.match(name)):
        errs.append("mpc_network.name: must be a DNS label (lowercase letters, digits, '-'; got %r)" % name)
    env = network.get("environment")
    if env not in (None, "") and env not in ENVIRONMENTS:
        errs.append("mpc_network.environment: must be one of %s (got %r)" % (", ".join(ENVIRONMENTS), env))
    tls_mode = network.get("tls_mode", "auto")
    if tls_mode not in TLS_MODES:
        errs.append("mpc_network.tls_mode: must be one of %s (got %r)" % (", ".join(TLS_MODES), tls_mode))
    elif env == "mainnet" and tls_mode == "none":
        errs.append("mpc_network.tls_mode: 'none' is refused on mainnet (peer traffic must be TLS 1.3)")
    n, t = network.get("n"), network.get("t")
    for key, value in (("n", n), ("t", t)):
        if value is not None and not _is_int(value):
            errs.append("mpc_network.%s: must be an integer (got %r)" % (key, value))
    if _is_int(n) and _is_int(t):
        if t < 1:
            errs.append("mpc_network.t: must be at least 1 (got %d)" % t)
        if n != 3 * t + 1:
            errs.append("mpc_network.n: must equal 3t + 1 = %d for t = %d (got n = %d); the KMS server refuses any other shape"
                        % (3 * t + 1, t, n))
    releases = network.get("trusted_releases", [])
    if not isinstance(releases, list):
        errs.append("mpc_network.trusted_releases: must be a list of {pcr0, pcr1, pcr2}")
        releases = []
    for i, rel in enumerate(releases):
        _check_release(rel, "mpc_network.trusted_releases[%d]" % i, errs)
    if tls_mode == "auto" and not releases:
        errs.append("mpc_network.trusted_releases: at least one release is required when tls_mode is auto")

    parties = network.get("parties")
    normalised = []
    if parties not in (None, "") and not isinstance(parties, list):
        errs.append("mpc_network.parties: must be a list (got %s)" % type(parties).__name__)
    elif isinstance(parties, list):
        if _is_int(n) and len(parties) != n:
            errs.append("mpc_network.parties: lists %d parties but n = %d; every party appears exactly once" % (len(parties), n))
        for index, party in enumerate(parties):
            if not isinstance(party, dict):
                errs.append("mpc_network.parties[%d]: must be a mapping" % index)
                continue
            _check_party(party, index, n if _is_int(n) else None, errs)
            entry = dict(PARTY_DEFAULTS)
            entry.update(party)
            if _is_int(entry.get("party_id")):
                entry.setdefault("name", "party%d" % entry["party_id"])
                entry["prefixes"] = vault_prefixes(entry["party_id"])
            entry["mpc_identity"] = entry.get("mpc_identity") or entry.get("address")
            normalised.append(entry)
        _check_unique(normalised, errs)
    if errs:
        raise NetworkError(errs)
    result = dict(network)
    result["tls_mode"] = tls_mode
    result["trusted_releases"] = releases
    result["parties"] = sorted(normalised, key=lambda p: p["party_id"])
    return result


def _check_unique(parties, errs):
    owners = {}
    for party in parties:
        pid = party.get("party_id")
        where = "mpc_network.parties[party_id=%s]" % pid
        checks = [
            ("party_id", pid, "party ids must be unique"),
            ("name", party.get("name"), "party names must be unique"),
            ("mpc_identity", party.get("mpc_identity"), "mpc_identity must be unique (it is the CN peers check)"),
            ("address:peer_port", "%s:%s" % (party.get("address"), party.get("peer_port")),
             "peer endpoints (address, peer_port) must be unique"),
            ("public_bucket", party.get("public_bucket"), "public buckets must be unique"),
            ("privatelink_service_name", party.get("privatelink_service_name"), "service names must be unique"),
        ]
        for field, value, rule in checks:
            if value in (None, ""):
                continue
            key = (field, value)
            if key in owners:
                errs.append("%s.%s: %s (%r is also used by party %s)" % (where, field.split(":")[0], rule, value, owners[key]))
            else:
                owners[key] = pid
        # Parties on the same address (the sandbox, a shared load balancer) must not share a port.
        for port_key in ("peer_port", "client_port", "metrics_port"):
            port = party.get(port_key)
            if not _is_int(port):
                continue
            key = ("port", party.get("address"), port)
            if key in owners and owners[key] != pid:
                errs.append("%s.%s: port %d on address %s is already used by party %s"
                            % (where, port_key, port, party.get("address"), owners[key]))
            else:
                owners[key] = pid


def validate_party(network, party_vars):
    """Check this host's own variables against the (already valid) network.

    party_vars: mpc_party_id, mpc_aws_region, mpc_cluster_name, mpc_namespace,
    mpc_private_bucket, mpc_public_bucket, mpc_backup_bucket (optional),
    mpc_backup_keychain (optional, aws_kms), mpc_enclave (optional, true),
    mpc_aws_endpoint_url (optional), mpc_kube_api_server (optional),
    mpc_aws_connect_timeout / mpc_aws_read_timeout (optional, seconds: the AWS client timeouts).
    Returns the normalised fact `mpc`.
    """
    errs = []
    pid = party_vars.get("mpc_party_id")
    if not _is_int(pid):
        raise NetworkError(["mpc_party_id: required, an integer party id (got %r)" % (pid,)])
    me = [p for p in network["parties"] if p["party_id"] == pid]
    if not me:
        raise NetworkError(["mpc_party_id: party %d is not in mpc_network.parties (ids: %s); the deploying party must be part of the network"
                            % (pid, ", ".join(str(p["party_id"]) for p in network["parties"]))])
    me = me[0]
    region = party_vars.get("mpc_aws_region") or me["region"]
    if not REGION_RE.match(str(region)):
        errs.append("mpc_aws_region: must be an AWS region such as eu-west-1 (got %r)" % region)
    elif region != me["region"]:
        errs.append("mpc_aws_region: %s differs from mpc_network.parties[party_id=%d].region %s" % (region, pid, me["region"]))
    cluster = party_vars.get("mpc_cluster_name")
    if not (isinstance(cluster, str) and CLUSTER_NAME_RE.match(cluster)):
        errs.append("mpc_cluster_name: required, 1-100 characters of letters, digits, '-' and '_', starting with a letter or digit (got %r)" % (cluster,))
    namespace = party_vars.get("mpc_namespace") or "kms"
    if not DNS_LABEL_RE.match(str(namespace)):
        errs.append("mpc_namespace: must be a DNS label (got %r)" % namespace)
    buckets = {}
    for key, required in (("mpc_private_bucket", True), ("mpc_public_bucket", True), ("mpc_backup_bucket", False)):
        value = party_vars.get(key) or ""
        if not value:
            if required:
                errs.append("%s: required (the party's %s vault bucket)" % (key, key.split("_")[1]))
            continue
        for msg in s3_bucket_name_errors(value):
            errs.append("%s: %s" % (key, msg))
        for other, used in buckets.items():
            if used == value:
                errs.append("%s: %r is already %s; each vault needs its own bucket (separate buckets)" % (key, value, other))
        buckets[key] = value
    if me.get("public_bucket") and party_vars.get("mpc_public_bucket") and me["public_bucket"] != party_vars["mpc_public_bucket"]:
        errs.append("mpc_public_bucket: %s differs from mpc_network.parties[party_id=%d].public_bucket %s (peers fetch the CA from the network's value)"
                    % (party_vars["mpc_public_bucket"], pid, me["public_bucket"]))
    for key in ("mpc_aws_connect_timeout", "mpc_aws_read_timeout"):
        value = party_vars.get(key)
        try:
            seconds = None if isinstance(value, bool) else float(value)
        except (TypeError, ValueError):
            seconds = None
        if value is not None and not (seconds is not None and 0 < seconds <= 3600):
            errs.append("%s: must be a number of seconds, more than 0 and at most 3600 (got %r)" % (key, value))
    for key in ("mpc_aws_endpoint_url", "mpc_kube_api_server"):
        value = party_vars.get(key) or ""
        if value and not URL_RE.match(value):
            errs.append("%s: must be an http(s) URL (got %r)" % (key, value))
    prefixes = dict(me["prefixes"])
    overrides = party_vars.get("mpc_vault_prefixes") or {}
    if not isinstance(overrides, dict):
        errs.append("mpc_vault_prefixes: must be a mapping of public/private/backup to a prefix")
        overrides = {}
    for vault in sorted(set(overrides) - set(VAULT_TYPES)):
        errs.append("mpc_vault_prefixes.%s: unknown vault (allowed: %s)" % (vault, ", ".join(sorted(VAULT_TYPES))))
    prefixes.update({k: v for k, v in overrides.items() if k in VAULT_TYPES})
    for vault, prefix in sorted(prefixes.items()):
        for msg in prefix_errors(prefix, vault):
            errs.append("mpc_vault_prefixes.%s: %s" % (vault, msg))
    if len(set(prefixes.values())) != len(prefixes):
        errs.append("mpc_vault_prefixes: the public, private and backup prefixes must differ (got %s)" % prefixes)
    backup_keychain = party_vars.get("mpc_backup_keychain") or "aws_kms"
    if backup_keychain not in BACKUP_KEYCHAINS:
        errs.append("mpc_backup_keychain: must be one of %s (got %r)" % (", ".join(BACKUP_KEYCHAINS), backup_keychain))
    elif backup_keychain == "none" and buckets.get("mpc_backup_bucket") and party_vars.get("mpc_enclave", True):
        errs.append("mpc_backup_keychain: none is refused with a backup vault (mpc_backup_bucket %r) next to the "
                    "private vault the enclave's AWS KMS key protects: the server would copy the signing key and "
                    "key shares into the backup vault in plaintext; use aws_kms (its own asymmetric key) or "
                    "secret_sharing (custodian backup)" % buckets["mpc_backup_bucket"])
    if errs:
        raise NetworkError(errs)
    releases = list(network["trusted_releases"])
    for rel in me.get("trusted_releases") or []:
        if rel not in releases:
            releases.append(rel)
    return {
        "network_name": network["name"],
        "environment": network["environment"],
        "n": network["n"],
        "t": network["t"],
        "tls_mode": network["tls_mode"],
        "trusted_releases": releases,
        "trusted_pcr0": [r["pcr0"] for r in releases],
        "party_id": pid,
        "party": me,
        "parties": network["parties"],
        "peers": [p for p in network["parties"] if p["party_id"] != pid],
        "region": region,
        "cluster_name": cluster,
        "namespace": namespace,
        "buckets": {
            "private": buckets.get("mpc_private_bucket"),
            "public": buckets.get("mpc_public_bucket"),
            "backup": buckets.get("mpc_backup_bucket", ""),
        },
        "prefixes": prefixes,
        "backup_keychain": backup_keychain,
        "aws_endpoint_url": party_vars.get("mpc_aws_endpoint_url") or "",
        "kube_api_server": party_vars.get("mpc_kube_api_server") or "",
    }


def validate(network, party_vars):
    """Network first (all its errors at once), then the party's own variables."""
    return validate_party(validate_network(network), party_vars)
