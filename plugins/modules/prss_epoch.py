#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: prss_epoch
short_description: Start a PRSS epoch on KMS nodes and wait for its result
version_added: 0.1.0
description:
  - A party initialises its B(own) node (O(pod), through a Kubernetes port-forward); every
    other party does the same on its own node at about the same time, and the nodes run the
    protocol among themselves over the peer port. No party dials another party's client
    port. O(endpoints) instead dials addresses (a test network whose nodes one controller
    reaches).
  - Does what C(kms-init) does, idempotently. First asks every node for the epoch's result
    (C(GetEpochResult)); then sends C(NewMpcEpoch) to every party that does not know the epoch
    yet, all at the same time over connections opened beforehand; C(ALREADY_EXISTS) (the first
    request still runs) counts as started (the upstream tool panics on it). Then, if O(wait), polls C(GetEpochResult) every
    O(poll_interval) seconds until every party answers OK, one reports a failure, or
    O(wait_timeout) passes (or O(deadline), whichever comes first).
  - A party that refuses C(NewMpcEpoch) (any status but C(ALREADY_EXISTS), and
    C(INVALID_ARGUMENT) "already exists") fails the task at once, naming the party and the gRPC
    status, also with O(wait=false) - the epoch cannot complete without it.
  - C(INVALID_ARGUMENT) "already exists" means the node finished the epoch or restarted since
    (RV(exists)); a node that was sent the epoch and then answers C(GetEpochResult) C(NOT_FOUND)
    has restarted and forgotten it (results live in memory; RV(parties) state C(forgotten)).
    Neither says the epoch is done; the run ends with RV(wait_state=vault) and the party's
    private vault (C(EpochData/<epoch_id>), M(threshold_kms.mpc_party.prss_validate)) decides.
  - Only the gRPC status of C(GetEpochResult) counts (OK is done, UNAVAILABLE running,
    NOT_FOUND unknown, INTERNAL/ABORTED failed); the response body is not decoded.
  - While any party is unreachable nothing is sent (a partial start only leaves the others
    waiting), unless O(require_all_reachable=false).
  - With O(start=false) the module only reports the epoch state of every party (read-only);
    with O(wait=true) and a short O(wait_timeout) it waits one window and returns a
    RV(progress) line; the prss_init role loops over such windows up to an overall
    O(deadline) and shows one progress line per window.
  - In check mode no C(NewMpcEpoch) is sent; the result says which parties would be started
    and C(changed) is true if any would.
author:
  - threshold_kms.mpc_party maintainers
