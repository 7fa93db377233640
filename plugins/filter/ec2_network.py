# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Whether a subnet or a route table is already exactly as eks_cluster would make it.

A no-change re-run reads the VPC's subnets and route tables once each (one describe per kind)
and runs amazon.aws.ec2_vpc_subnet / ec2_vpc_route_table only for the ones that are missing or
differ. "In place" means every setting those modules would reconcile is already as wanted: the
modules' tags are purged, so the tags must be equal (AWS's own ``aws:`` tags aside); route tables
purge routes and subnet associations, so both must be equal too. Anything unsure is "not in
place": the module runs and decides, so drift is still repaired.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type


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


class FilterModule(object):
    def filters(self):
        return {"ec2_subnet_in_place": ec2_subnet_in_place, "ec2_subnet_id": ec2_subnet_id,
                "ec2_route_table_in_place": ec2_route_table_in_place}
