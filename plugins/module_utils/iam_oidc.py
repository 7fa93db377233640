# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Pure logic of the iam_oidc_provider module: validation, identity and the change plan.

Nothing here talks to AWS, so every rule is unit tested directly (tests/unit/test_iam_oidc_provider.py).
IAM identifies an OIDC provider by its URL without the scheme: the ARN is
``arn:<partition>:iam::<account>:oidc-provider/<host>/<path>``.
"""
import re

THUMBPRINT_RE = re.compile(r"^[0-9a-fA-F]{40}$")
# IAM limits (CreateOpenIDConnectProvider): up to 5 thumbprints, up to 100 client ids of 1..255 chars.
MAX_THUMBPRINTS = 5
MAX_CLIENT_IDS = 100
URL_RE = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%!$&'()*+,;=:@/-]*)?$")


def normalize_url(url):
    """The provider URL as IAM stores it: no scheme, no trailing slash, host in lower case."""
    value = (url or "").strip()
    for scheme in ("https://", "http://"):
        if value.lower().startswith(scheme):
            value = value[len(scheme):]
            break
    value = value.rstrip("/")
    host, sep, path = value.partition("/")
    return host.lower() + sep + path


def provider_arn(account_id, url, partition="aws"):
    """ARN IAM gives the provider of this URL in this account (known before it exists)."""
    return "arn:%s:iam::%s:oidc-provider/%s" % (partition, account_id, normalize_url(url))


def issuer_from_arn(arn):
    """The ``host/path`` part of an OIDC provider ARN: the prefix of IRSA condition keys."""
    marker = ":oidc-provider/"
    if marker not in (arn or ""):
        raise ValueError("not an IAM OIDC provider ARN: %r" % arn)
    return arn.split(marker, 1)[1]


def validate_params(url, client_ids, thumbprints):
    """Return a list of errors, each naming the option and the rule it breaks."""
    errors = []
    if not url or not URL_RE.match(url.strip()):
        errors.append("url: must be an https:// URL without query or fragment (got %r)" % url)
    if client_ids is not None:
        if len(client_ids) > MAX_CLIENT_IDS:
            errors.append("client_ids: at most %d entries (got %d)" % (MAX_CLIENT_IDS, len(client_ids)))
        for index, cid in enumerate(client_ids):
            if not isinstance(cid, str) or not 1 <= len(cid) <= 255:
                errors.append("client_ids[%d]: must be a string of 1 to 255 characters (got %r)" % (index, cid))
        if len(set(client_ids)) != len(client_ids):
            errors.append("client_ids: entries must be unique")
    if thumbprints is not None:
        if len(thumbprints) > MAX_THUMBPRINTS:
            errors.append("thumbprints: at most %d entries (got %d)" % (MAX_THUMBPRINTS, len(thumbprints)))
        for index, thumb in enumerate(thumbprints):
            if not isinstance(thumb, str) or not THUMBPRINT_RE.match(thumb):
                errors.append("thumbprints[%d]: must be the 40 hex characters of a SHA-1 fingerprint (got %r)"
                              % (index, thumb))
    return errors


def _tags_to_dict(tags):
    if isinstance(tags, dict):
        return dict(tags)
    return dict((t["Key"], t["Value"]) for t in (tags or []))


def plan(current, client_ids, thumbprints, tags, purge_tags=True):
    """What must change so the provider matches the request.

    ``current`` is None (absent) or a dict with ``client_ids``, ``thumbprints`` and ``tags``.
    ``thumbprints`` / ``tags`` None mean "not managed". Returns a dict:
    create, add_client_ids, remove_client_ids, set_thumbprints (list or None), set_tags (dict),
    unset_tags (list) and changed.
    """
    desired_ids = list(client_ids or [])
    result = {
        "create": current is None,
        "add_client_ids": [],
        "remove_client_ids": [],
        "set_thumbprints": None,
        "set_tags": {},
        "unset_tags": [],
    }
    if current is None:
        result["add_client_ids"] = desired_ids
        result["set_thumbprints"] = [t.lower() for t in thumbprints] if thumbprints is not None else None
        result["set_tags"] = dict(tags or {})
        result["changed"] = True
        return result

    have_ids = list(current.get("client_ids") or [])
    result["add_client_ids"] = [c for c in desired_ids if c not in have_ids]
    result["remove_client_ids"] = [c for c in have_ids if c not in desired_ids]

    if thumbprints is not None:
        want = sorted(t.lower() for t in thumbprints)
        have = sorted(t.lower() for t in (current.get("thumbprints") or []))
        if want != have:
            result["set_thumbprints"] = [t.lower() for t in thumbprints]

    if tags is not None:
        have_tags = _tags_to_dict(current.get("tags"))
        result["set_tags"] = dict((k, v) for k, v in tags.items() if have_tags.get(k) != v)
        if purge_tags:
            result["unset_tags"] = sorted(k for k in have_tags if k not in tags)

    result["changed"] = bool(result["add_client_ids"] or result["remove_client_ids"]
                             or result["set_thumbprints"] is not None
                             or result["set_tags"] or result["unset_tags"])
    return result


def apply_plan(current, change):
    """The provider as it will be once ``change`` is applied (used for check mode and --diff)."""
    state = {
        "client_ids": list((current or {}).get("client_ids") or []),
        "thumbprints": list((current or {}).get("thumbprints") or []),
        "tags": _tags_to_dict((current or {}).get("tags")),
    }
    state["client_ids"] = [c for c in state["client_ids"] if c not in change["remove_client_ids"]]
    state["client_ids"] += [c for c in change["add_client_ids"] if c not in state["client_ids"]]
    if change["set_thumbprints"] is not None:
        state["thumbprints"] = list(change["set_thumbprints"])
    for key in change["unset_tags"]:
        state["tags"].pop(key, None)
    state["tags"].update(change["set_tags"])
    return state


def describe(provider):
    """Map an IAM GetOpenIDConnectProvider answer onto the module's vocabulary."""
    return {
        "url": provider.get("Url"),
        "client_ids": list(provider.get("ClientIDList") or []),
        "thumbprints": [t.lower() for t in (provider.get("ThumbprintList") or [])],
        "tags": _tags_to_dict(provider.get("Tags")),
    }
