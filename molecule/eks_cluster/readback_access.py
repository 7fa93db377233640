#!/usr/bin/env python3
"""Read a cluster's access entries (with their policies) and its vpc-cni add-on back from the
scenario's moto server, as JSON, for verify.yml (no amazon.aws/community.aws module reads them).

    readback_access.py CLUSTER
"""
import json
import os
import sys

import boto3


def main(cluster):
    eks = boto3.client("eks", endpoint_url="http://127.0.0.1:%s" % os.environ["MOTO_PORT"],
                       region_name=os.environ.get("AWS_REGION", "eu-west-1"),
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    entries = {}
    for principal in eks.list_access_entries(clusterName=cluster)["accessEntries"]:
        policies = eks.list_associated_access_policies(clusterName=cluster, principalArn=principal)
        entries[principal] = {p["policyArn"]: p["accessScope"] for p in policies["associatedAccessPolicies"]}
    try:
        addon = eks.describe_addon(clusterName=cluster, addonName="vpc-cni")["addon"]
    except eks.exceptions.ResourceNotFoundException:
        addon = {}
    print(json.dumps({"access_entries": entries,
                      "vpc_cni_configuration": json.loads(addon.get("configurationValues") or "{}"),
                      "vpc_cni_status": addon.get("status")}))


if __name__ == "__main__":
    main(sys.argv[1])
