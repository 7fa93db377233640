# -*- coding: utf-8 -*-
# Copyright: threshold_kms.mpc_party contributors
# Apache License 2.0 (see LICENSE)
"""Pure logic of the S3 modules that guard the vault buckets.

* ``s3_bucket_replication``: build a replication configuration and compare it with S3's answer.
* ``s3_object_versions_info``: summarise ListObjectVersions pages, i.e. everything a bucket
  deletion would destroy (current objects, noncurrent versions and delete markers).
"""

STORAGE_CLASSES = ("STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER", "GLACIER_IR",
                   "DEEP_ARCHIVE", "REDUCED_REDUNDANCY")


def bucket_arn(name_or_arn, partition="aws"):
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    return "arn:%s:s3:::%s" % (partition, name_or_arn)


def validate_rules(rules):
    errors = []
    ids = set()
    priorities = set()
    for index, rule in enumerate(rules or []):
        where = "rules[%d]" % index
        if not rule.get("destination_bucket"):
            errors.append("%s.destination_bucket: required" % where)
        if rule.get("id") in ids:
            errors.append("%s.id: duplicate rule id %r" % (where, rule.get("id")))
        ids.add(rule.get("id"))
        if rule.get("priority") in priorities:
            errors.append("%s.priority: duplicate priority %s (S3 needs distinct priorities)" % (where, rule.get("priority")))
        priorities.add(rule.get("priority"))
        if rule.get("replica_kms_key_id") and not rule.get("replicate_kms_encrypted", True):
            errors.append("%s.replica_kms_key_id: requires replicate_kms_encrypted" % where)
    return errors


def build_configuration(role_arn, rules):
    """``ReplicationConfiguration`` (V2 rules: Filter + Priority + DeleteMarkerReplication)."""
    out = []
    for rule in rules:
        entry = {
            "ID": rule["id"],
            "Priority": rule.get("priority", 1),
            "Status": "Enabled" if rule.get("enabled", True) else "Disabled",
            "Filter": {"Prefix": rule.get("prefix") or ""},
            "DeleteMarkerReplication": {"Status": "Enabled" if rule.get("delete_marker_replication") else "Disabled"},
            "Destination": {"Bucket": bucket_arn(rule["destination_bucket"])},
        }
        if rule.get("storage_class"):
            entry["Destination"]["StorageClass"] = rule["storage_class"]
        if rule.get("replica_kms_key_id"):
            entry["Destination"]["EncryptionConfiguration"] = {"ReplicaKmsKeyID": rule["replica_kms_key_id"]}
            entry["SourceSelectionCriteria"] = {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
        out.append(entry)
    return {"Role": role_arn, "Rules": out}


def _normalise_rule(rule):
    rule = dict(rule)
    flt = rule.get("Filter")
    if flt is None and "Prefix" in rule:
        flt = {"Prefix": rule.pop("Prefix")}
    rule.pop("Prefix", None)
    if not flt:
        flt = {"Prefix": ""}
    rule["Filter"] = flt
    rule.setdefault("DeleteMarkerReplication", {"Status": "Disabled"})
    dest = dict(rule.get("Destination") or {})
    dest.setdefault("StorageClass", "STANDARD")
    rule["Destination"] = dest
    return rule


def normalise_configuration(config):
    """S3 answers with defaults filled in (Filter {} as Prefix "", storage class STANDARD)."""
    if not config:
        return {}
    rules = sorted((_normalise_rule(r) for r in config.get("Rules") or []), key=lambda r: r.get("ID") or "")
    return {"Role": config.get("Role"), "Rules": rules}


def configuration_matches(desired, current):
    return normalise_configuration(desired) == normalise_configuration(current)


def summarise_versions(pages, max_items=100):
    """Fold ListObjectVersions pages into counts and the first ``max_items`` entries.

    Counts cover the whole listing: ``objects`` are the current, not-deleted keys; ``versions``
    every stored version (current and noncurrent); ``delete_markers`` the markers. ``entries``
    lists versions and markers in the order S3 returns them.
    """
    summary = {"objects": 0, "versions": 0, "delete_markers": 0, "bytes": 0, "key_count": 0, "entries": [],
               "truncated": False}
    keys = set()
    for page in pages:
        for version in page.get("Versions") or []:
            summary["versions"] += 1
            summary["bytes"] += int(version.get("Size") or 0)
            keys.add(version["Key"])
            if version.get("IsLatest"):
                summary["objects"] += 1
            _add_item(summary, max_items, version, False)
        for marker in page.get("DeleteMarkers") or []:
            summary["delete_markers"] += 1
            keys.add(marker["Key"])
            _add_item(summary, max_items, marker, True)
    summary["key_count"] = len(keys)
    summary["empty"] = summary["versions"] == 0 and summary["delete_markers"] == 0
    return summary


def _add_item(summary, max_items, entry, marker):
    if len(summary["entries"]) >= max_items:
        summary["truncated"] = True
        return
    modified = entry.get("LastModified")
    summary["entries"].append({
        "key": entry["Key"],
        "version_id": entry.get("VersionId"),
        "is_latest": bool(entry.get("IsLatest")),
        "delete_marker": marker,
        "size": int(entry.get("Size") or 0) if not marker else 0,
        "last_modified": modified.isoformat() if hasattr(modified, "isoformat") else modified,
    })
