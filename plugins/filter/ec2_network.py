# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Whether a VPC, an internet gateway, a subnet, a route table or a security group is already
exactly as eks_cluster (or privatelink, for its peer security groups) would make it.

A no-change re-run reads the VPC, its internet gateway, subnets, route tables and security groups
once each (one describe per kind) and runs amazon.aws.ec2_vpc_net / ec2_vpc_igw / ec2_vpc_subnet /
ec2_vpc_route_table / ec2_security_group only for the ones that are missing or differ. "In place"
means every setting those modules would reconcile is already as wanted: the modules' tags are
purged, so the tags must be equal (AWS's own ``aws:`` tags aside); route tables purge routes and
subnet associations, so both must be equal too; security groups purge rules as their task says (see
ec2_security_group_in_place); a VPC's DNS attributes and CIDRs, an internet gateway's attachment
(see ec2_vpc_in_place, ec2_igw_in_place). Anything unsure is "not in place": the module runs and
decides, so drift is still repaired.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re


def _text(value):
    return "" if value is None else str(value)


def aws_tags(tags):
    """AWS tags as a dict, whether a dict or a list of key/value (Key/Value) items."""
    if isinstance(tags, dict):
        return {str(k): _text(v) for k, v in tags.items()}
    result = {}
    for tag in tags or []:
        if isinstance(tag, dict):
            key = tag.get("key", tag.get("Key"))
            if key is not None:
                result[str(key)] = _text(tag.get("value", tag.get("Value")))
    return result


def _tags(tags):
    """The tags the amazon.aws modules reconcile: AWS's own ``aws:`` tags are never purged."""
    return dict((k, v) for k, v in aws_tags(tags).items() if not k.startswith("aws:"))


def _subnet_with_cidr(subnets, cidr):
    return next((s for s in subnets or [] if cidr and s.get("cidr_block") == cidr), None)


def _ipv6_blocks(subnet):
    return [b for b in subnet.get("ipv6_cidr_block_association_set") or []
            if (b.get("ipv6_cidr_block_state") or {}).get("state", "associated") not in ("disassociated", "failed")]


def ec2_subnet_in_place(subnets, cidr, az, tags, map_public=False):
    """The id of the subnet of ``subnets`` (ec2_vpc_subnet_info's list) with this CIDR that is
    available, in ``az``, with ``map_public``, no IPv6 CIDR nor IPv6 assignment, and exactly ``tags``;
    '' when there is none."""
    subnet = _subnet_with_cidr(subnets, cidr)
    if (subnet and subnet.get("availability_zone") == az and subnet.get("state") == "available"
            and bool(subnet.get("map_public_ip_on_launch")) == bool(map_public)
            # the module (no ipv6_cidr, assign_instances_ipv6 false) would remove both
            and not subnet.get("assign_ipv6_address_on_creation") and not _ipv6_blocks(subnet)
            and _tags(subnet.get("tags")) == _tags(tags)):
        return subnet.get("id") or subnet.get("subnet_id") or ""
    return ""


def ec2_subnet_id(result, subnets, cidr=None, unknown=""):
    """The id of the subnet an ec2_vpc_subnet task result stands for: the subnet it returned, or,
    for a task (or loop item) skipped because the subnet was in place, the subnet of ``subnets``
    with its CIDR (``cidr``, else the last element of the loop item, as in a loop over
    ``zones | zip(cidrs)``); ``unknown`` when neither names one (check mode, before creation)."""
    result = result or {}
    made = result.get("subnet") or {}
    if made:
        return made.get("id") or made.get("subnet_id") or unknown
    if cidr is None:
        item = result.get("item")
        cidr = item[-1] if isinstance(item, (list, tuple)) and item else None
    subnet = _subnet_with_cidr(subnets, cidr) or {}
    return subnet.get("id") or subnet.get("subnet_id") or unknown


_TARGETS = ("gateway_id", "nat_gateway_id", "transit_gateway_id", "vpc_peering_connection_id",
            "network_interface_id", "instance_id", "egress_only_internet_gateway_id", "carrier_gateway_id",
            "local_gateway_id", "core_network_arn")


def _route(route):
    dest = route.get("destination_cidr_block") or route.get("destination_ipv6_cidr_block") or route.get("dest") or ""
    targets = tuple(sorted((k, str(route[k])) for k in _TARGETS if route.get(k)))
    return dest, targets


def ec2_route_table_in_place(route_tables, tags, subnet_ids, routes):
    """True when exactly one table of ``route_tables`` (ec2_vpc_route_table_info's list) carries
    ``tags`` (ec2_vpc_route_table's lookup by tags), and it has exactly those tags, exactly the
    associations with ``subnet_ids`` and exactly ``routes`` (dest and target) besides the VPC's
    local route, every one of them active."""
    wanted = _tags(tags)
    matches = [t for t in route_tables or [] if all(_tags(t.get("tags")).get(k) == v for k, v in wanted.items())]
    if len(matches) != 1:
        return False
    table = matches[0]
    if _tags(table.get("tags")) != wanted:
        return False
    associated = set()
    for assoc in table.get("associations") or []:
        if assoc.get("main"):
            return False  # the module never manages the main table
        state = (assoc.get("association_state") or {}).get("state", "associated")
        if assoc.get("subnet_id") and state == "associated":
            associated.add(assoc["subnet_id"])
        elif assoc.get("gateway_id"):
            return False
    if associated != set(subnet_ids or []):
        return False
    present = []
    for route in table.get("routes") or []:
        if route.get("gateway_id") == "local" or route.get("origin") == "CreateRouteTable":
            continue
        if route.get("state", "active") != "active" or route.get("origin") == "CreateRouteToPrefixList":
            return False
        present.append(_route(route))
    return sorted(present) == sorted(_route(r) for r in routes or [])


# --------------------------------------------------------------------------- security groups --
# A rule is compared as amazon.aws.ec2_security_group compares it: (protocol, from port, to port,
# target kind, target, description), one tuple per port range and source, descriptions included
# (the module updates a description that differs). Ports are None where AWS gives none (protocol
# -1, "all"). A group target is (account, group id): the module compares the pair's UserId with
# the caller's account, taken here to be the group's owner.

_SOURCES = (("cidr_ip", "ipv4"), ("cidr_ipv6", "ipv6"), ("group_id", "group"), ("group_name", "group"),
            ("ip_prefix", "ip_prefix"))
_FOREIGN_GROUP_RE = re.compile(r"^([^/]+)/?(sg-\S+)?/(\S+)")


class _Unsure(Exception):
    """A rule of a shape not modelled here: the module decides."""


def _port(value):
    return None if value is None else int(value)


def _description(value):
    return None if value is None else str(value)


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        found = []
        for item in value:
            found.extend(_as_list(item))
        return found
    return [value]


def _permissions(permissions, owner=""):
    """The rules of a security group (ip_permissions or ip_permissions_egress as
    ec2_security_group_info returns them) as comparable tuples, one per source."""
    found = []
    for perm in permissions or []:
        proto = _text(perm.get("ip_protocol"))
        if perm.get("from_port") is None and perm.get("to_port") is None:
            head = (proto, None, None)
        else:
            head = (proto, _port(perm.get("from_port")), _port(perm.get("to_port")))
        for rng in perm.get("ip_ranges") or []:
            found.append(head + ("ipv4", _text(rng.get("cidr_ip")), _description(rng.get("description"))))
        for rng in perm.get("ipv6_ranges") or []:
            found.append(head + ("ipv6", _text(rng.get("cidr_ipv6")), _description(rng.get("description"))))
        for pl in perm.get("prefix_list_ids") or []:
            found.append(head + ("ip_prefix", _text(pl.get("prefix_list_id")), _description(pl.get("description"))))
        for pair in perm.get("user_id_group_pairs") or []:
            # another account's group, or an amazon- group named without an id, matches no wanted rule
            target = (_text(pair.get("user_id") or owner),
                      _text(pair.get("group_id") or "name:%s" % pair.get("group_name")))
            found.append(head + ("group", target, _description(pair.get("description"))))
    return found


def _port_ranges(rule):
    if rule.get("icmp_type") is not None:
        return [(_port(rule["icmp_type"]), _port(rule.get("icmp_code")))]
    if rule.get("from_port") is not None or rule.get("to_port") is not None:
        return [(_port(rule.get("from_port")), _port(rule.get("to_port")))]
    if rule.get("ports") is None:
        return [(None, None)]
    ranges = []
    for port in _as_list(rule["ports"]):
        text = _text(port).strip()
        try:
            ranges.append((int(text),) * 2)
        except ValueError:
            if "-" not in text:
                raise _Unsure(port)
            low, high = (int(p.strip()) for p in text.split("-", 1))
            ranges.append(tuple(sorted((low, high))))
    return ranges


def _cidr(value):
    try:
        return str(ipaddress.ip_network(_text(value)))  # the module's own normalising; host bits: it warns
    except ValueError:
        raise _Unsure(value)


def _target(kind, value, name, group, groups):
    if kind in ("cidr_ip", "cidr_ipv6"):
        return _cidr(value)
    if kind == "ip_prefix":
        return _text(value)
    owner = _text(group.get("owner_id"))
    if kind == "group_id":
        if _FOREIGN_GROUP_RE.match(_text(value)):
            raise _Unsure(value)  # another account's or an amazon- group
        return owner, _text(value)
    if _text(value) == name:  # the group itself
        return owner, _text(group.get("group_id"))
    same = [g for g in groups if g.get("group_name") == _text(value) and g.get("vpc_id") == group.get("vpc_id")]
    if len(same) != 1:
        raise _Unsure(value)  # the module would create it, or pick one
    return owner, _text(same[0].get("group_id"))


def _wanted_permissions(rules, name, group, groups):
    """The module's expansion of ``rules``: one tuple per port range and source."""
    found = set()
    for rule in rules or []:
        proto = _text(rule.get("proto") if rule.get("proto") is not None else "tcp")
        ranges = _port_ranges(rule)
        if proto in ("all", "-1"):
            proto, ranges = "-1", [(None, None)]
        elif proto.lstrip("-").isdigit():
            ranges = [(None, None)]  # a numeric protocol: the module drops the ports
        sources = [(key, value) for key, _kind in _SOURCES for value in _as_list(rule.get(key))]
        if not sources:
            raise _Unsure(rule)
        for low, high in ranges:
            for key, value in sources:
                found.add((proto, low, high, dict(_SOURCES)[key], _target(key, value, name, group, groups),
                           _description(rule.get("rule_desc"))))
    return found


def _rules_in_place(present, wanted, purge):
    present = set(present)
    return present == wanted if purge else wanted <= present


def _tags_in_place(present, wanted, purge):
    if wanted is None:
        return True
    wanted = _tags(wanted)
    if purge and not wanted:
        return not aws_tags(present)  # the module then unsets every tag, AWS's own too
    if purge:
        return _tags(present) == wanted
    present = _tags(present)
    return all(present.get(k) == v for k, v in wanted.items())


def security_group_in_place(group, rules=None, tags=None, purge_rules=True, description=None,
                            rules_egress=None, purge_rules_egress=True, purge_tags=True, groups=None):
    """Whether amazon.aws.ec2_security_group with these parameters would leave ``group`` (one
    group as ec2_security_group_info returns it) as it is, and report no change."""
    if not group or not _text(group.get("group_id")):
        return False
    if description is not None and _text(group.get("description")) != _text(description):
        return False  # the module cannot change it: it warns, so it runs to say so
    if not _tags_in_place(group.get("tags"), tags, purge_tags):
        return False
    name, owner = _text(group.get("group_name")), _text(group.get("owner_id"))
    try:
        wanted = _wanted_permissions(rules, name, group, groups or [group])
        wanted_egress = None if rules_egress is None else _wanted_permissions(rules_egress, name, group, groups or [group])
    except (_Unsure, ValueError, TypeError):
        return False
    # rules None is the module's "no rules given": nothing added, and with purge_rules every rule revoked
    if not _rules_in_place(_permissions(group.get("ip_permissions"), owner), wanted, purge_rules):
        return False
    # rules_egress None: the module neither adds nor revokes an egress rule, whatever purge_rules_egress says
    # (it only revokes when rules_egress is given); its default allow-all is added to a group it creates
    if wanted_egress is not None and not _rules_in_place(
            _permissions(group.get("ip_permissions_egress"), owner), wanted_egress, purge_rules_egress):
        return False
    return True


def _one_group(groups, name):
    same = [g for g in groups or [] if name and g.get("group_name") == name]
    return same[0] if len(same) == 1 else None


def ec2_security_group_in_place(groups, name, rules=None, tags=None, purge_rules=True, description=None,
                                rules_egress=None, purge_rules_egress=True, purge_tags=True):
    """True when exactly one group of ``groups`` (ec2_security_group_info's list for the VPC) is
    named ``name`` and amazon.aws.ec2_security_group given these parameters would change nothing."""
    groups = list(groups or [])
    group = _one_group(groups, _text(name))
    return group is not None and security_group_in_place(
        group, rules, tags, purge_rules, description, rules_egress, purge_rules_egress, purge_tags, groups)


def ec2_security_group_id(result, groups, name, unknown=""):
    """The id of the group an ec2_security_group task result stands for: the group it returned,
    or, for a task skipped because the group was in place, the one group of ``groups`` named
    ``name``; ``unknown`` when neither names one (check mode, before creation)."""
    made = _text((result or {}).get("group_id"))
    if made:
        return made
    group = _one_group(groups, _text(name)) or {}
    return _text(group.get("group_id")) or unknown


# ------------------------------------------------------------------ VPC and internet gateway --
# amazon.aws.ec2_vpc_net (no vpc_id, multi_ok false) finds its VPC by the Name tag and the CIDR
# (DescribeVpcs filters tag:Name and cidr-block) and fails when several match. On the one found it
# reconciles the tags (its Name tag added; the others purged unless purge_tags is false; with no
# tags at all only the Name tag is set), the CIDRs (added when not associated; the others removed
# only with purge_cidrs, default false), the Amazon IPv6 block only when ipv6_cidr is given
# (default: none, an existing block is left alone), the DHCP options only when dhcp_opts_id is
# given, DNS support and DNS hostnames when given. The tenancy of an existing VPC is never changed.
# amazon.aws.ec2_vpc_igw (vpc_id, no gateway id) finds the gateway attached to the VPC (filter
# attachment.vpc-id; fails when several), attaches one it finds detached, and reconciles its tags.

_GONE = ("disassociating", "disassociated")


def _vpc_matches(vpc, name, cidrs):
    """Whether ec2_vpc_net's lookup (Name tag, CIDR) finds ``vpc``: the primary CIDR or, to be
    safe about what AWS's cidr-block filter matches, an associated one."""
    if aws_tags(vpc.get("tags")).get("Name") != name:
        return False
    present = [_text(vpc.get("cidr_block"))] + [_text(a.get("cidr_block"))
                                                 for a in vpc.get("cidr_block_association_set") or []]
    return any(c in present for c in cidrs)


def _associations(vpc, key, set_name):
    return [(_text(a.get(key)), _text((a.get(key + "_state") or {}).get("state")), a)
            for a in vpc.get(set_name) or []]


def _amazon_ipv6(vpc, states):
    return [a for cidr, state, a in _associations(vpc, "ipv6_cidr_block", "ipv6_cidr_block_association_set")
            if a.get("ipv6_pool") == "Amazon" and state in states]


def _attribute(vpc, key, wanted):
    if wanted is None:
        return True
    value = vpc.get(key)
    return isinstance(value, bool) and value == bool(wanted)


def ec2_vpc_in_place(vpcs, name, cidr, dns_hostnames=None, dns_support=None, tags=None, purge_tags=True,
                     ipv6_cidr=None, purge_cidrs=False, dhcp_opts_id=None):
    """The id of the one VPC of ``vpcs`` (ec2_vpc_net_info's list) that amazon.aws.ec2_vpc_net
    given these parameters would find by ``name`` and ``cidr`` and leave as it is; '' when there
    is none, several (the module fails), or the module would change something."""
    name, cidrs = _text(name), [_text(c) for c in _as_list(cidr)]
    if not name or not cidrs or (dns_hostnames and not dns_support):
        return ""  # the module fails (no name to create with; hostnames without DNS support)
    found = [v for v in vpcs or [] if _vpc_matches(v, name, cidrs)]
    if len(found) != 1:
        return ""
    vpc = found[0]
    if vpc.get("state") != "available":
        return ""
    wanted_tags = dict(_tags(tags or {}), Name=name)
    if not _tags_in_place(vpc.get("tags"), wanted_tags, purge_tags and tags is not None):
        return ""
    associated = dict((c, s) for c, s, _a in _associations(vpc, "cidr_block", "cidr_block_association_set"))
    if any(associated.get(c) != "associated" for c in cidrs):
        return ""  # the module would associate it (or wait for it)
    if purge_cidrs and any(s != "disassociated" for c, s in associated.items() if c not in cidrs):
        return ""  # the module would disassociate it
    if ipv6_cidr is not None:
        if ipv6_cidr and not _amazon_ipv6(vpc, ("associated",)):
            return ""
        if not ipv6_cidr and _amazon_ipv6(vpc, ("associated", "associating")):
            return ""
    if dhcp_opts_id is not None and _text(vpc.get("dhcp_options_id")) != _text(dhcp_opts_id):
        return ""
    if not (_attribute(vpc, "enable_dns_support", dns_support)
            and _attribute(vpc, "enable_dns_hostnames", dns_hostnames)):
        return ""
    return _text(vpc.get("id") or vpc.get("vpc_id"))


def ec2_igw_in_place(igws, vpc_id, tags=None, purge_tags=True):
    """The id of the one internet gateway of ``igws`` (ec2_vpc_igw_info's list) attached to
    ``vpc_id`` when amazon.aws.ec2_vpc_igw given this vpc_id and these tags would leave it as it
    is; '' when there is none, several (the module fails) or the module would change something."""
    vpc_id = _text(vpc_id)
    found = [g for g in igws or [] if vpc_id and any(_text(a.get("vpc_id")) == vpc_id
                                                     for a in g.get("attachments") or [])]
    if len(found) != 1:
        return ""
    igw = found[0]
    attachments = igw.get("attachments") or []
    # AWS says "available" for an attached internet gateway (the API's enum says "attached")
    if len(attachments) != 1 or _text(attachments[0].get("state")) not in ("available", "attached"):
        return ""
    if not _tags_in_place(igw.get("tags"), tags, purge_tags):
        return ""
    return _text(igw.get("internet_gateway_id") or igw.get("gateway_id"))


class FilterModule(object):
    def filters(self):
        return {"ec2_subnet_in_place": ec2_subnet_in_place, "ec2_subnet_id": ec2_subnet_id,
                "ec2_route_table_in_place": ec2_route_table_in_place,
                "ec2_security_group_in_place": ec2_security_group_in_place,
                "ec2_security_group_id": ec2_security_group_id,
                "ec2_vpc_in_place": ec2_vpc_in_place, "ec2_igw_in_place": ec2_igw_in_place}
