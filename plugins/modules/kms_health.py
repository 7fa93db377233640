#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: kms_health
short_description: Health of threshold KMS nodes, checked concurrently, with a verdict
version_added: 0.1.0
description:
  - A party checks its B(own) node (O(pod), through a Kubernetes port-forward). The node's
    C(GetHealthStatus) lists every peer it reaches over the peer port (reachable, latency,
    error), which is the party's view of the whole network. The client port of another
    party is never reachable, and never needed. O(endpoints) dials addresses instead (a test
    network, or a node reached from inside its own VPC).
  - Calls C(kms_service.v1.CoreServiceEndpoint/GetHealthStatus) on every endpoint at the same
    time (one thread per endpoint), so N endpoints of which k never answer take about one
    O(timeout), not k.
  - For each node returns reachability, status, node type, every MPC context the node reports
    (n, nodes reachable counting itself, threshold required, and per peer reachable / latency /
    error), key material counts (FHE keys, CRS, preprocessing), latency and a readable error.
  - The status of a context is recomputed with the server's rule (Optimal if all n are
    reachable; Healthy if at least floor(2n/3)+1; Degraded if more than floor(n/3)+1;
    Unhealthy otherwise) and the worse of that and the node's own value is kept.
  - Older servers without C(GetHealthStatus) are checked through
    C(GetKeyMaterialAvailability) and then C(grpc.health.v1); such a node cannot report its
    peers, so its status is at most Healthy and a warning says so.
  - An unreachable endpoint, one that is not a KMS node, or one where TLS does not match is
    Unhealthy, with the cause (connection refused, no HTTP/2 answer, TLS required, ...).
  - C(overall) is the worst node, including what the nodes report about their peers (unlike
    the upstream C(kms-health-check), whose overall status ignores lost peers and which exits
    0 for an unhealthy node). The task fails when a node is below O(fail_below), listing the
    failing nodes and why.
  - Read-only; runs the same in check mode.
author:
  - threshold_kms.mpc_party maintainers
