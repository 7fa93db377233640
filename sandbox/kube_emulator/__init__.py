"""Kubernetes API emulator for tests and the sandbox (kmock 0.8, extended).

Public API::

    from sandbox.kube_emulator import run_emulators, KubeEmulator, WorkloadController

    with run_emulators(n=2, base_port=21000, crds=["monitoring"]) as kube:
        kube.url(1)                       # http://127.0.0.1:21001 (party i on base_port + i)
        kube.write_kubeconfig(1, "/tmp/p1.yaml")
        kube.emulator(1).list_objects("apps/v1/statefulsets", "kms")

``python -m sandbox.kube_emulator --parties 2 --base-port 21000`` serves in the foreground.
See docs/sandbox.md for what differs from a real API server.
"""
from .crds import CRD_SETS, crd_definition, crd_set
from .emulator import Event, KubeEmulator, api_error
from .runner import RunningEmulators, forget_discovery_cache, kubeconfig, run_emulators, start_emulators
from .workloads import (FakeLoadBalancers, ImmediateRunner, LoadBalancerProvider, PodRunner, PodState,
                        WorkloadController, template_revision)

__all__ = [
    "CRD_SETS", "Event", "FakeLoadBalancers", "ImmediateRunner", "KubeEmulator", "LoadBalancerProvider",
    "PodRunner", "PodState", "RunningEmulators", "WorkloadController", "api_error", "crd_definition",
    "crd_set", "forget_discovery_cache", "kubeconfig", "run_emulators", "start_emulators",
    "template_revision",
]
