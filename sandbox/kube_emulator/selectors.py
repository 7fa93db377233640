"""Label and field selectors as the API server parses them (``?labelSelector=``, ``?fieldSelector=``)."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9_./-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ_RE = re.compile(r"^\s*([A-Za-z0-9_./-]+)\s*(==|=|!=)\s*([A-Za-z0-9_.-]*)\s*$")


class SelectorError(ValueError):
    """The selector does not parse."""


def _split_requirements(selector: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in (part.strip() for part in parts) if p]


def parse_label_selector(selector: str | None) -> Predicate:
    """Return a predicate over a labels mapping. Empty selector matches everything."""
    checks: list[Predicate] = []
    for requirement in _split_requirements(selector or ""):
        eq = _EQ_RE.match(requirement)
        if eq:
            key, op, value = eq.groups()
            if op == "!=":
                checks.append(lambda labels, k=key, v=value: labels.get(k) != v)
            else:
                checks.append(lambda labels, k=key, v=value: k in labels and labels[k] == v)
            continue
        st = _SET_RE.match(requirement)
        if not st:
            raise SelectorError(f"unable to parse requirement: {requirement!r}")
        negated, key, op, values = st.groups()
        if negated and op:
            raise SelectorError(f"unable to parse requirement: {requirement!r}")
        if op:
            options = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                checks.append(lambda labels, k=key, o=options: labels.get(k) in o)
            else:
                checks.append(lambda labels, k=key, o=options: labels.get(k) not in o)
        elif negated:
            checks.append(lambda labels, k=key: k not in labels)
        else:
            checks.append(lambda labels, k=key: k in labels)
    return lambda labels: all(check(labels) for check in checks)


def _field(obj: Mapping[str, Any], dotted: str) -> Any:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def parse_field_selector(selector: str | None) -> Predicate:
    """Return a predicate over a whole object (``metadata.name=x,status.phase!=Running``)."""
    checks: list[Predicate] = []
    for requirement in _split_requirements(selector or ""):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", requirement)
        if not match:
            raise SelectorError(f"invalid field selector: {requirement!r}")
        path, op, value = match.groups()

        def check(obj: Mapping[str, Any], p: str = path, o: str = op, v: str = value) -> bool:
            actual = _field(obj, p)
            actual = "" if actual is None else str(actual)
            return actual != v if o == "!=" else actual == v

        checks.append(check)
    return lambda obj: all(check(obj) for check in checks)


def match_labels(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Structured LabelSelector (``matchLabels`` / ``matchExpressions``) as in workload specs."""
    if not selector:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), set(expr.get("values") or [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
