"""The AWS stand-in: moto in server mode, extended where it falls short for this project.

    python -m sandbox.aws_standin -H 127.0.0.1 -p 4566 -c server.pem -k server-key.pem

moto 5.2 evaluates bucket policies without their Condition blocks (moto/iam/access_control.py:
"TODO add support for the Resource and Condition parts"), so the vault buckets' TLS-only
statement - Deny s3:* when aws:SecureTransport is false - denies every object request, even
over HTTPS. When this server speaks HTTPS (`tools/sandbox` passes a certificate unless
SANDBOX_AWS_SCHEME=http), every request it receives is secure and that condition is false for all of them: the
extension evaluates exactly that one condition and leaves every other statement to moto.

moto 5.2 also gives every EKS cluster of the process the same OIDC issuer (one random id drawn
at import), whereas EKS gives each cluster its own. Parties sharing one stand-in account would
then share one IAM OIDC provider and fight over it; the extension gives each cluster the
issuer id EKS would (32 upper-case hex), derived from the cluster ARN so it is stable.

moto 5.2.5 KmsBackend.schedule_key_deletion, cancel_key_deletion, enable_key and disable_key
index the key table with the KeyId exactly as sent, so a key ARN (what AWS accepts, and what
amazon.aws.kms_key sends: state=absent schedules the deletion by ARN, a later state=present
cancels it and enables the key by ARN) raises KeyError -> HTTP 500. The extension normalises
the id first, as moto's other KMS calls do (any_id_to_key_id).

moto 5.2.5 reports neither Iops nor StorageThroughput for a gp3 DB instance created without
them, whereas RDS reports the gp3 baseline (3000 IOPS, 125 MiB/s below 400 GiB);
amazon.aws.rds_instance reads both for gp3 and fails with KeyError. The extension fills in
the baseline when the instance is created.

moto 5.2.5 keeps VPC endpoint services per account and region and shows a caller only those of
its own account and region: DescribeVpcEndpointServices ignores ServiceRegions and the allowed
principals, and CreateVpcEndpoint has no ServiceRegion and accepts any service name. The
extension gives both calls AWS's cross-account, cross-region PrivateLink view: a service is
visible to an account that owns it or that its allowed principals name (that account's root,
a user or role of it, or "*"); from another region only when ServiceRegions (describe) or
ServiceRegion (create) names the service's region and the service lists the caller's region
among its SupportedRegions. CreateVpcEndpoint to a vpce-svc service name the caller cannot
see that way fails with InvalidServiceName, as on AWS; the endpoint keeps and returns its
ServiceRegion.

Latency mode (SANDBOX_AWS_LATENCY, seconds per AWS minute): resources that take time on AWS stay
in their transitional state for a while, sandbox/aws_latency.py.

EKS cluster access (access entries, authentication mode), endpoint access, logging, secrets
encryption and add-ons, which moto 5.2.5 lacks or answers unlike EKS: sandbox/aws_standin_eks.py.

Nothing in boto3 or in the clients is patched; the changes live in the server process.
"""
import hashlib
import json
import re
import sys

from moto.iam.access_control import IAMPolicy, PermissionResult
from moto.s3.models import FakeBucket

from sandbox import aws_latency, aws_request_log
from sandbox.aws_standin_eks import extend_eks

INSECURE_ONLY = {"Bool": {"aws:SecureTransport": "false"}}


def _applies_to_secure_requests(statement):
    condition = statement.get("Condition")
    if not condition:
        return True
    # Normalise "false"/False; only the exact TLS-only condition is evaluated here.
    normalised = {op: {k: str(v).lower() for k, v in body.items()} for op, body in condition.items()}
    return normalised != INSECURE_ONLY


def get_permission(self, action, resource):
    if self.policy is None:
        return PermissionResult.NEUTRAL
    policy = json.loads(self.policy.decode())
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    policy["Statement"] = [s for s in statements if _applies_to_secure_requests(s)]
    if not policy["Statement"]:
        return PermissionResult.NEUTRAL
    return IAMPolicy(json.dumps(policy)).is_action_permitted(action, resource)


def _unique_issuer(init):
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        issuer_id = hashlib.sha256(self.arn.encode()).hexdigest()[:32].upper()
        region = self.arn.split(":")[3]
        self.identity = {"oidc": {"issuer": "https://oidc.eks.%s.amazonaws.com/id/%s" % (region, issuer_id)}}
    return __init__


def _kms_key_by_any_id(backend):
    """KmsBackend calls that take a KeyId accept an ARN or alias too, as AWS does."""
    for name in ("schedule_key_deletion", "cancel_key_deletion", "enable_key", "disable_key"):
        original = getattr(backend, name)

        def by_any_id(self, key_id, *args, _original=original, **kwargs):
            return _original(self, self.any_id_to_key_id(key_id), *args, **kwargs)

        setattr(backend, name, by_any_id)


