# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""One retry policy for this collection's AWS modules.

amazon.aws's ``AWSRetry.jittered_backoff()`` retries ``Throttling`` and ``RequestLimitExceeded``
(the query APIs: EC2, IAM, STS, ELB) but not the throttling codes of the JSON, REST-JSON and S3
APIs (``ThrottlingException`` from EKS and KMS, ``SlowDown`` from S3, ...). botocore retries
those a few times on its own (3 attempts in its default ``standard`` mode, within seconds), so a
throttling burst longer than that failed our EKS and S3 calls while the same burst on EC2 was
ridden out. ``jittered_backoff()`` adds those codes, so every API is retried alike.

``client()`` also names this collection in the user agent (``threshold_kms.mpc_party/<version>``
instead of ``amazon.aws/<version>``), as community.aws does for its modules: CloudTrail and
request logs then say which collection made a call.

``client()`` finally makes the module's ``fail_json_aws`` say what a known fault means
(access denied, expired credentials, a quota, a timeout: ``aws_errors.explain``), so every
module's failure messages carry it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.amazon.aws.plugins.module_utils.common import set_collection_info
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import aws_errors

COLLECTION_NAME = "threshold_kms.mpc_party"
COLLECTION_VERSION = "0.1.0"  # galaxy.yml `version`

# Throttling error codes of the AWS APIs that AWSRetry's own list lacks (botocore's
# retryhandler lists the same as throttling).
THROTTLING_CODES = (
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "RequestThrottled",
    "SlowDown",
    "EC2ThrottledException",
    "BandwidthLimitExceeded",
    "PriorRequestNotComplete",
)


def jittered_backoff(extra_codes=(), **kwargs):
    """``AWSRetry.jittered_backoff`` that also retries every AWS throttling code."""
    codes = list(THROTTLING_CODES) + [c for c in extra_codes if c not in THROTTLING_CODES]
    return AWSRetry.jittered_backoff(catch_extra_error_codes=codes, **kwargs)


def identify():
    """Name this collection in the user agent of the clients created from now on."""
    set_collection_info(collection_name=COLLECTION_NAME, collection_version=COLLECTION_VERSION)


def explain_failures(module, service):
    """From now on ``module.fail_json_aws(exc, msg)`` puts ``aws_errors.explain(exc)`` (when
    there is something to explain) between the module's message and AWS's own."""
    services = getattr(module, "_mpc_aws_services", None)
    if services is not None:
        if service not in services:
            services.append(service)
        return
    services = module._mpc_aws_services = [service]
    original = module.fail_json_aws

    def fail_json_aws(exception, msg=None, **kwargs):
        hint = aws_errors.explain(exception, services[0] if len(services) == 1 else None)
        if hint:
            msg = "%s: %s. AWS said" % (msg, hint) if msg else "%s. AWS said" % hint
        original(exception, msg=msg, **kwargs)

    module.fail_json_aws = fail_json_aws


def client(module, service, extra_codes=(), backoff=None, **kwargs):
    """``module.client(service)`` whose calls retry with ``aws_retry=True`` (see jittered_backoff).

    ``backoff``: optional ``retries``/``delay``/``max_delay`` of the backoff, to bound how long
    an ``extra_codes`` error (e.g. an eventual-consistency NoSuchEntity) is retried."""
    identify()
    explain_failures(module, service)
    if service == "s3":
        # S3 answers a throttled HEAD with a bare 503 (no body to carry SlowDown): botocore's code is "503".
        extra_codes = list(extra_codes) + ["503"]
    return module.client(service, retry_decorator=jittered_backoff(extra_codes, **(backoff or {})), **kwargs)
