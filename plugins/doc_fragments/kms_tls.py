# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""TLS options shared by the modules that speak gRPC to KMS nodes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
options:
  tls:
    description:
      - Use TLS towards the endpoints. The client port of a KMS node is plaintext h2c, so this
        is for endpoints fronted by a TLS proxy or load balancer.
    type: bool
    default: false
  ca_cert:
    description: PEM file with the CA certificates to trust (system roots when omitted).
    type: path
  client_cert:
    description: PEM client certificate for mutual TLS (with O(client_key)).
    type: path
  client_key:
    description: PEM private key of O(client_cert).
    type: path
  tls_server_name:
    description: Name expected in the server certificate when it differs from the host.
    type: str
"""
