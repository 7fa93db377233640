"""The options of a role entry point, read from the role's meta/argument_specs.yml as the
``role_inputs`` action reads them (tests of the role rules check values against them)."""
import functools
import os

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@functools.lru_cache(maxsize=None)
def _specs(role):
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as handle:
        return yaml.safe_load(handle)["argument_specs"]


def argument_spec(role, entry="main"):
    """``{option: spec}`` of ``role``'s ``entry`` point (a fresh copy: callers may change it)."""
    return yaml.safe_load(yaml.safe_dump(_specs(role)[entry]["options"]))


def for_role(role):
    """``spec(entry="main")`` of one role, for a test module about that role."""
    return functools.partial(argument_spec, role)