options:
  endpoints:
    description:
      - Client gRPC endpoints to dial, as for M(threshold_kms.mpc_party.kms_health)
        (C(host:port), C(http://host:port) or dicts with C(party_id) and C(address)).
      - Exactly one of O(endpoints) and O(pod).
    type: list
    elements: raw
  expect_started:
    description:
      - C(NewMpcEpoch) was already sent to these nodes (by an earlier task, for example the start
        before a loop of waits). A C(NOT_FOUND) from C(GetEpochResult) then means the node
        restarted and forgot the epoch (party state C(forgotten), RV(wait_state=vault)), and
        nothing is sent.
    type: bool
    default: false
  context_id:
    description: MPC context id, 64 lower-case hex characters.
    type: str
    default: "0700000000000000000000000000000000000000000000000000000000000001"
  epoch_id:
    description: Epoch id, 64 lower-case hex characters.
    type: str
    default: "0800000000000000000000000000000000000000000000000000000000000001"
  signing_schemes:
    description: Signing schemes of the epoch.
    type: list
    elements: str
    choices: [ECDSA256K1]
    default: [ECDSA256K1]
  start:
    description: Send C(NewMpcEpoch) to the parties that do not know the epoch yet.
    type: bool
    default: true
  wait:
    description: Wait until every party reports the epoch done.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the result (upstream runs C(kms-init) under C(timeout 1200)).
    type: float
    default: 1200
  poll_interval:
    description: Seconds between two rounds of C(GetEpochResult).
    type: float
    default: 1.0
  deadline:
    description:
      - Absolute end of the wait, as a Unix time in seconds (for example
        C({{ now().timestamp() + 1200 }}) taken once before a loop of calls). The wait stops
        there even if O(wait_timeout) is longer, and every gRPC call is cut to the time left,
        so a node that accepts connections but never answers cannot stretch the wait by
        O(timeout) per poll.
      - When it is reached first, RV(wait_state) is C(deadline).
    type: float
  require_all_reachable:
    description: Send nothing while any party is unreachable.
    type: bool
    default: true
  timeout:
    description: Seconds allowed for each gRPC call (less near O(deadline) or the end of O(wait_timeout)).
    type: float
    default: 5.0
extends_documentation_fragment:
  - threshold_kms.mpc_party.kms_tls
  - threshold_kms.mpc_party.kms_port_forward
notes:
  - Member of the C(threshold_kms.mpc_party.kms) action group (shared O(timeout) / TLS defaults).
requirements:
  - grpcio
  - protobuf
seealso:
  - module: threshold_kms.mpc_party.prss_validate
  - module: threshold_kms.mpc_party.kms_health
"""

EXAMPLES = r"""
- name: Start the epoch on this party's own node (the other parties do the same on theirs)
  threshold_kms.mpc_party.prss_epoch:
    kubeconfig: ~/.kube/kms-party1.yaml
    namespace: kms
    pod: kms-core-0
    party_id: 1
    wait: false

- name: Initialise PRSS on the four nodes of a test network and wait up to 20 minutes
  threshold_kms.mpc_party.prss_epoch:
    endpoints:
      - {party_id: 1, address: "kms-p1.internal:50100"}
      - {party_id: 2, address: "kms-p2.internal:50100"}
      - {party_id: 3, address: "kms-p3.internal:50100"}
      - {party_id: 4, address: "kms-p4.internal:50100"}
    wait_timeout: 1200

- name: Start without waiting, then poll with progress lines
  threshold_kms.mpc_party.prss_epoch:
    endpoints: "{{ kms_endpoints }}"
    wait: false
- name: Fix the end of the wait once
  ansible.builtin.set_fact:
    epoch_deadline: "{{ now().timestamp() + 1200 }}"
- name: Wait for the epoch, one progress line every 30 s, 20 minutes at most
  threshold_kms.mpc_party.prss_epoch:
    endpoints: "{{ kms_endpoints }}"
    start: false
    wait_timeout: 30
    deadline: "{{ epoch_deadline }}"
  register: epoch
  failed_when: false
  loop: "{{ range(41) | list }}"
  loop_control:
    label: "{{ epoch.progress | default(epoch.msg) }}"
    break_when: epoch.wait_state | default('failed') != 'running'
"""

RETURN = r"""
done:
  description: Every party answered C(GetEpochResult) with OK.
  returned: always
  type: bool
done_count:
  description: Parties for which the epoch is done.
  returned: always
  type: int
started:
  description: Parties that accepted C(NewMpcEpoch) in this run.
  returned: always
  type: list
  elements: str
  sample: ["party 1 (127.0.0.1:50101)"]
already_exists:
  description: Parties that answered C(ALREADY_EXISTS) (the first request still runs).
  returned: always
  type: list
  elements: str
exists:
  description:
    - Parties that answered C(INVALID_ARGUMENT) "already exists" (finished or restarted since;
      the vault decides).
  returned: always
  type: list
  elements: str
would_start:
  description: Parties that did not know the epoch before this run.
  returned: always
  type: list
  elements: str
parties:
  description:
    - Per party - C(before) and final C(state) (done, running, not_found, exists, forgotten,
      failed, unreachable, error, start_failed), C(start) (started, already_exists, exists,
      skipped, error) and C(error).
  returned: always
  type: list
  elements: dict
wait_state:
  description:
    - How the run ended - C(done) (every party done), C(vault) (no party is running, but some
      no longer know the epoch - restarted, see RV(parties) - so only the private vault can say
      whether it is done), C(failed) (a party reported the epoch
      failed, refused C(NewMpcEpoch), or nothing was started), C(running) (the
      O(wait_timeout) window ended first; wait again), C(deadline) (O(deadline) passed),
      C(not_waited) (O(wait=false) or check mode).
  returned: always
  type: str
progress:
  description: One line - how many parties are done and what each of the others is doing.
  returned: always
  type: str
  sample: "epoch 0800...0001: 3 of 4 parties done; waiting for party 4 (127.0.0.1:50104): running - ..."
waiting:
  description: Parties whose epoch is not done.
  returned: always
  type: list
  elements: str
polls:
  description: Rounds of C(GetEpochResult) made.
  returned: always
  type: int
elapsed:
  description: Seconds the module ran.
  returned: always
  type: float
context_id:
  description: The context id used.
  returned: always
  type: str
epoch_id:
  description: The epoch id used.
  returned: always
  type: str
check_mode:
  description:
    - The module ran in check mode (nothing was sent). Lets roles tell check mode apart even
      when it was set with the C(check_mode) keyword, which C(ansible_check_mode) does not reflect.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_grpc as G
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto as P
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kube_portforward as K
from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import prss


def _name_the_pod(result, local, label, explain):
    """Show the pod, not the local end of the port-forward, in what the operator reads."""
    def fix(text):
        return text.replace(local, label) if isinstance(text, str) else text
    for key in ("progress", "error"):
        result[key] = fix(result.get(key))
    for key in ("started", "already_exists", "exists", "would_start", "waiting"):
        result[key] = [fix(item) for item in result.get(key, [])]
    for party in result.get("parties", []):
        party["endpoint"], party["error"] = fix(party["endpoint"]), fix(party["error"])
    if explain and result.get("error") and not result.get("done"):
        result["error"] = "%s (port-forward: %s)" % (result["error"], explain)


def main():
    argument_spec = dict(
        endpoints=dict(type="list", elements="raw"),
        expect_started=dict(type="bool", default=False),
        context_id=dict(type="str", default=P.DEFAULT_CONTEXT_ID),
        epoch_id=dict(type="str", default=P.DEFAULT_EPOCH_ID),
        signing_schemes=dict(type="list", elements="str", choices=sorted(P.SIGNING_SCHEMES),
                             default=["ECDSA256K1"]),
        start=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=1200.0),
        poll_interval=dict(type="float", default=1.0),
        require_all_reachable=dict(type="bool", default=True),
        deadline=dict(type="float"),
    )
    argument_spec.update(G.CONNECTION_ARGUMENT_SPEC)
    argument_spec.update(K.PORT_FORWARD_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("endpoints", "pod")], required_one_of=[("endpoints", "pod")])
    if not G.HAS_GRPC:
        module.fail_json(msg=missing_required_lib("grpcio"), exception=str(G.GRPC_IMPORT_ERROR))
    if not P.HAS_PROTOBUF:
        module.fail_json(msg=missing_required_lib("protobuf"), exception=str(P.PROTOBUF_IMPORT_ERROR))
    p = module.params
    try:
        for field in ("timeout", "poll_interval", "wait_timeout"):
            if p[field] <= 0:
                raise G.KmsInputError("%s: must be > 0 seconds, got %s" % (field, p[field]))
        if p["deadline"] is not None and p["deadline"] <= 0:
            raise G.KmsInputError("deadline: must be a Unix time in seconds (> 0), got %s" % p["deadline"])
        if not p["signing_schemes"]:
            raise G.KmsInputError("signing_schemes: must not be empty")
        prss.check_ids(context_id=p["context_id"], epoch_id=p["epoch_id"])
        if p["pod"]:
            problem = K.check_params(p)
            if problem:
                raise G.KmsInputError(problem)
        else:
            endpoints = G.normalize_endpoints(p["endpoints"])
        tls = G.TlsSettings.from_params(p)
    except G.KmsInputError as exc:
        module.fail_json(msg=str(exc))

    forward = None
    if p["pod"]:
        try:
            forward = K.open_forward(p)
        except K.PortForwardError as exc:
            module.fail_json(msg="cannot reach this party's node: %s" % exc, check_mode=module.check_mode)
        endpoints = [K.endpoint(forward, p["party_id"])]
    try:
        result = prss.run_epoch(
            endpoints, p["context_id"], p["epoch_id"], signing_schemes=p["signing_schemes"],
            start=p["start"], wait=p["wait"], wait_timeout=p["wait_timeout"], poll_interval=p["poll_interval"],
            timeout=p["timeout"], tls=tls, check_mode=module.check_mode,
            require_all_reachable=p["require_all_reachable"], deadline=p["deadline"],
            expect_started=p["expect_started"])
    finally:
        if forward is not None:
            forward.close()
    if forward is not None:
        _name_the_pod(result, endpoints[0]["address"], "%s/%s:%d" % (p["namespace"], p["pod"], p["port"]),
                      forward.explain())
    result["check_mode"] = module.check_mode
    error = result.pop("error")
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
