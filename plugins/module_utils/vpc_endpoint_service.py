# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Logic of the vpc_endpoint_service module: a VPC endpoint service (PrivateLink provider
side) on one or more network load balancers.

Split in two layers so most of it is testable without AWS:

* pure functions (validation, lookup, planning, diff, result shaping) that take and return
  plain dicts in the boto3 shapes;
* `EndpointService`, which runs the plan through an EC2 client created by
  ``aws_retry.client(module, 'ec2')`` (the collection's retry policy) and
  honours check mode.
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

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils.input_rules import ACCOUNT_RE, REGION_RE

# IAM principals an endpoint service accepts: account root, a user or a role, or "*", in any
# partition (aws, aws-cn, aws-us-gov, aws-iso, ...).
PRINCIPAL_RE = re.compile(
    r"^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(root|user/[\w+=,.@/-]+|role/[\w+=,.@/-]+)$"
)
NLB_ARN_RE = re.compile(
    r"^arn:aws(-[a-z]+)*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:loadbalancer/[a-z]+/[\w-]+/[0-9a-f]+$"
)
ARN_PARTITION_RE = re.compile(r"^arn:(aws(-[a-z]+)*):")
RESOURCE_TYPE = "vpc-endpoint-service"
ABSENT = "absent"


class EndpointServiceError(Exception):
    """A rule broken by the inputs or by what exists in the account."""


# ---------------------------------------------------------------- validation --

def validate_params(params):
    """Every rule the module's inputs break, each naming the option. No AWS call."""
    errors = []
    arns = params.get("network_load_balancer_arns")
    name = (params.get("tags") or {}).get("Name")
    if params.get("state") == "present" and not arns:
        errors.append("network_load_balancer_arns: required (at least one ARN) when state=present")
    if params.get("state") == "absent" and not arns and not name:
        errors.append("network_load_balancer_arns or tags.Name: one is required to find the service to delete")
    for arn in arns or []:
        if not isinstance(arn, str) or not NLB_ARN_RE.match(arn):
            errors.append("network_load_balancer_arns: %r is not a load balancer ARN "
                          "(arn:<partition>:elasticloadbalancing:<region>:<account>:loadbalancer/net/<name>/<id>)" % (arn,))
    for account in params.get("allowed_account_ids") or []:
        if not (isinstance(account, str) and ACCOUNT_RE.match(account)):
            errors.append("allowed_account_ids: %r is not a 12-digit AWS account id" % (account,))
    for region in params.get("supported_regions") or []:
        if not (isinstance(region, str) and REGION_RE.match(region)):
            errors.append("supported_regions: %r is not an AWS region name (for example eu-west-1)" % (region,))
    for principal in params.get("allowed_principals") or []:
        if principal != "*" and not (isinstance(principal, str) and PRINCIPAL_RE.match(principal)):
            errors.append("allowed_principals: %r is not an IAM principal ARN "
                          "(arn:<partition>:iam::<12-digit account>:root, ...:role/<name>, ...:user/<name>) or '*'"
                          % (principal,))
    return errors


def partition_of(arn):
    """The partition of an ARN (``aws``, ``aws-cn``, ``aws-us-gov``, ...): what the caller's own
    identity (sts get-caller-identity) says, never assumed."""
    match = ARN_PARTITION_RE.match(arn or "")
    if not match:
        raise EndpointServiceError("cannot tell the AWS partition from %r (expected arn:<partition>:...)" % (arn,))
    return match.group(1)


def account_principal(account_id, partition):
    """The IAM principal of a whole account in ``partition``: arn:<partition>:iam::<account>:root."""
    account_id = str(account_id)
    if not ACCOUNT_RE.match(account_id):
        raise EndpointServiceError("allowed_account_ids: %r is not a 12-digit AWS account id" % (account_id,))
    return "arn:%s:iam::%s:root" % (partition, account_id)


def desired_principals(params, partition=None):
    """allowed_principals plus the root principal of each of allowed_account_ids (None when
    neither is set: the permissions are then not managed)."""
    principals, accounts = params.get("allowed_principals"), params.get("allowed_account_ids")
    if principals is None and accounts is None:
        return None
    return normalize_principals(list(principals or []) + [account_principal(a, partition) for a in accounts or []])


def region_changes(config, desired):
    """(to_add, to_remove) turning the service's supported regions into ``desired``. The home
    region of the service is always supported: never added nor removed, whatever AWS lists."""
    home = service_region(config)
    current = set(supported_regions(config))
    wanted = set(desired or []) - {home}
    return sorted(wanted - current), sorted(current - wanted)


def service_region(config):
    """The region of a service, from its name com.amazonaws.vpce.<region>.vpce-svc-..."""
    parts = (config.get("ServiceName") or "").split(".")
    return parts[3] if len(parts) == 5 else None


def supported_regions(config):
    """The regions other than its own from which a service may be reached, sorted."""
    home = service_region(config)
    return sorted({r.get("Region") for r in config.get("SupportedRegions") or []} - {home, None})


def normalize_principals(principals):
    """The principals as a sorted list without duplicates (AWS keeps a set)."""
    return sorted(set(principals or []))


def principal_changes(current, desired):
    """(to_add, to_remove) turning the current allowed principals into the desired set."""
    current, desired = set(current or []), set(desired or [])
    return sorted(desired - current), sorted(current - desired)


# -------------------------------------------------------------------- lookup --

def tags_of(config):
    return boto3_tag_list_to_ansible_dict(config.get("Tags") or [])


def find_service(configs, nlb_arns=None, name=None):
    """The service configuration that owns any of `nlb_arns`, else the one tagged Name=`name`.

    `configs` are boto3 ServiceConfigurations. Returns None when none matches; raises
    EndpointServiceError when the match is ambiguous (never guess which one to change).
    """
    wanted = set(nlb_arns or [])
    live = [c for c in configs if c.get("ServiceState") not in ("Deleted", "Deleting", "Failed")]
    if wanted:
        by_arn = [c for c in live if wanted & set(c.get("NetworkLoadBalancerArns") or [])]
        if len(by_arn) > 1:
            raise EndpointServiceError(
                "network_load_balancer_arns: the load balancers are attached to %d endpoint services (%s); "
                "an NLB may back only the service this module manages"
                % (len(by_arn), ", ".join(sorted(c["ServiceId"] for c in by_arn))))
        if by_arn:
            return by_arn[0]
    if name:
        by_name = [c for c in live if tags_of(c).get("Name") == name]
        if len(by_name) > 1:
            raise EndpointServiceError(
                "tags.Name: %d endpoint services are tagged Name=%s (%s); give the NLB ARNs of the one to manage"
                % (len(by_name), name, ", ".join(sorted(c["ServiceId"] for c in by_name))))
        if by_name:
            return by_name[0]
    return None


# ------------------------------------------------------------------ planning --

def plan_update(config, current_principals, params):
    """What must change on an existing service. Pure: returns a dict, calls nothing.

    Keys: ``modify`` (kwargs for modify_vpc_endpoint_service_configuration, without ServiceId;
    empty when nothing to modify), ``add_principals``, ``remove_principals``.
    Options left unset (None) are not managed.
    """
    modify = {}
    desired_arns = params.get("network_load_balancer_arns")
    if desired_arns:
        current_arns = set(config.get("NetworkLoadBalancerArns") or [])
        add = sorted(set(desired_arns) - current_arns)
        remove = sorted(current_arns - set(desired_arns))
        if add:
            modify["AddNetworkLoadBalancerArns"] = add
        if remove:
            modify["RemoveNetworkLoadBalancerArns"] = remove
    acceptance = params.get("acceptance_required")
    if acceptance is not None and bool(config.get("AcceptanceRequired")) != acceptance:
        modify["AcceptanceRequired"] = acceptance
    dns = params.get("private_dns_name")
    if dns is not None and dns != (config.get("PrivateDnsName") or ""):
        if dns:
            modify["PrivateDnsName"] = dns
        else:
            modify["RemovePrivateDnsName"] = True
    if params.get("supported_regions") is not None:
        add_r, remove_r = region_changes(config, params["supported_regions"])
        if add_r:
            modify["AddSupportedRegions"] = add_r
        if remove_r:
            modify["RemoveSupportedRegions"] = remove_r
    add_p, remove_p = ([], [])
    if params.get("allowed_principals") is not None:
        add_p, remove_p = principal_changes(current_principals, params["allowed_principals"])
    return {"modify": modify, "add_principals": add_p, "remove_principals": remove_p}


def desired_view(before, params):
    """The `after` view of the diff, given the `before` view and the module options."""
    after = dict(before) if before else {}
    if params.get("network_load_balancer_arns"):
        after["network_load_balancer_arns"] = sorted(set(params["network_load_balancer_arns"]))
    if params.get("acceptance_required") is not None:
        after["acceptance_required"] = params["acceptance_required"]
    elif not before:
        after["acceptance_required"] = True
    if params.get("private_dns_name") is not None:
        after["private_dns_name"] = params["private_dns_name"]
    elif not before:
        after["private_dns_name"] = ""
    if params.get("allowed_principals") is not None:
        after["allowed_principals"] = normalize_principals(params["allowed_principals"])
    elif not before:
        after["allowed_principals"] = []
    if params.get("supported_regions") is not None:
        home = before.get("service_region") if before else None
        after["supported_regions"] = sorted(set(params["supported_regions"]) - {home})
    elif not before:
        after["supported_regions"] = []
    if params.get("tags") is not None:
        tags = dict(params["tags"]) if params.get("purge_tags", True) else dict(before.get("tags") or {}, **params["tags"])
        after["tags"] = tags
    elif not before:
        after["tags"] = {}
    return after


def diff_view(config, principals):
    """The fields --diff shows, for an existing service (or {} for none)."""
    if not config:
        return {}
    return {
        "network_load_balancer_arns": sorted(config.get("NetworkLoadBalancerArns") or []),
        "acceptance_required": bool(config.get("AcceptanceRequired")),
        "private_dns_name": config.get("PrivateDnsName") or "",
        "allowed_principals": normalize_principals(principals),
        "service_region": service_region(config),
        "supported_regions": supported_regions(config),
        "tags": tags_of(config),
    }


def result_of(config, principals, added=None, removed=None):
    """The module's return values for a service configuration (None: no service)."""
    if not config:
        return {
            "service_id": None, "service_name": None, "state": ABSENT, "allowed_principals": [],
            "network_load_balancer_arns": [], "acceptance_required": None, "base_endpoint_dns_names": [],
            "private_dns_name": None, "tags": {}, "principals_added": added or [],
            "service_region": None, "supported_regions": [],
            "principals_removed": removed or [], "service": {},
        }
    return {
        "service_id": config["ServiceId"],
        "service_name": config["ServiceName"],
        "state": config.get("ServiceState"),
        "allowed_principals": normalize_principals(principals),
        "network_load_balancer_arns": sorted(config.get("NetworkLoadBalancerArns") or []),
        "acceptance_required": bool(config.get("AcceptanceRequired")),
        "base_endpoint_dns_names": config.get("BaseEndpointDnsNames") or [],
        "private_dns_name": config.get("PrivateDnsName") or None,
        "service_region": service_region(config),
        "supported_regions": supported_regions(config),
        "tags": tags_of(config),
        "principals_added": added or [],
        "principals_removed": removed or [],
        "service": camel_dict_to_snake_dict(config, ignore_list=["Tags"]),
    }


# ------------------------------------------------------------------ AWS side --

class EndpointService:
    """Runs the plan against EC2. `client` comes from module.client(..., retry_decorator=...)."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.check_mode = module.check_mode

    def _fail(self, err, msg):
        self.module.fail_json_aws(err, msg=msg)

    def list_configs(self):
        configs, token = [], None
        try:
            while True:
                kwargs = {"NextToken": token} if token else {}
                page = self.client.describe_vpc_endpoint_service_configurations(aws_retry=True, **kwargs)
                configs.extend(page.get("ServiceConfigurations") or [])
                token = page.get("NextToken")
                if not token:
                    return configs
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to describe VPC endpoint service configurations")

    def get_config(self, service_id):
        try:
            found = self.client.describe_vpc_endpoint_service_configurations(aws_retry=True, ServiceIds=[service_id])
        except is_boto3_error_code("InvalidVpcEndpointServiceId.NotFound"):
            return None
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
            self._fail(e, "Failed to describe VPC endpoint service %s" % service_id)
        configs = found.get("ServiceConfigurations") or []
        return configs[0] if configs else None

    def get_principals(self, service_id):
        principals, token = [], None
        try:
            while True:
                kwargs = {"NextToken": token} if token else {}
                page = self.client.describe_vpc_endpoint_service_permissions(
                    aws_retry=True, ServiceId=service_id, **kwargs)
                principals.extend(p["Principal"] for p in page.get("AllowedPrincipals") or [])
                token = page.get("NextToken")
                if not token:
                    return normalize_principals(principals)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to read the allowed principals of %s" % service_id)

    def create(self, params):
        kwargs = {
            "NetworkLoadBalancerArns": list(params["network_load_balancer_arns"]),
            "AcceptanceRequired": params["acceptance_required"] if params.get("acceptance_required") is not None else True,
        }
        if params.get("private_dns_name"):
            kwargs["PrivateDnsName"] = params["private_dns_name"]
        if params.get("supported_regions"):
            home = self.module.region
            regions = sorted(set(params["supported_regions"]) - {home})
            if regions:
                kwargs["SupportedRegions"] = regions
        if params.get("tags"):
            kwargs["TagSpecifications"] = boto3_tag_specifications(params["tags"], types=[RESOURCE_TYPE])
        try:
            created = self.client.create_vpc_endpoint_service_configuration(aws_retry=True, **kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to create a VPC endpoint service on %s" % ", ".join(kwargs["NetworkLoadBalancerArns"]))
        return created["ServiceConfiguration"]

    def modify(self, service_id, modify):
        try:
            self.client.modify_vpc_endpoint_service_configuration(aws_retry=True, ServiceId=service_id, **modify)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to modify VPC endpoint service %s (%s)" % (service_id, ", ".join(sorted(modify))))

    def set_principals(self, service_id, add, remove):
        kwargs = {}
        if add:
            kwargs["AddAllowedPrincipals"] = add
        if remove:
            kwargs["RemoveAllowedPrincipals"] = remove
        if not kwargs:
            return
        try:
            self.client.modify_vpc_endpoint_service_permissions(aws_retry=True, ServiceId=service_id, **kwargs)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to change the allowed principals of %s" % service_id)

    def delete(self, service_id):
        try:
            result = self.client.delete_vpc_endpoint_service_configurations(aws_retry=True, ServiceIds=[service_id])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            self._fail(e, "Failed to delete VPC endpoint service %s" % service_id)
        failed = [u for u in result.get("Unsuccessful") or []
                  if (u.get("Error") or {}).get("Code") not in ("InvalidVpcEndpointService.NotFound",
                                                                "InvalidVpcEndpointServiceId.NotFound")]
        if failed:
            err = failed[0].get("Error") or {}
            self.module.fail_json(
                msg="Failed to delete VPC endpoint service %s: %s: %s (an endpoint service with active endpoint "
                    "connections cannot be deleted: reject or delete them first)"
                    % (service_id, err.get("Code"), err.get("Message")))

    def wait_available(self, service_id, timeout):
        deadline = time.time() + timeout
        while True:
            config = self.get_config(service_id)
            state = (config or {}).get("ServiceState")
            if state == "Available":
                return config
            if state == "Failed" or time.time() >= deadline:
                self.module.fail_json(msg="VPC endpoint service %s is %s, not Available, after %ds"
                                      % (service_id, state, timeout), service_id=service_id, state=state)
            time.sleep(5)

    # --------------------------------------------------------- the two states --

    def ensure_present(self, params):
        name = (params.get("tags") or {}).get("Name")
        config = find_service(self.list_configs(), params.get("network_load_balancer_arns"), name)
        if config is None:
            before = {}
            after = desired_view({}, params)
            if self.check_mode:
                result = result_of(None, [], added=after["allowed_principals"])
                result["supported_regions"] = sorted(set(after["supported_regions"]) - {self.module.region})
                return dict(result, changed=True, diff={"before": before, "after": after})
            config = self.create(params)
            service_id = config["ServiceId"]
            add = normalize_principals(params.get("allowed_principals"))
            self.set_principals(service_id, add, [])
            if params.get("wait"):
                self.wait_available(service_id, params.get("wait_timeout") or 300)
            config = self.get_config(service_id) or config
            principals = self.get_principals(service_id)
            return dict(result_of(config, principals, added=add), changed=True, diff={"before": before, "after": after})

        service_id = config["ServiceId"]
        principals = self.get_principals(service_id)
        before = diff_view(config, principals)
        after = desired_view(before, params)
        plan = plan_update(config, principals, params)
        changed = bool(plan["modify"] or plan["add_principals"] or plan["remove_principals"])
        if plan["modify"] and not self.check_mode:
            self.modify(service_id, plan["modify"])
        if not self.check_mode:
            self.set_principals(service_id, plan["add_principals"], plan["remove_principals"])
        changed |= ensure_ec2_tags(self.client, self.module, service_id, resource_type=RESOURCE_TYPE,
                                   tags=params.get("tags"), purge_tags=params.get("purge_tags", True))
        if self.check_mode:
            result = result_of(config, principals, plan["add_principals"], plan["remove_principals"])
            # in check mode report the values the service would have
            result["allowed_principals"] = after["allowed_principals"]
            result["supported_regions"] = after["supported_regions"]
        else:
            if changed and params.get("wait"):
                self.wait_available(service_id, params.get("wait_timeout") or 300)
            config = self.get_config(service_id) or config
            result = result_of(config, self.get_principals(service_id),
                               plan["add_principals"], plan["remove_principals"])
        return dict(result, changed=changed, diff={"before": before, "after": after})

    def ensure_absent(self, params):
        name = (params.get("tags") or {}).get("Name")
        config = find_service(self.list_configs(), params.get("network_load_balancer_arns"), name)
        if config is None:
            return dict(result_of(None, []), changed=False, diff={"before": {}, "after": {}})
        service_id = config["ServiceId"]
        principals = self.get_principals(service_id)
        before = diff_view(config, principals)
        if not self.check_mode:
            self.delete(service_id)
        result = result_of(None, [], removed=normalize_principals(principals))
        result.update(service_id=service_id, service_name=config["ServiceName"])
        return dict(result, changed=True, diff={"before": before, "after": {}})