GP3_BASELINE_IOPS = 3000
GP3_BASELINE_THROUGHPUT = 125


def _gp3_baseline(init):
    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        if getattr(self, "storage_type", None) == "gp3":
            if self.iops is None:
                self.iops = GP3_BASELINE_IOPS
            if self.storage_throughput is None:
                self.storage_throughput = GP3_BASELINE_THROUGHPUT
    return __init__


# ------------------------------------------------------ cross-region PrivateLink --
ENDPOINT_SERVICE_NAME = re.compile(r"^com\.amazonaws\.vpce\.([a-z0-9-]+)\.(vpce-svc-[0-9a-f]+)$")


def _allows_account(config, account_id):
    """The service's owner, or an account its allowed principals name (root, user, role, "*")."""
    if config.ec2_backend.account_id == account_id:
        return True
    for principal in config.principals:
        if principal == "*" or principal.split(":")[4:5] == [account_id]:
            return True
    return False


def visible_services(account_id, caller_region, service_region):
    """Endpoint service configurations in ``service_region`` that a caller of ``account_id`` in
    ``caller_region`` may see and connect to."""
    from moto.ec2.models import ec2_backends

    found = []
    for regional in list(ec2_backends.values()):
        if service_region not in regional.keys():
            continue  # never create a backend just to look into it
        backend = dict.__getitem__(regional, service_region)
        for config in list(backend.configurations.values()):
            if not _allows_account(config, account_id):
                continue
            if service_region != caller_region and caller_region not in config._supported_region_names:
                continue
            found.append(config)
    return found


def _service_detail(config, service_region):
    detail = config.to_dict()
    detail["ServiceRegion"] = service_region
    return detail


def describe_vpc_endpoint_services(self):
    """DescribeVpcEndpointServices with ServiceRegions and other accounts' services."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidServiceName

    names = self._get_param("ServiceNames", [])
    filters = self._get_param("Filters", [])
    regions = self._get_param("ServiceRegions", []) or [self.region]
    account_id = self.ec2_backend.account_id
    services = []
    if self.region in regions:
        services += self.ec2_backend._collect_default_endpoint_services(account_id, self.region)
    for region in regions:
        services += [_service_detail(c, region) for c in visible_services(account_id, self.region, region)]
    known = {s["ServiceName"] for s in services}
    for name in names:
        if name not in known:
            raise InvalidServiceName(name)
    chosen = sorted(self.ec2_backend._filter_endpoint_services(names, filters, services),
                    key=lambda s: s["ServiceName"])
    return ActionResult({"ServiceNames": [s["ServiceName"] for s in chosen], "ServiceDetails": chosen})


def _create_vpc_endpoint(original):
    def create_vpc_endpoint(self):
        from moto.ec2.exceptions import InvalidServiceName

        service_name = self._get_param("ServiceName") or ""
        service_region = self._get_param("ServiceRegion") or self.region
        match = ENDPOINT_SERVICE_NAME.match(service_name)
        if match:
            names = {c.service_name for c in visible_services(self.ec2_backend.account_id, self.region, service_region)}
            if service_name not in names:
                raise InvalidServiceName(service_name)
        result = original(self)
        result.result["VpcEndpoint"].service_region = service_region
        return result
    return create_vpc_endpoint


def _extend_privatelink():
    from moto.ec2.models.vpcs import VPCEndPoint
    from moto.ec2.responses.vpcs import VPCs

    VPCEndPoint.service_region = None  # endpoints made before the extension was applied
    VPCs.create_vpc_endpoint = _create_vpc_endpoint(VPCs.create_vpc_endpoint)
    VPCs.describe_vpc_endpoint_services = describe_vpc_endpoint_services


def extend(secure):
    """Apply every extension to moto in this process (the server's: call before serving).

    ``secure``: the server speaks HTTPS, so every request it receives is secure.
    """
    if secure:
        FakeBucket.get_permission = get_permission
    from moto.eks.models import Cluster
    from moto.kms.models import KmsBackend
    from moto.rds.models import DBInstance
    if getattr(Cluster, "_standin_extended", False):
        return
    Cluster.__init__ = _unique_issuer(Cluster.__init__)
    _kms_key_by_any_id(KmsBackend)
    DBInstance.__init__ = _gp3_baseline(DBInstance.__init__)
    _extend_privatelink()
    extend_eks()  # cluster access, endpoint access, logging, encryption, add-ons
    Cluster._standin_extended = True


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    extend(secure="-c" in argv or "--ssl-cert" in argv)
    try:
        latency = aws_latency.scale_from_env()
    except ValueError as exc:
        sys.exit(f"aws stand-in: {exc}")
    if latency:
        aws_latency.install(latency)
    aws_request_log.install_from_env()
    from moto.server import main as moto_main
    moto_main(argv)


if __name__ == "__main__":
    main()
