# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""TOML filters: ``to_toml`` (tomli-w) and ``from_toml`` (tomllib).

Documentation of each filter: plugins/filter/to_toml.yml and plugins/filter/from_toml.yml.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
from collections.abc import Mapping, Sequence

from ansible.errors import AnsibleFilterError

try:
    import tomli_w
except ImportError:  # reported when the filter is used, not when it is loaded
    tomli_w = None

try:
    import tomllib
except ImportError:  # pragma: no cover - Python < 3.11
    try:
        import tomli as tomllib
    except ImportError:
        tomllib = None

_SCALARS = (bool, int, float, str, datetime.date, datetime.datetime, datetime.time)


def _plain(value, path, skip_none):
    """Copy ``value`` into plain Python types TOML can hold, naming the path of any misfit.

    Ansible hands filters its own subclasses (tagged strings, lazy containers); they are
    converted to builtins so the serialiser never depends on them.
    """
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise AnsibleFilterError("to_toml: %s: keys must be strings (got %r)" % (path or "<top>", key))
            where = "%s.%s" % (path, key) if path else str(key)
            if item is None:
                if skip_none:
                    continue
                raise AnsibleFilterError("to_toml: %s: TOML has no null value" % where)
            out[str(key)] = _plain(item, where, skip_none)
        return out
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = []
        for index, item in enumerate(value):
            where = "%s[%d]" % (path, index)
            if item is None:
                raise AnsibleFilterError("to_toml: %s: TOML arrays cannot hold null" % where)
            items.append(_plain(item, where, skip_none))
        return items
    if value is None:
        raise AnsibleFilterError("to_toml: %s: TOML has no null value" % (path or "<top>"))
    raise AnsibleFilterError("to_toml: %s: a %s cannot be written as TOML" % (path or "<top>", type(value).__name__))


def to_toml(data, skip_none=True, multiline_strings=True):
    """Serialise a mapping as a TOML document."""
    if tomli_w is None:
        raise AnsibleFilterError("to_toml needs the Python library tomli-w on the controller (pip install tomli-w)")
    if not isinstance(data, Mapping):
        raise AnsibleFilterError("to_toml: the top level of a TOML document is a table; got %s" % type(data).__name__)
    plain = _plain(data, "", bool(skip_none))
    try:
        return tomli_w.dumps(plain, multiline_strings=bool(multiline_strings))
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError("to_toml: %s" % exc)


def from_toml(text):
    """Parse a TOML document into a dictionary."""
    if tomllib is None:
        raise AnsibleFilterError("from_toml needs Python >= 3.11 (tomllib) or the tomli library")
    if not isinstance(text, str):
        raise AnsibleFilterError("from_toml: expected a string, got %s" % type(text).__name__)
    try:
        return tomllib.loads(text)
    except Exception as exc:  # tomllib.TOMLDecodeError
        raise AnsibleFilterError("from_toml: not valid TOML: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"to_toml": to_toml, "from_toml": from_toml}
