# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Logic of the vpc_interface_endpoint module: an interface VPC endpoint (PrivateLink consumer
side) to an endpoint service that may live in another account and another region.

amazon.aws.ec2_vpc_endpoint (10.1) has no option for the EC2 ``ServiceRegion`` parameter, so
an endpoint to a service in another region cannot be made with it. This module names the
service's region when it differs from its own, and explains a service it cannot see: missing
region (the service does not list this region among its supported regions) or missing
principal (the service does not allow this account).

Pure functions (validation, lookup, planning, the explanation) take and return plain dicts in
the boto3 shapes; `InterfaceEndpoint` runs them through EC2 clients and honours check mode.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

try:
    import botocore  # noqa: F401  (handled by AnsibleAWSModule)
except ImportError:
    pass

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.ec2 import ensure_ec2_tags
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_specifications

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_retry
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import (
    REGION_RE, SERVICE_NAME_RE, service_name_region)
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.vpc_endpoint_service import (
    account_principal,
    partition_of,
)

ENDPOINT_ID_RE = re.compile(r"^vpce-[0-9a-f]{8,17}$")
RESOURCE_TYPE = "vpc-endpoint"
DEAD_STATES = ("deleting", "deleted", "rejected", "failed", "expired")
ABSENT = "absent"


class InterfaceEndpointError(Exception):
    """A rule broken by the inputs or by what exists in the account."""


# ---------------------------------------------------------------- validation --

def validate_params(params):
    """Every rule the module's inputs break, each naming the option. No AWS call."""
    errors = []
    state = params.get("state") or "present"
    endpoint_id = params.get("vpc_endpoint_id")
    if endpoint_id and not ENDPOINT_ID_RE.match(endpoint_id):
        errors.append("vpc_endpoint_id: %r is not a VPC endpoint id (vpce-<hex>)" % (endpoint_id,))
    if state == "absent":
        if not endpoint_id:
            errors.append("vpc_endpoint_id: required when state=absent")
        return errors
    if not params.get("vpc_id"):
        errors.append("vpc_id: required when state=present")
    if not params.get("subnet_ids"):
        errors.append("subnet_ids: required (at least one subnet) when state=present")
    name = params.get("service_name")
    if not name:
        errors.append("service_name: required when state=present")
    elif not SERVICE_NAME_RE.match(name):
        errors.append("service_name: %r is not an endpoint service name (com.amazonaws.vpce.<region>.vpce-svc-<hex>)"
                      % (name,))
    region = params.get("service_region")
    if region:
        if not REGION_RE.match(region):
            errors.append("service_region: %r is not an AWS region name (for example us-east-1)" % (region,))
        elif service_name_region(name) and service_name_region(name) != region:
            errors.append("service_region: %s, but the service name %s says the service is in %s"
                          % (region, name, service_name_region(name)))
    return errors


def wanted_service_region(params):
    """The region of the service: service_region, else the one its name carries."""
    return params.get("service_region") or service_name_region(params.get("service_name"))


# -------------------------------------------------------------------- lookup --

def tags_of(endpoint):
    return boto3_tag_list_to_ansible_dict(endpoint.get("Tags") or [])


def tags_in_place(current, wanted, purge=True):
    """Whether ensure_ec2_tags would leave ``current`` (the endpoint's tags, as a dict) as it is:
    no tags asked for, or the wanted ones present with their values and, when purging, no others
    (AWS's own aws: tags aside)."""
    if wanted is None:
        return True
    current = dict((k, v) for k, v in (current or {}).items() if not k.startswith("aws:"))
    wanted = dict((str(k), str(v)) for k, v in wanted.items())
    if purge:
        return current == wanted
    return all(current.get(k) == v for k, v in wanted.items())


def endpoint_region(endpoint, own_region):
    """The region of an endpoint's service: ServiceRegion when AWS gives it, else the own region."""
    return endpoint.get("ServiceRegion") or own_region


def find_endpoint(endpoints, service_name, name=None):
    """The live endpoint to ``service_name`` (tagged Name=``name`` when given) among ``endpoints``
    (boto3 VpcEndpoints of one VPC). None when there is none; ambiguity is an error."""
    live = [e for e in endpoints if (e.get("State") or "").lower() not in DEAD_STATES
            and e.get("ServiceName") == service_name and e.get("VpcEndpointType", "Interface") == "Interface"]
    if name is not None:
        live = [e for e in live if tags_of(e).get("Name") == name]
    if len(live) > 1:
        raise InterfaceEndpointError(
            "%d interface endpoints to %s%s exist in this VPC (%s); give vpc_endpoint_id of the one to manage"
            % (len(live), service_name, " tagged Name=%s" % name if name else "",
               ", ".join(sorted(e["VpcEndpointId"] for e in live))))
    return live[0] if live else None


