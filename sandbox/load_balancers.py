"""What the AWS Load Balancer Controller does for a Service of type LoadBalancer, against moto.

For a Service with the annotation ``service.beta.kubernetes.io/aws-load-balancer-subnets``
(subnet ids or Name tags), :class:`AwsLoadBalancers` creates in the AWS stand-in:

* a network load balancer, ``internal`` unless ``aws-load-balancer-scheme: internet-facing``,
  named ``k8s-<ns>-<name>-<hash>`` and tagged ``service.k8s.aws/stack=<ns>/<name>`` and
  ``service.k8s.aws/resource=LoadBalancer`` (plus ``aws-load-balancer-additional-resource-tags``);
* per Service port: a target group (TCP/UDP, health check TCP on the traffic port, target type
  from ``aws-load-balancer-nlb-target-type``: ``instance`` (the node port) or ``ip`` (the target
  port)), tagged ``service.k8s.aws/resource=<ns>/<name>:<port>``, and a listener forwarding to it;

and returns the load balancer's DNS name for ``status.loadBalancer.ingress[0].hostname``.
Resources are found again by their tags, so re-creating the Service or restarting the sandbox
controller reuses them; ports removed from the Service lose their listener and target group;
deleting the Service (or changing its type) deletes them all.

Without the subnets annotation no load balancer is created (the real controller would
discover subnets by their ``kubernetes.io/role/internal-elb`` tags): only a hostname is set.

The controller itself is emulated too: :func:`controller_deployment` is the Deployment
``kube-system/aws-load-balancer-controller`` an operator's installation would leave (the status
controller marks it available). With the emulation switched off (``SANDBOX_LB_CONTROLLER=absent``,
see kube_process.py) a cluster has neither that Deployment nor load balancers:
:class:`NoLoadBalancers` leaves every Service of type LoadBalancer pending, as a real cluster
without the controller does.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from sandbox.kube_emulator import FakeLoadBalancers

LOG = logging.getLogger(__name__)

A_SUBNETS = "service.beta.kubernetes.io/aws-load-balancer-subnets"
A_SCHEME = "service.beta.kubernetes.io/aws-load-balancer-scheme"
A_TARGET_TYPE = "service.beta.kubernetes.io/aws-load-balancer-nlb-target-type"
A_TAGS = "service.beta.kubernetes.io/aws-load-balancer-additional-resource-tags"
A_HC_INTERVAL = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval"
A_HC_HEALTHY = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold"
A_HC_UNHEALTHY = "service.beta.kubernetes.io/aws-load-balancer-healthcheck-unhealthy-threshold"
T_STACK = "service.k8s.aws/stack"
T_RESOURCE = "service.k8s.aws/resource"
T_CLUSTER = "elbv2.k8s.aws/cluster"


def _clean(text: str, size: int) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", text)[:size]


def resource_name(namespace: str, name: str, *salt: Any) -> str:
    """``k8s-<ns8>-<name8>-<hash10>`` (at most 32 characters, as elbv2 requires)."""
    digest = hashlib.sha256("/".join([namespace, name, *map(str, salt)]).encode()).hexdigest()[:10]
    return f"k8s-{_clean(namespace, 8)}-{_clean(name, 8)}-{digest}"


CONTROLLER_NAMESPACE = "kube-system"
CONTROLLER_NAME = "aws-load-balancer-controller"


def controller_deployment() -> dict:
    """The controller's Deployment as an installation leaves it (what a verification reads)."""
    labels = {"app.kubernetes.io/name": CONTROLLER_NAME, "app.kubernetes.io/instance": CONTROLLER_NAME}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": CONTROLLER_NAME, "namespace": CONTROLLER_NAMESPACE, "labels": labels,
                     "annotations": {"sandbox.kms.local/emulated": "load balancers provisioned in the AWS stand-in"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"serviceAccountName": CONTROLLER_NAME,
                                       "containers": [{"name": CONTROLLER_NAME,
                                                       "image": "public.ecr.aws/eks/aws-load-balancer-controller:v3.5.0"}]}}},
    }


class NoLoadBalancers:
    """No controller in the cluster: Services of type LoadBalancer never get an address."""

    def ensure(self, service: dict) -> str | None:
        meta = service["metadata"]
        LOG.debug("Service %s/%s: no load balancer controller, left pending", meta.get("namespace"), meta["name"])
        return None

    def delete(self, service: dict) -> None:
        pass


