"""Run an AWS module of a collection in-process (its real main()), as the in-place filter suites
do to check that "in place" means "the module reports no change" on moto."""
import contextlib
import importlib
import io
import json

import pytest
from ansible.module_utils.testing import patch_module_args


def run_aws_module(fqcn, params, check_mode=False, allow_failure=False):
    """The JSON result of module ``fqcn`` (e.g. amazon.aws.ec2_security_group) run with ``params``."""
    namespace, collection, name = fqcn.split(".")
    module = importlib.import_module("ansible_collections.%s.%s.plugins.modules.%s" % (namespace, collection, name))
    out = io.StringIO()
    with patch_module_args(dict(params, _ansible_check_mode=check_mode)), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            module.main()
    result = json.loads(out.getvalue())
    if not allow_failure:
        assert not result.get("failed"), result
    return result


def moto_env(monkeypatch, region="eu-west-1"):
    """Credentials and region for modules that talk to moto's in-process mock (mock_aws), and none
    of the caller's endpoint settings."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(var, "testing")
    monkeypatch.setenv("AWS_REGION", region)
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