# ------------------------------------------------------------------ planning --

def plan_update(endpoint, params):
    """The modify_vpc_endpoint arguments (without VpcEndpointId) an existing endpoint needs;
    {} when nothing. Subnets and security groups are exact sets."""
    modify = {}
    current_subnets = set(endpoint.get("SubnetIds") or [])
    wanted_subnets = set(params.get("subnet_ids") or [])
    if wanted_subnets - current_subnets:
        modify["AddSubnetIds"] = sorted(wanted_subnets - current_subnets)
    if current_subnets - wanted_subnets:
        modify["RemoveSubnetIds"] = sorted(current_subnets - wanted_subnets)
    if params.get("security_group_ids") is not None:
        current_groups = {g["GroupId"] for g in endpoint.get("Groups") or []}
        wanted_groups = set(params["security_group_ids"])
        if wanted_groups - current_groups:
            modify["AddSecurityGroupIds"] = sorted(wanted_groups - current_groups)
        if current_groups - wanted_groups:
            modify["RemoveSecurityGroupIds"] = sorted(current_groups - wanted_groups)
    return modify


def check_same_service(endpoint, service_name, service_region, own_region):
    """An existing endpoint cannot be moved to another service or region: say so."""
    have = (endpoint.get("ServiceName"), endpoint_region(endpoint, own_region))
    if have != (service_name, service_region):
        raise InterfaceEndpointError(
            "vpc_endpoint_id: %s connects to %s (%s), not to %s (%s); an endpoint cannot change its "
            "service: delete it first" % (endpoint["VpcEndpointId"], have[0], have[1], service_name, service_region))


def explain_invisible(service_name, service_region, own_region, account_id, partition, visible_at_home, owner=None):
    """(reason, message) for a service this account cannot see from ``own_region``.

    ``visible_at_home``: whether the same account sees the service in the service's own region
    (None when that was not asked: same region). Seen there but not from here means the
    service does not list this region; not seen there either means it does not allow this
    account (or the name is wrong).
    """
    who = "service %s%s (%s)" % (service_name, " of " + owner if owner else "", service_region)
    principal = account_principal(account_id, partition)
    if service_region != own_region and visible_at_home:
        return ("region", "%s does not list %s among its supported regions: this account (%s) is allowed, "
                "but an endpoint in %s can connect only once the service's owner adds %s to its supported regions"
                % (who, own_region, principal, own_region, own_region))
    return ("principal", "%s is not visible to this account: it does not allow principal %s (or the name is "
            "wrong); the service's owner must add it to the allowed principals%s"
            % (who, principal, "" if service_region == own_region
               else ", and list %s among its supported regions" % own_region))


def endpoint_view(endpoint, own_region):
    """The fields --diff shows (or {} for none)."""
    if not endpoint:
        return {}
    return {
        "service_name": endpoint.get("ServiceName"),
        "service_region": endpoint_region(endpoint, own_region),
        "subnet_ids": sorted(endpoint.get("SubnetIds") or []),
        "security_group_ids": sorted(g["GroupId"] for g in endpoint.get("Groups") or []),
        "tags": tags_of(endpoint),
    }


def desired_view(before, params, service_region):
    after = dict(before) if before else {}
    after.update(service_name=params["service_name"], service_region=service_region,
                 subnet_ids=sorted(set(params.get("subnet_ids") or [])))
    if params.get("security_group_ids") is not None:
        after["security_group_ids"] = sorted(set(params["security_group_ids"]))
    elif not before:
        after["security_group_ids"] = []
    if params.get("tags") is not None:
        after["tags"] = (dict(params["tags"]) if params.get("purge_tags", True)
                         else dict(before.get("tags") or {}, **params["tags"]))
    elif not before:
        after["tags"] = {}
    return after


