# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Options of the modules that reach this party's own KMS node through a Kubernetes port-forward."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  pod:
    description:
      - Reach the node through a port-forward to this pod of the party's own cluster
        (C(<statefulset>-0), for example C(kms-core-0)) instead of dialling an address. The
        client port is never exposed outside the cluster; this is how a party's controller
        reaches its own node, and only its own.
      - The module opens a listener on C(127.0.0.1:<ephemeral>) and bridges each connection to
        a new C(pods/portforward) stream through the API server (permission C(create) on
        C(pods/portforward) in O(namespace)).
    type: str
  namespace:
    description: Namespace of O(pod).
    type: str
    default: kms
  port:
    description: Port of O(pod) to reach, the node's client port (C([service] listen_port)).
    type: int
    default: 50100
  kubeconfig:
    description:
      - Kubeconfig of the party's cluster for O(pod). Default the kubernetes client's
        (E(KUBECONFIG) or C(~/.kube/config); in a pod, its service account).
    type: path
  kube_context:
    description: Context of O(kubeconfig) to use (default its current context).
    type: str
  party_id:
    description: This party's id, used to name the node in results and messages (with O(pod)).
    type: int
requirements:
  - kubernetes (the Python client, for O(pod))
"""
