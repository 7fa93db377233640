"""Run emulators on TCP ports from synchronous code (tests, the sandbox process).

The emulators' HTTP servers live in one asyncio loop in a background thread; the status
controllers have their own worker threads. Party ``i`` (1-based) listens on ``base_port + i``,
the same convention as the sandbox (``SANDBOX_KUBE_BASE_PORT``)::

    from sandbox.kube_emulator import run_emulators

    with run_emulators(2, base_port=21000, crds=["monitoring"]) as kube:
        kube.url(1)                      # "http://127.0.0.1:21001"
        kube.write_kubeconfig(1, path)   # for kubernetes.core (no auth)
        kube.emulator(1).get_object("apps/v1/statefulsets", "kms", "kms-node")
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import kmock
import yaml

from .emulator import KubeEmulator
from .workloads import LoadBalancerProvider, PodRunner, WorkloadController

LOG = logging.getLogger(__name__)
RunnerFactory = Callable[[int, KubeEmulator], PodRunner]
LoadBalancerFactory = Callable[[int, KubeEmulator], LoadBalancerProvider]


class LoopThread:
    """An asyncio loop running forever in a daemon thread."""

    def __init__(self, name: str = "kube-emulators") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


def kubeconfig(url: str, name: str, namespace: str = "default") -> dict:
    """A kubeconfig for an emulator: plain HTTP, no credentials."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": {"server": url}}],
        "users": [{"name": f"{name}-user", "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-user", "namespace": namespace}}],
        "current-context": name,
    }


def forget_discovery_cache(url: str) -> None:
    """Remove kubernetes.core's cached discovery for ``url``.

    kubernetes.core caches discovery per API URL in ``$TMPDIR/k8srcp-<sha256>.json``; a new
    emulator on a port that earlier served other CRDs would otherwise be seen with the old list.
    """
    users: set[str | None] = {None, os.environ.get("USERNAME")}
    with contextlib.suppress(OSError):
        users.add(os.getlogin())
    if os.getuid():
        users.add(str(os.getuid()))
    for user in users:
        cache_id = f"{url}-{user}" if user else url
        path = os.path.join(tempfile.gettempdir(), f"k8srcp-{hashlib.sha256(cache_id.encode()).hexdigest()}.json")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


@dataclasses.dataclass
class RunningEmulators:
    """Emulators started by :func:`start_emulators`; party numbers are 1-based."""
    host: str
    ports: list[int]
    emulators: list[KubeEmulator]
    controllers: list[WorkloadController]
    _loop: LoopThread
    _servers: list[Any]

    def emulator(self, party: int) -> KubeEmulator:
        return self.emulators[party - 1]

    def controller(self, party: int) -> WorkloadController | None:
        return self.controllers[party - 1] if self.controllers else None

    def port(self, party: int) -> int:
        return self.ports[party - 1]

    def url(self, party: int) -> str:
        return f"http://{self.host}:{self.port(party)}"

    @property
    def urls(self) -> list[str]:
        return [self.url(i + 1) for i in range(len(self.ports))]

    def write_kubeconfig(self, party: int, path: str | os.PathLike, namespace: str = "default") -> str:
        path = os.fspath(path)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(kubeconfig(self.url(party), f"sandbox-p{party}", namespace), handle, sort_keys=False)
        return path

    def close(self) -> None:
        for controller in self.controllers:
            controller.stop()
        # kmock's servers install DNS interceptors that must be exited last-in-first-out.
        for emulator, server in reversed(list(zip(self.emulators, self._servers))):
            try:
                self._loop.call(_stop(emulator, server), timeout=15)
            except Exception as exc:  # keep closing the others
                LOG.warning("%s: stopping the API server failed: %r", emulator.label, exc)
        self._loop.close()


async def _start(emulator: KubeEmulator, host: str, port: int) -> Any:
    await emulator.__aenter__()
    server = kmock.Server(emulator, host=host, port=port)
    try:
        await server.__aenter__()
    except BaseException:
        await emulator.__aexit__(None, None, None)
        raise
    return server


async def _stop(emulator: KubeEmulator, server: Any) -> None:
    try:
        await server.__aexit__(None, None, None)
    finally:
        await emulator.__aexit__(None, None, None)


def start_emulators(n: int = 1, base_port: int = 6440, *, ports: Sequence[int] | None = None,
                    host: str = "127.0.0.1", crds: Sequence[str] = (), controller: bool = True,
                    statefulset_runner: RunnerFactory | None = None,
                    load_balancers: LoadBalancerFactory | None = None,
                    request_log_dir: str | None = None, daemonset_nodes: int = 1,
                    resync_seconds: float = 1.0) -> RunningEmulators:
    """Start ``n`` emulators (party i on ``base_port + i`` unless ``ports`` is given).

    :param crds: named CRD sets installed at start, e.g. ``["monitoring"]`` (ServiceMonitor,
        PrometheusRule, PodMonitor). Off by default, like a cluster without the Prometheus Operator.
    :param controller: run a :class:`WorkloadController` per emulator (status of workloads).
    :param statefulset_runner: ``factory(party, emulator) -> PodRunner`` deciding StatefulSet
        readiness (default: ready at once).
    :param load_balancers: ``factory(party, emulator) -> LoadBalancerProvider`` for Services of
        type LoadBalancer (default: a hostname only).
    :param request_log_dir: write ``kube-p<i>.requests.log`` there (one line per API request).
    """
    ports = list(ports) if ports is not None else [base_port + i for i in range(1, n + 1)]
    loop = LoopThread()
    emulators: list[KubeEmulator] = []
    servers: list[Any] = []
    controllers: list[WorkloadController] = []
    running = RunningEmulators(host, ports, emulators, controllers, loop, servers)
    try:
        for index, port in enumerate(ports, start=1):
            log = os.path.join(request_log_dir, f"kube-p{index}.requests.log") if request_log_dir else None
            emulator = KubeEmulator(label=f"party{index}", crd_sets=tuple(crds), request_log=log)
            forget_discovery_cache(f"http://{host}:{port}")
            servers.append(loop.call(_start(emulator, host, port)))
            emulators.append(emulator)
            if controller:
                controllers.append(WorkloadController(
                    emulator,
                    statefulset_runner=statefulset_runner(index, emulator) if statefulset_runner else None,
                    load_balancers=load_balancers(index, emulator) if load_balancers else None,
                    daemonset_nodes=daemonset_nodes, resync_seconds=resync_seconds,
                ).start())
    except BaseException:
        running.close()
        raise
    return running


@contextlib.contextmanager
def run_emulators(n: int = 1, base_port: int = 6440, **kwargs: Any) -> Iterator[RunningEmulators]:
    """Context manager around :func:`start_emulators`; stops servers and controllers on exit."""
    running = start_emulators(n, base_port, **kwargs)
    try:
        yield running
    finally:
        running.close()