class AwsLoadBalancers:
    """:class:`~sandbox.kube_emulator.LoadBalancerProvider` backed by elbv2 (moto)."""

    def __init__(self, endpoint_url: str, region: str, cluster_name: str | None = None,
                 profile: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.cluster_name = cluster_name
        self.profile = profile  # the party's own account (as the controller's IRSA role), else the environment's keys
        self._fallback = FakeLoadBalancers(region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._reported: dict[tuple[str, str], str] = {}

    def _client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.session.Session(profile_name=self.profile).client(
                    service, endpoint_url=self.endpoint_url, region_name=self.region)
            return self._clients[service]

    # -------------------------------------------------------------- provider API
    def ensure(self, service: dict) -> str | None:
        meta = service["metadata"]
        namespace, name = meta.get("namespace", "default"), meta["name"]
        annotations = meta.get("annotations") or {}
        if not annotations.get(A_SUBNETS):
            return self._fallback.ensure(service)
        try:
            hostname = self._ensure(service, namespace, name, annotations)
        except (ClientError, BotoCoreError, ValueError) as exc:
            self._report(namespace, name, f"cannot provision the load balancer: {exc}")
            return None
        self._reported.pop((namespace, name), None)
        return hostname

    def delete(self, service: dict) -> None:
        meta = service["metadata"]
        namespace, name = meta.get("namespace", "default"), meta["name"]
        if not (meta.get("annotations") or {}).get(A_SUBNETS):
            return
        try:
            elb = self._client("elbv2")
            stack = f"{namespace}/{name}"
            for lb in self._tagged(elb, "load_balancers", stack):
                for listener in elb.describe_listeners(LoadBalancerArn=lb)["Listeners"]:
                    elb.delete_listener(ListenerArn=listener["ListenerArn"])
                elb.delete_load_balancer(LoadBalancerArn=lb)
            for tg in self._tagged(elb, "target_groups", stack):
                elb.delete_target_group(TargetGroupArn=tg)
            LOG.info("load balancer of Service %s deleted", stack)
        except (ClientError, BotoCoreError) as exc:
            LOG.warning("cannot delete the load balancer of Service %s/%s: %s", namespace, name, exc)

    # -------------------------------------------------------------- internals
    def _report(self, namespace: str, name: str, message: str) -> None:
        if self._reported.get((namespace, name)) != message:
            LOG.warning("Service %s/%s: %s", namespace, name, message)
            self._reported[(namespace, name)] = message

    def _tags(self, stack: str, resource: str, annotations: dict) -> list[dict]:
        tags = {T_STACK: stack, T_RESOURCE: resource}
        if self.cluster_name:
            tags[T_CLUSTER] = self.cluster_name
        for pair in (annotations.get(A_TAGS) or "").split(","):
            if "=" in pair:
                key, value = pair.split("=", 1)
                tags.setdefault(key.strip(), value.strip())
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def _tagged(self, elb: Any, what: str, stack: str, resource: str | None = None) -> list[str]:
        """ARNs of load balancers / target groups carrying the stack tag (and resource tag)."""
        if what == "load_balancers":
            arns = [lb["LoadBalancerArn"] for page in elb.get_paginator("describe_load_balancers").paginate()
                    for lb in page["LoadBalancers"]]
        else:
            arns = [tg["TargetGroupArn"] for page in elb.get_paginator("describe_target_groups").paginate()
                    for tg in page["TargetGroups"]]
        found = []
        for start in range(0, len(arns), 20):
            for desc in elb.describe_tags(ResourceArns=arns[start:start + 20])["TagDescriptions"]:
                tags = {t["Key"]: t["Value"] for t in desc.get("Tags", [])}
                if tags.get(T_STACK) != stack or (resource is not None and tags.get(T_RESOURCE) != resource):
                    continue
                if self.cluster_name and tags.get(T_CLUSTER) != self.cluster_name:
                    continue  # same Service name in another party's cluster
                found.append(desc["ResourceArn"])
        return found

    def _subnets(self, annotations: dict) -> tuple[list[str], str]:
        ec2 = self._client("ec2")
        wanted = [s.strip() for s in annotations[A_SUBNETS].split(",") if s.strip()]
        ids = [s for s in wanted if s.startswith("subnet-")]
        names = [s for s in wanted if not s.startswith("subnet-")]
        subnets = ec2.describe_subnets(SubnetIds=ids)["Subnets"] if ids else []
        if names:
            by_name = ec2.describe_subnets(Filters=[{"Name": "tag:Name", "Values": names}])["Subnets"]
            found = {t["Value"] for s in by_name for t in s.get("Tags", []) if t["Key"] == "Name"}
            missing = sorted(set(names) - found)
            if missing:
                raise ValueError(f"{A_SUBNETS}: no subnet named {', '.join(missing)}")
            subnets += by_name
        vpcs = {s["VpcId"] for s in subnets}
        if len(vpcs) != 1:
            raise ValueError(f"{A_SUBNETS}: the subnets must be in one VPC, found {sorted(vpcs) or 'none'}")
        return [s["SubnetId"] for s in subnets], vpcs.pop()

    def _ensure(self, service: dict, namespace: str, name: str, annotations: dict) -> str:
        elb = self._client("elbv2")
        stack = f"{namespace}/{name}"
        subnet_ids, vpc_id = self._subnets(annotations)
        scheme = annotations.get(A_SCHEME, "internal")
        target_type = annotations.get(A_TARGET_TYPE, "instance")
        existing = self._tagged(elb, "load_balancers", stack, "LoadBalancer")
        if existing:
            lb = elb.describe_load_balancers(LoadBalancerArns=existing[:1])["LoadBalancers"][0]
        else:
            lb = elb.create_load_balancer(
                Name=resource_name(namespace, name), Subnets=subnet_ids, Scheme=scheme, Type="network",
                Tags=self._tags(stack, "LoadBalancer", annotations))["LoadBalancers"][0]
            LOG.info("Service %s: created network load balancer %s", stack, lb["DNSName"])
        lb_arn = lb["LoadBalancerArn"]

        listeners = {l["Port"]: l for l in elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]}
        wanted_ports = set()
        for port in (service.get("spec") or {}).get("ports") or []:
            protocol = port.get("protocol", "TCP")
            number = int(port["port"])
            wanted_ports.add(number)
            backend = port.get("nodePort") if target_type == "instance" else port.get("targetPort", number)
            if not isinstance(backend, int):
                backend = number  # a named targetPort: the real controller resolves it from the pods
            resource = f"{stack}:{number}"
            tgs = self._tagged(elb, "target_groups", stack, resource)
            if tgs:
                tg_arn = tgs[0]
            else:
                tg_arn = elb.create_target_group(
                    Name=resource_name(namespace, name, number, protocol, target_type), Protocol=protocol,
                    Port=int(backend), VpcId=vpc_id, TargetType=target_type,
                    HealthCheckProtocol="TCP", HealthCheckPort="traffic-port",
                    HealthCheckIntervalSeconds=int(annotations.get(A_HC_INTERVAL, 10)),
                    HealthyThresholdCount=int(annotations.get(A_HC_HEALTHY, 3)),
                    UnhealthyThresholdCount=int(annotations.get(A_HC_UNHEALTHY, 3)),
                    Tags=self._tags(stack, resource, annotations))["TargetGroups"][0]["TargetGroupArn"]
            listener = listeners.get(number)
            if listener is None:
                elb.create_listener(LoadBalancerArn=lb_arn, Protocol=protocol, Port=number,
                                    DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
            elif [a.get("TargetGroupArn") for a in listener.get("DefaultActions", [])] != [tg_arn]:
                elb.modify_listener(ListenerArn=listener["ListenerArn"],
                                    DefaultActions=[{"Type": "forward", "TargetGroupArn": tg_arn}])
        for number, listener in listeners.items():
            if number not in wanted_ports:
                elb.delete_listener(ListenerArn=listener["ListenerArn"])
        for tg_arn in self._tagged(elb, "target_groups", stack):
            tags = {t["Key"]: t["Value"] for d in elb.describe_tags(ResourceArns=[tg_arn])["TagDescriptions"]
                    for t in d.get("Tags", [])}
            port = tags.get(T_RESOURCE, "").rpartition(":")[2]
            if port.isdigit() and int(port) not in wanted_ports:
                elb.delete_target_group(TargetGroupArn=tg_arn)
        return lb["DNSName"]
