"""Latency mode of the AWS stand-in: what takes time on AWS takes time here too.

moto makes every resource ready the moment it is created, so a deploy against it measures process
start-up, not what an operator waits for, and a missing wait goes unnoticed. In latency mode each
resource below stays in its transitional state for its typical AWS duration times one scale factor,
then reports its ready state, as AWS does:

    SANDBOX_AWS_LATENCY=2   # seconds per AWS minute: an EKS cluster is CREATING for 24 s

Typical durations (AWS minutes, the middle of the range operators report and AWS documents):
an EKS cluster 12 (10-15), a managed node group 4 (3-5), an RDS DB instance 7.5 (5-10), a NAT
gateway 1.5 (1-2), a network load balancer 2.5 (2-3), an interface VPC endpoint 1.5 (1-2); an
update of an EKS cluster's configuration (endpoint access, logging, authentication mode, secrets
encryption) 3 ("should finish within a few minutes", EKS API reference), reported ``InProgress``
by ``DescribeUpdate`` meanwhile (sandbox/aws_standin_eks.py).

Only the ready state is delayed: a status the server sets otherwise (DELETING, a fault of
``aws_standin_eks.nodegroup_fault``) is reported as set. moto itself then refuses what AWS refuses
while a resource is not ready (a node group on a cluster that is not ACTIVE). ``0`` or unset: off.

This module imports nothing from the collection: it stands in for AWS, as a witness.
"""
from __future__ import annotations

import os
import time

ENV = "SANDBOX_AWS_LATENCY"

# kind: (AWS minutes, module, class, attribute, ready value, transitional value)
RESOURCES = {
    "eks_cluster": (12.0, "moto.eks.models", "Cluster", "status", "ACTIVE", "CREATING"),
    "eks_nodegroup": (4.0, "moto.eks.models", "Nodegroup", "status", "ACTIVE", "CREATING"),
    "db_instance": (7.5, "moto.rds.models", "DBInstance", "status", "available", "creating"),
    "nat_gateway": (1.5, "moto.ec2.models.nat_gateways", "NatGateway", "state", "available", "pending"),
    "load_balancer": (2.5, "moto.elbv2.models", "FakeLoadBalancer", "state", "active", "provisioning"),
    "vpc_endpoint": (1.5, "moto.ec2.models.vpcs", "VPCEndPoint", "state", "available", "pending"),
}

# What takes time without a moto status attribute to delay: the stand-in asks delay_of().
OTHER = {"eks_update": 3.0}

_SCALE = {"seconds_per_minute": 0.0}


def scale_from_env(environ=None):
    """Seconds per AWS minute from SANDBOX_AWS_LATENCY (0 when unset); a clear error otherwise."""
    raw = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not raw:
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV} must be a number of seconds per AWS minute (got {raw!r})") from None
    if value < 0 or value > 600:
        raise ValueError(f"{ENV} must be between 0 and 600 seconds per AWS minute (got {raw!r})")
    return value


def delay_of(kind, seconds_per_minute=None):
    """Seconds a new resource of ``kind`` stays in its transitional state."""
    scale = _SCALE["seconds_per_minute"] if seconds_per_minute is None else seconds_per_minute
    return (RESOURCES[kind][0] if kind in RESOURCES else OTHER[kind]) * scale


class _Delayed:
    """Data descriptor for a status attribute: stores what the server sets; reads the transitional
    state instead of the ready one until the resource is old enough."""

    def __init__(self, kind, attribute, ready, transitional):
        self.kind, self.attribute, self.ready, self.transitional = kind, attribute, ready, transitional
        self.slot = "_standin_" + attribute
        self.born = "_standin_%s_born" % attribute

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        # a resource made before install() kept its value in its own __dict__
        value = obj.__dict__.get(self.slot, obj.__dict__.get(self.attribute))
        if value == self.ready and time.monotonic() < obj.__dict__.get(self.born, 0.0) + delay_of(self.kind):
            return self.transitional
        return value

    def __set__(self, obj, value):
        obj.__dict__.setdefault(self.born, time.monotonic())
        obj.__dict__[self.slot] = value


def install(seconds_per_minute):
    """Delay the ready state of every resource of RESOURCES in this process (idempotent; a later
    call changes the scale). Resources created before the call are ready at once."""
    import importlib

    _SCALE["seconds_per_minute"] = float(seconds_per_minute)
    for kind, (_minutes, module, cls_name, attribute, ready, transitional) in RESOURCES.items():
        cls = getattr(importlib.import_module(module), cls_name)
        if isinstance(cls.__dict__.get(attribute), _Delayed):
            continue
        if attribute in cls.__dict__:
            raise RuntimeError(f"{module}.{cls_name}.{attribute} is already a class attribute: "
                               "this moto version is not the one the latency mode was written for")
        setattr(cls, attribute, _Delayed(kind, attribute, ready, transitional))
