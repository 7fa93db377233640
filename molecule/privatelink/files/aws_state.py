#!/usr/bin/env python3
"""Print, as JSON, what one party has in the AWS stand-in: its endpoint service(s) with their
allowed principals and supported regions (besides its own), its NLB and listeners, the interface endpoints in its VPC with their
security groups, and its published CA. Read with plain boto3, independently of the role."""
import argparse
import json

import boto3
from botocore.exceptions import ClientError


def tags(items):
    return {t["Key"]: t["Value"] for t in items or []}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint-url", required=True)
    ap.add_argument("--region", required=True)
    ap.add_argument("--party-id", required=True)
    ap.add_argument("--vpc-name", required=True)
    ap.add_argument("--bucket", required=True)
    args = ap.parse_args()
    kw = {"endpoint_url": args.endpoint_url, "region_name": args.region}
    ec2, elb, s3 = boto3.client("ec2", **kw), boto3.client("elbv2", **kw), boto3.client("s3", **kw)

    vpc = ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [args.vpc_name]}])["Vpcs"][0]["VpcId"]
    services = []
    for cfg in ec2.describe_vpc_endpoint_service_configurations()["ServiceConfigurations"]:
        if tags(cfg.get("Tags")).get("threshold_kms/party-id") != args.party_id:
            continue
        perms = ec2.describe_vpc_endpoint_service_permissions(ServiceId=cfg["ServiceId"])["AllowedPrincipals"]
        services.append({
            "service_id": cfg["ServiceId"], "service_name": cfg["ServiceName"], "state": cfg["ServiceState"],
            "acceptance_required": cfg["AcceptanceRequired"], "nlb_arns": cfg["NetworkLoadBalancerArns"],
            "principals": sorted(p["Principal"] for p in perms), "tags": tags(cfg.get("Tags")),
            "supported_regions": sorted({r["Region"] for r in cfg.get("SupportedRegions") or []} - {args.region}),
        })
    nlbs = {}
    for lb in elb.describe_load_balancers()["LoadBalancers"]:
        if lb.get("VpcId") != vpc:
            continue
        listeners = []
        for lst in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]:
            tg_arn = lst["DefaultActions"][0]["TargetGroupArn"]
            tg = elb.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]
            listeners.append({"port": lst["Port"], "protocol": lst["Protocol"], "target_port": tg["Port"],
                              "target_type": tg["TargetType"], "health_check_protocol": tg["HealthCheckProtocol"]})
        nlbs[lb["LoadBalancerArn"]] = {"name": lb["LoadBalancerName"], "type": lb["Type"], "scheme": lb["Scheme"],
                                       "listeners": listeners}
    endpoints = []
    for ep in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]:
        endpoints.append({"id": ep["VpcEndpointId"], "service_name": ep["ServiceName"], "state": ep["State"],
                          "service_region": ep.get("ServiceRegion"),
                          "type": ep["VpcEndpointType"], "dns_name": ep["DnsEntries"][0]["DnsName"] if ep["DnsEntries"] else "",
                          "groups": [g["GroupId"] for g in ep.get("Groups", [])], "subnets": sorted(ep["SubnetIds"]),
                          "tags": tags(ep.get("Tags"))})
    groups = {}
    for sg in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]:
        groups[sg["GroupId"]] = {
            "name": sg["GroupName"], "tags": tags(sg.get("Tags")),
            "ingress": [{"protocol": p["IpProtocol"], "from": p.get("FromPort"), "to": p.get("ToPort"),
                         "groups": [g["GroupId"] for g in p.get("UserIdGroupPairs", [])],
                         "cidrs": [r["CidrIp"] for r in p.get("IpRanges", [])] + [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]}
                        for p in sg["IpPermissions"]],
            "egress": len(sg["IpPermissionsEgress"]),
        }
    try:
        ca = s3.get_object(Bucket=args.bucket, Key="PUB-p%s/TlsIdentity/tls.crt" % args.party_id)["Body"].read().decode()
    except ClientError:
        ca = None
    print(json.dumps({"vpc_id": vpc, "services": services, "nlbs": nlbs, "endpoints": endpoints,
                      "groups": groups, "ca": ca}))


if __name__ == "__main__":
    main()
