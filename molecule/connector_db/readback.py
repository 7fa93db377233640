#!/usr/bin/env python3
"""Read the connector database's AWS state back from this scenario's moto server, as JSON.

Never reads a secret's value: `secret` returns DescribeSecret (metadata) only.

    readback.py secret ARN        # {} when it does not exist
    readback.py snapshot ID       # {} when it does not exist
    readback.py subnet-group NAME # {} when it does not exist
"""
import json
import os
import sys

import boto3


def client(service):
    return boto3.client(service, endpoint_url="http://127.0.0.1:%s" % os.environ["MOTO_PORT"],
                        region_name=os.environ.get("AWS_REGION", "eu-west-1"),
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def secret(arn):
    sm = client("secretsmanager")
    try:
        out = sm.describe_secret(SecretId=arn)
    except sm.exceptions.ResourceNotFoundException:
        return {}
    out.pop("ResponseMetadata", None)
    return out


def snapshot(ident):
    rds = client("rds")
    try:
        return rds.describe_db_snapshots(DBSnapshotIdentifier=ident)["DBSnapshots"][0]
    except rds.exceptions.DBSnapshotNotFoundFault:
        return {}


def subnet_group(name):
    rds = client("rds")
    try:
        return rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
    except rds.exceptions.DBSubnetGroupNotFoundFault:
        return {}


def main(argv):
    commands = {"secret": secret, "snapshot": snapshot, "subnet-group": subnet_group}
    if len(argv) != 2 or argv[0] not in commands:
        sys.exit(__doc__)
    print(json.dumps(commands[argv[0]](argv[1]), default=str, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1:])
