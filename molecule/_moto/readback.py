#!/usr/bin/env python3
"""Read AWS state back from the moto server of a Molecule scenario, as JSON, for verify.yml.

Used where amazon.aws / community.aws have no *_info module (EKS clusters and node groups,
IAM OIDC providers) or where the check needs raw API answers. Endpoint: MOTO_PORT.

    readback.py eks-cluster NAME
    readback.py nodegroup CLUSTER NAME
    readback.py oidc-providers
    readback.py inventory            # what exists at all (check-mode "nothing created" assertions)
"""
import json
import os
import sys

import boto3


def client(service):
    return boto3.client(service, endpoint_url="http://127.0.0.1:%s" % os.environ["MOTO_PORT"],
                        region_name=os.environ.get("AWS_REGION", "eu-west-1"),
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def eks_cluster(name):
    try:
        return client("eks").describe_cluster(name=name)["cluster"]
    except client("eks").exceptions.ResourceNotFoundException:
        return {}


def nodegroup(cluster, name):
    eks = client("eks")
    try:
        return eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
    except eks.exceptions.ResourceNotFoundException:
        return {}


def oidc_providers():
    iam = client("iam")
    out = []
    for entry in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=entry["Arn"])
        provider.pop("ResponseMetadata", None)
        provider["Arn"] = entry["Arn"]
        out.append(provider)
    return out


def inventory():
    """Everything a role could have created, beyond what moto starts with."""
    ec2, iam, s3, kms, eks = (client(s) for s in ("ec2", "iam", "s3", "kms", "eks"))
    return {
        "vpcs": [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"],
        "launch_templates": [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]],
        "eks_clusters": eks.list_clusters()["clusters"],
        "iam_roles": [r["RoleName"] for r in iam.list_roles()["Roles"] if not r["Path"].startswith("/aws-service-role/")],
        "oidc_providers": [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]],
        "buckets": [b["Name"] for b in s3.list_buckets().get("Buckets", [])],
        "kms_keys": [k["KeyId"] for k in kms.list_keys()["Keys"]],
        "kms_aliases": [a["AliasName"] for a in kms.list_aliases()["Aliases"] if not a["AliasName"].startswith("alias/aws/")],
    }


def main(argv):
    commands = {"eks-cluster": eks_cluster, "nodegroup": nodegroup, "oidc-providers": oidc_providers, "inventory": inventory}
    if not argv or argv[0] not in commands:
        sys.exit(__doc__)
    print(json.dumps(commands[argv[0]](*argv[1:]), default=str, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