options:
  endpoints:
    description:
      - Client gRPC endpoints (port 50100 on a real node) of the nodes to check.
      - Each item is C(host:port), C(http://host:port), or a dict with C(address)
        (C(host:port)) or C(host) and C(port), and optional C(party_id) and C(name).
      - Give C(party_id) so failures name the party and peer reports can be matched to nodes.
      - Exactly one of O(endpoints) and O(pod).
    type: list
    elements: raw
  timeout:
    description:
      - Seconds allowed per endpoint, fallbacks included. All endpoints are checked in parallel.
    type: float
    default: 5.0
  fail_below:
    description:
      - Fail when a node (or, with O(scope=network), the network) is below this status.
      - C(none) only reports.
    type: str
    choices: [Optimal, Healthy, Degraded, none]
    default: Healthy
  scope:
    description:
      - C(nodes) compares every node's status with O(fail_below); a node that is down is
        Unhealthy, so any down node fails the task unless O(fail_below=none).
      - C(network) compares the status of the network as a whole (the worst status reported
        by the reachable nodes, and the controller's own count of reachable nodes under the
        server's rule); use it to accept, for example, one of 13 parties down for maintenance.
    type: str
    choices: [nodes, network]
    default: nodes
  max_workers:
    description: Most endpoints checked at the same time.
    type: int
    default: 32
extends_documentation_fragment:
  - threshold_kms.mpc_party.kms_tls
  - threshold_kms.mpc_party.kms_port_forward
notes:
  - Member of the C(threshold_kms.mpc_party.kms) action group, so C(module_defaults) for
    C(group/threshold_kms.mpc_party.kms) can set O(timeout) and the TLS options once for
    M(threshold_kms.mpc_party.kms_health) and M(threshold_kms.mpc_party.prss_epoch).
requirements:
  - grpcio
  - protobuf
seealso:
  - module: threshold_kms.mpc_party.prss_epoch
  - module: threshold_kms.mpc_party.prss_validate
"""

EXAMPLES = r"""
- name: This party's own node, and through it every peer, at least Healthy
  threshold_kms.mpc_party.kms_health:
    kubeconfig: ~/.kube/kms-party1.yaml
    namespace: kms
    pod: kms-core-0
    port: 50100
    party_id: 1
    fail_below: Healthy

- name: Every party healthy (all reachable, each sees at least 2n/3 + 1)
  threshold_kms.mpc_party.kms_health:
    endpoints:
      - {party_id: 1, address: "kms-p1.internal:50100"}
      - {party_id: 2, address: "kms-p2.internal:50100"}
      - {party_id: 3, address: "kms-p3.internal:50100"}
      - {party_id: 4, address: "kms-p4.internal:50100"}
    timeout: 3

- name: Report only, never fail; look at the result
  threshold_kms.mpc_party.kms_health:
    endpoints: ["127.0.0.1:50101", "127.0.0.1:50102"]
    fail_below: none
  register: health

- name: Accept a network that is Healthy as a whole (e.g. one party down for maintenance)
  threshold_kms.mpc_party.kms_health:
    endpoints: "{{ kms_endpoints }}"
    scope: network
    fail_below: Healthy

- name: Through a TLS-terminating proxy
  threshold_kms.mpc_party.kms_health:
    endpoints: ["kms-gw.example.com:443"]
    tls: true
    ca_cert: /etc/pki/kms-gw-ca.pem
"""

RETURN = r"""
overall:
  description: Worst status of all nodes (Optimal, Healthy, Degraded, Unhealthy).
  returned: always
  type: str
  sample: Healthy
network:
  description:
    - The network as a whole. C(n) from the nodes' contexts; C(reachable_from_controller) KMS
      nodes that answered; C(controller_status) the server's rule applied to that count (only
      when the endpoints cover all n parties); C(status) the worst of that and of the reachable
      nodes' statuses.
  returned: always
  type: dict
  sample: {n: 4, endpoints: 4, reachable_from_controller: 4, controller_status: Optimal, status: Optimal}
counts:
  description: Number of nodes per status.
  returned: always
  type: dict
  sample: {Optimal: 3, Healthy: 0, Degraded: 0, Unhealthy: 1}
failing:
  description: Nodes below O(fail_below) when the task fails, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{party_id: 4, endpoint: "127.0.0.1:50104", status: Unhealthy,
            reason: "connection refused by 127.0.0.1:50104 (nothing listens on that port)"}]
