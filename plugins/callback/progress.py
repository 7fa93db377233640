# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
name: progress
type: notification
short_description: Print where a long wait is, each time it reports
version_added: 0.1.0
description:
  - The collection's long waits (an EKS cluster, a node group, a NAT gateway, a database) are tasks
    that retry C(threshold_kms.mpc_party.resource_ready) about once a minute. Ansible prints a
    C(FAILED - RETRYING) line for each attempt; this callback adds, under it, the line the module
    reports (state, how long ago AWS created the resource, what AWS typically takes), and the
    final state when the wait ends.
  - Enable it with C(callbacks_enabled = threshold_kms.mpc_party.progress) in C(ansible.cfg) (the
    repository's does), or C(ANSIBLE_CALLBACKS_ENABLED) in an AWX job template's environment.
requirements:
  - enabled in the configuration (see above)
"""

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "threshold_kms.mpc_party.progress"
    CALLBACK_NEEDS_ENABLED = True

    def _show(self, result):
        progress = (result._result or {}).get("progress")
        if isinstance(progress, str) and progress:
            self._display.display("  [%s] %s" % (result._host.get_name(), progress))

    def v2_runner_retry(self, result):
        self._show(result)

    def v2_runner_on_ok(self, result):
        if result._task.action.endswith("resource_ready"):
            self._show(result)