def result_of(endpoint, own_region, service_region=None):
    if not endpoint:
        return {"vpc_endpoint_id": None, "state": ABSENT, "service_name": None, "service_region": service_region,
                "dns_name": None, "dns_entries": [], "subnet_ids": [], "security_group_ids": [], "tags": {},
                "endpoint": {}}
    dns = endpoint.get("DnsEntries") or []
    return {
        "vpc_endpoint_id": endpoint["VpcEndpointId"],
        "state": endpoint.get("State"),
        "service_name": endpoint.get("ServiceName"),
        "service_region": endpoint_region(endpoint, own_region),
        "dns_name": dns[0].get("DnsName") if dns else None,
        "dns_entries": camel_dict_to_snake_dict({"d": dns})["d"],
        "subnet_ids": sorted(endpoint.get("SubnetIds") or []),
        "security_group_ids": sorted(g["GroupId"] for g in endpoint.get("Groups") or []),
        "tags": tags_of(endpoint),
        "endpoint": camel_dict_to_snake_dict(endpoint, ignore_list=["Tags"]),
    }


# ------------------------------------------------------------------ AWS side --

class InterfaceEndpoint:
    """Runs the plan against EC2. ``client_for(region)`` returns a retrying EC2 client."""

    def __init__(self, module, client_for, own_region):
        self.module = module
        self.client_for = client_for
        self.client = client_for(own_region)
        self.own_region = own_region
        self.check_mode = module.check_mode

    def _fail(self, err, msg):
        self.module.fail_json_aws(err, msg=msg)

    def get(self, endpoint_id):
        try:
            found = self.client.describe_vpc_endpoints(aws_retry=True, VpcEndpointIds=[endpoint_id])
        except is_boto3_error_code(["InvalidVpcEndpointId.NotFound", "InvalidVpcEndpoint.NotFound"]):
            return None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self._fail(e, "Failed to describe VPC endpoint %s" % endpoint_id)
        endpoints = [e for e in found.get("VpcEndpoints") or [] if (e.get("State") or "").lower() not in DEAD_STATES]
        return endpoints[0] if endpoints else None

    def in_vpc(self, vpc_id, service_name):
        endpoints, token = [], None
        try:
            while True:
                kwargs = {"NextToken": token} if token else {}
                page = self.client.describe_vpc_endpoints(
                    aws_retry=True, Filters=[{"Name": "vpc-id", "Values": [vpc_id]},
                                             {"Name": "service-name", "Values": [service_name]}], **kwargs)
                endpoints.extend(page.get("VpcEndpoints") or [])
                token = page.get("NextToken")
                if not token:
                    return endpoints
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to list the VPC endpoints of %s" % vpc_id)

    def visible(self, client, service_name, service_region=None):
        """Whether ``client``'s account and region see the service (in ``service_region``)."""
        kwargs = {"ServiceNames": [service_name]}
        if service_region:
            kwargs["ServiceRegions"] = [service_region]
        try:
            found = client.describe_vpc_endpoint_services(aws_retry=True, **kwargs)
        except is_boto3_error_code("InvalidServiceName"):
            return False
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self._fail(e, "Failed to look up the endpoint service %s" % service_name)
        return service_name in (found.get("ServiceNames") or [])

    def caller(self):
        try:
            return aws_retry.client(self.module, "sts").get_caller_identity(aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to read the caller identity (sts get-caller-identity)")

    def ensure_visible(self, service_name, service_region, owner):
        cross = service_region != self.own_region
        if self.visible(self.client, service_name, service_region if cross else None):
            return
        at_home = self.visible(self.client_for(service_region), service_name) if cross else None
        identity = self.caller()
        reason, message = explain_invisible(service_name, service_region, self.own_region, identity["Account"],
                                            partition_of(identity["Arn"]), at_home, owner)
        self.module.fail_json(msg="service_name: " + message, reason=reason, service_name=service_name,
                              service_region=service_region)

    def create(self, params, service_region):
        kwargs = {
            "VpcEndpointType": "Interface",
            "VpcId": params["vpc_id"],
            "ServiceName": params["service_name"],
            "SubnetIds": list(params["subnet_ids"]),
            "PrivateDnsEnabled": bool(params.get("private_dns_enabled")),
        }
        if params.get("security_group_ids"):
            kwargs["SecurityGroupIds"] = list(params["security_group_ids"])
        if service_region != self.own_region:
            kwargs["ServiceRegion"] = service_region
        if params.get("tags"):
            kwargs["TagSpecifications"] = boto3_tag_specifications(params["tags"], types=[RESOURCE_TYPE])
        try:
            return self.client.create_vpc_endpoint(aws_retry=True, **kwargs)["VpcEndpoint"]
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to create an interface endpoint to %s (%s) in %s"
                       % (params["service_name"], service_region, params["vpc_id"]))

    def modify(self, endpoint_id, modify):
        try:
            self.client.modify_vpc_endpoint(aws_retry=True, VpcEndpointId=endpoint_id, **modify)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to modify VPC endpoint %s (%s)" % (endpoint_id, ", ".join(sorted(modify))))

    def delete(self, endpoint_id):
        try:
            result = self.client.delete_vpc_endpoints(aws_retry=True, VpcEndpointIds=[endpoint_id])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to delete VPC endpoint %s" % endpoint_id)
        failed = [u for u in result.get("Unsuccessful") or []
                  if (u.get("Error") or {}).get("Code") not in ("InvalidVpcEndpoint.NotFound",
                                                                "InvalidVpcEndpointId.NotFound")]
        if failed:
            err = failed[0].get("Error") or {}
            self.module.fail_json(msg="Failed to delete VPC endpoint %s: %s: %s"
                                  % (endpoint_id, err.get("Code"), err.get("Message")))

    def wait_available(self, endpoint_id, timeout):
        deadline = time.time() + timeout
        while True:
            endpoint = self.get(endpoint_id)
            state = ((endpoint or {}).get("State") or "").lower()
            if state == "available":
                return endpoint
            if state in DEAD_STATES or not endpoint or time.time() >= deadline:
                self.module.fail_json(msg="VPC endpoint %s is %s, not available, after %ds"
                                      % (endpoint_id, state or "gone", timeout), vpc_endpoint_id=endpoint_id)
            time.sleep(5)

    # --------------------------------------------------------- the two states --

    def ensure_present(self, params):
        service_name = params["service_name"]
        service_region = wanted_service_region(params)
        if params.get("vpc_endpoint_id"):
            endpoint = self.get(params["vpc_endpoint_id"])
        else:
            endpoint = find_endpoint(self.in_vpc(params["vpc_id"], service_name), service_name,
                                     (params.get("tags") or {}).get("Name"))
        if endpoint is not None:
            check_same_service(endpoint, service_name, service_region, self.own_region)
        # An available endpoint already reaches the service: its visibility is asked (and explained
        # when missing) only for an endpoint to create or one that is not available.
        if endpoint is None or (endpoint.get("State") or "").lower() != "available":
            self.ensure_visible(service_name, service_region, params.get("service_owner"))

        if endpoint is None:
            after = desired_view({}, params, service_region)
            if self.check_mode:
                return dict(result_of(None, self.own_region, service_region), changed=True,
                            diff={"before": {}, "after": after})
            endpoint = self.create(params, service_region)
            if params.get("wait"):
                endpoint = self.wait_available(endpoint["VpcEndpointId"], params.get("wait_timeout") or 300)
            endpoint = self.get(endpoint["VpcEndpointId"]) or endpoint
            return dict(result_of(endpoint, self.own_region), changed=True, diff={"before": {}, "after": after})

        endpoint_id = endpoint["VpcEndpointId"]
        before = endpoint_view(endpoint, self.own_region)
        after = desired_view(before, params, service_region)
        modify = plan_update(endpoint, params)
        if modify and not self.check_mode:
            self.modify(endpoint_id, modify)
        changed = bool(modify)
        if not tags_in_place(tags_of(endpoint), params.get("tags"), params.get("purge_tags", True)):
            changed |= ensure_ec2_tags(self.client, self.module, endpoint_id, resource_type=RESOURCE_TYPE,
                                       tags=params.get("tags"), purge_tags=params.get("purge_tags", True))
        if changed and not self.check_mode:
            if params.get("wait"):
                self.wait_available(endpoint_id, params.get("wait_timeout") or 300)
            endpoint = self.get(endpoint_id) or endpoint
        result = result_of(endpoint, self.own_region)
        if self.check_mode:
            result.update(subnet_ids=after["subnet_ids"], security_group_ids=after["security_group_ids"],
                          tags=after["tags"])
        return dict(result, changed=changed, diff={"before": before, "after": after})

    def ensure_absent(self, params):
        endpoint = self.get(params["vpc_endpoint_id"])
        if endpoint is None:
            return dict(result_of(None, self.own_region), changed=False, diff={"before": {}, "after": {}})
        before = endpoint_view(endpoint, self.own_region)
        if not self.check_mode:
            self.delete(endpoint["VpcEndpointId"])
        result = result_of(None, self.own_region, before["service_region"])
        result.update(vpc_endpoint_id=endpoint["VpcEndpointId"], service_name=endpoint.get("ServiceName"))
        return dict(result, changed=True, diff={"before": before, "after": {}})