nodes:
  description: One entry per endpoint, in input order.
  returned: always
  type: list
  elements: dict
  contains:
    party_id: {description: Party id given with the endpoint (or O(party_id)), or null., type: int}
    endpoint: {description: host:port checked (with O(pod) the local end of the port-forward)., type: str}
    via: {description: With O(pod) - the pod, port and API server of the port-forward., type: str}
    reachable: {description: A gRPC server answered., type: bool}
    kms: {description: It is a KMS node (one of the KMS RPCs or health services answered)., type: bool}
    source:
      description: What answered - GetHealthStatus, GetKeyMaterialAvailability or grpc.health.v1.
      type: str
    status: {description: Optimal, Healthy, Degraded or Unhealthy., type: str}
    node_type: {description: Threshold, Centralized or Unspecified (GetHealthStatus only)., type: str}
    serving: {description: grpc.health.v1 status of the KMS service when it was asked., type: str}
    latency_ms: {description: Time to the first answer., type: int}
    contexts:
      description: Per MPC context - context_id, my_party_id, n, nodes_reachable (the node's count),
        reachable_by_peers (itself plus the peers its list shows reachable; the status is judged from
        the lower of the two), threshold_required, status, server_status, reachable_peers,
        unreachable_peers and peers (peer_id, endpoint, reachable, latency_ms, error).
      type: list
    fhe_key_count: {description: FHE keys the node holds., type: int}
    crs_count: {description: CRS the node holds., type: int}
    preprocessing_count: {description: Preprocessing material sets., type: int}
    fhe_key_ids: {description: The FHE key ids., type: list}
    crs_ids: {description: The CRS ids., type: list}
    preprocessing_ids: {description: The preprocessing ids., type: list}
    storage_info: {description: Storage description reported by the node., type: str}
    error: {description: Readable cause when the node is not healthy., type: str}
    error_kind:
      description: refused, dns, timeout, no_http2, tls_required, tls_not_spoken, tls_verify,
        not_kms, unavailable, port_forward, other - or null.
      type: str
    warnings: {description: Limits of what could be checked (older servers)., type: list}
    reported_unreachable_by: {description: Party ids whose node reports this party unreachable., type: list}
elapsed:
  description: Wall time of the whole check in seconds.
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kube_portforward as K


def check_own_node(params, tls):
    """The node behind the port-forward; a forward that cannot be opened is an Unhealthy node."""
    label = "%s/%s:%d" % (params["namespace"], params["pod"], params["port"])
    try:
        forward = K.open_forward(params)
    except K.PortForwardError as exc:
        ep = {"party_id": params["party_id"], "name": label, "address": label}
        node = G.unreachable_result(ep, "port_forward", str(exc))
        node["via"] = label
        return node
    try:
        ep = K.endpoint(forward, params["party_id"])
        node = G.check_endpoint(ep, params["timeout"], tls)
        node["via"] = ep["via"]
        # Name the pod, not the local end of the forward, in what the operator reads.
        node["endpoint"] = label
        node["error"] = (node["error"] or "").replace(ep["address"], label)
        if not node["kms"] and not forward.explain():
            time.sleep(0.2)  # the stream's error channel may arrive just after the gRPC failure
        if not node["kms"] and forward.explain():
            # the API server's words (e.g. nothing listens on the pod's port) say more than gRPC's
            node["error_kind"], node["error"] = "port_forward", forward.explain()
        return G.annotate_peer_views([node])[0]
    finally:
        forward.close()


def main():
    argument_spec = dict(
        endpoints=dict(type="list", elements="raw"),
        fail_below=dict(type="str", default="Healthy", choices=G.FAIL_BELOW_CHOICES),
        scope=dict(type="str", default="nodes", choices=["nodes", "network"]),
        max_workers=dict(type="int", default=32),
    )
    argument_spec.update(G.CONNECTION_ARGUMENT_SPEC)
    argument_spec.update(K.PORT_FORWARD_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("endpoints", "pod")], required_one_of=[("endpoints", "pod")])
    if not G.HAS_GRPC:
        module.fail_json(msg=missing_required_lib("grpcio"), exception=str(G.GRPC_IMPORT_ERROR))
    if not P.HAS_PROTOBUF:
        module.fail_json(msg=missing_required_lib("protobuf"), exception=str(P.PROTOBUF_IMPORT_ERROR))
    params = module.params
    try:
        if params["timeout"] <= 0:
            raise G.KmsInputError("timeout: must be > 0 seconds, got %s" % params["timeout"])
        if params["max_workers"] < 1:
            raise G.KmsInputError("max_workers: must be >= 1, got %s" % params["max_workers"])
        if params["pod"]:
            problem = K.check_params(params)
            if problem:
                raise G.KmsInputError(problem)
        else:
            endpoints = G.normalize_endpoints(params["endpoints"])
        tls = G.TlsSettings.from_params(params)
    except G.KmsInputError as exc:
        module.fail_json(msg=str(exc))

    started = time.monotonic()
    if params["pod"]:
        nodes = [check_own_node(params, tls)]
    else:
        nodes = G.check_endpoints(endpoints, params["timeout"], tls, params["max_workers"])
    summary = G.summarize(nodes, params["fail_below"], params["scope"])
    result = dict(changed=False, nodes=nodes, overall=summary["overall"], network=summary["network"],
                  counts=summary["counts"], failing=summary["failing"],
                  elapsed=round(time.monotonic() - started, 3))
    if summary["failed"]:
        module.fail_json(msg=G.failure_message(summary, params["fail_below"], params["scope"]), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
