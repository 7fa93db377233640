"""A pytest plugin for tests/unit/test_xdist_groups.py: after collection, print each test's node id
and the xdist groups it carries as one JSON document (use with --collect-only -q)."""
import json

import pytest


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    groups = {}
    for item in items:
        groups[item.nodeid] = sorted(str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                                     for mark in item.iter_markers("xdist_group"))
    print("XDIST-GROUPS " + json.dumps(groups))
