# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""What an AWS failure means for the operator, in one line: the one error formatter of this
collection's AWS modules.

``explain(exc)`` reads a botocore exception and says, for the faults operators meet most:

* access denied (``AccessDenied``, ``AccessDeniedException``, ``UnauthorizedOperation``, ...):
  the IAM action (``service:Operation``) and, when AWS names it, the resource, and where the
  policy the collection needs is documented (meta/iam/deploy-policy-party.json);
* expired or invalid credentials (``ExpiredToken``, ``ExpiredTokenException``,
  ``RequestExpired``, ...): refresh them and re-run; such calls are never retried;
* a service quota reached (``VpcLimitExceeded``, ``AddressLimitExceeded``,
  ``TooManyLoadBalancers``, EKS ``ResourceLimitExceeded``, ...): the quota's name and where to
  raise it;
* no answer in time (botocore's read/connect timeouts): the endpoint and the variables that
  set the limits (``mpc_aws_read_timeout``, ``mpc_aws_connect_timeout``).

It returns None for any other error: the module's own message and AWS's are then left as they
are. ``aws_retry.client()`` makes every module's ``fail_json_aws`` append it, so each module's
failures carry it without each module calling it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

IAM_POLICY_DOC = "meta/iam/deploy-policy-party.json"

ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
                 "Client.UnauthorizedOperation", "UnauthorizedAccess", "AuthorizationError",
                 "NotAuthorized")
EXPIRED = ("ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired",
           "InvalidClientTokenId", "UnrecognizedClientException", "InvalidToken")

# error code -> the quota's name in Service Quotas (where to raise it).
QUOTAS = {
    "VpcLimitExceeded": "Amazon VPC: VPCs per Region",
    "AddressLimitExceeded": "Amazon EC2: EC2-VPC Elastic IPs",
    "NatGatewayLimitExceeded": "Amazon VPC: NAT gateways per Availability Zone",
    "InternetGatewayLimitExceeded": "Amazon VPC: Internet gateways per Region",
    "SubnetLimitExceeded": "Amazon VPC: Subnets per VPC",
    "RouteTableLimitExceeded": "Amazon VPC: Route tables per VPC",
    "SecurityGroupLimitExceeded": "Amazon VPC: VPC security groups per Region",
    "RulesPerSecurityGroupLimitExceeded": "Amazon VPC: Inbound or outbound rules per security group",
    "VpcEndpointLimitExceeded": "Amazon VPC: Interface VPC endpoints per VPC",
    "TooManyLoadBalancers": "Elastic Load Balancing: Network Load Balancers per Region",
    "TooManyTargetGroups": "Elastic Load Balancing: Target Groups per Region",
    "TooManyListeners": "Elastic Load Balancing: Listeners per Network Load Balancer",
    "ResourceLimitExceeded": "Amazon EKS: clusters, managed node groups or nodes per Region/cluster",
    "ResourceLimitExceededException": "Amazon EKS: clusters, managed node groups or nodes per Region/cluster",
    "LimitExceeded": "AWS IAM: roles, policies or OIDC providers per account",
    "LimitExceededException": "the service's quota named in AWS's message",
    "TooManyBuckets": "Amazon S3: general purpose buckets",
    "VcpuLimitExceeded": "Amazon EC2: Running On-Demand instances (vCPUs)",
    "InstanceLimitExceeded": "Amazon EC2: Running On-Demand instances (vCPUs)",
    "DBInstanceQuotaExceeded": "Amazon RDS: DB instances",
}

# "... not authorized to perform: ec2:CreateVpc on resource: arn:aws:ec2:...:vpc/* because ..."
_DENIED_RE = re.compile(r"perform:\s*(?P<action>[\w-]+:[\w*]+)(?:\s+on resource:\s*(?P<resource>\S+?))?(?:\s|$|\.\s|,)")

_SERVICE_PREFIX = {"elasticloadbalancing": "elasticloadbalancing", "elasticloadbalancingv2": "elasticloadbalancing",
                   "elbv2": "elasticloadbalancing", "elb": "elasticloadbalancing"}


def _code_and_operation(exc):
    response = getattr(exc, "response", None) or {}
    code = (response.get("Error") or {}).get("Code") or ""
    operation = getattr(exc, "operation_name", "") or ""
    return code, operation


def iam_action(service, operation):
    """``ec2:CreateVpc`` from the client's service name and the operation."""
    if not service or not operation:
        return operation or ""
    return "%s:%s" % (_SERVICE_PREFIX.get(service, service), operation)


def explain(exc, service=None):
    """One line for the operator, or None when the error is none of the known faults.

    ``service``: the client's service name (``ec2``, ``eks``, ...), to name the IAM action when
    AWS's message does not.
    """
    if type(exc).__name__ in ("ReadTimeoutError", "ConnectTimeoutError"):
        endpoint = (getattr(exc, "kwargs", None) or {}).get("endpoint_url", "")
        return ("no answer from AWS%s within the client timeout: raise mpc_aws_read_timeout / "
                "mpc_aws_connect_timeout (seconds) if the endpoint is slow, or check the network path to it; "
                "nothing after this call was attempted, re-run when it answers"
                % ((" (" + endpoint + ")") if endpoint else ""))
    code, operation = _code_and_operation(exc)
    if not code:
        return None
    message = ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Message") or ""
    if code in ACCESS_DENIED or code.endswith(".UnauthorizedOperation"):
        match = _DENIED_RE.search(message)
        action = match.group("action") if match else iam_action(service, operation)
        resource = (match.group("resource") if match else None) or "the resource of this call"
        return ("access denied: the credentials may not call %s on %s; grant that action (every action the "
                "deploy calls is listed in %s) and re-run" % (action, resource.rstrip(".,"), IAM_POLICY_DOC))
    if code in EXPIRED:
        return ("the AWS credentials are expired or not valid (%s on %s): refresh them (aws sso login, a new "
                "session token or role session) and re-run; the call was not retried" % (code, operation or "the call"))
    if code in QUOTAS:
        return ("a service quota is reached (%s on %s): quota \"%s\"; free some of those resources or ask for a "
                "higher quota (Service Quotas console), then re-run" % (code, operation or "the call", QUOTAS[code]))
    return None
