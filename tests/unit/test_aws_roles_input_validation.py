"""eks_cluster, nitro_nodegroup and vault_buckets refuse bad input before any cloud call,
naming every broken variable and its rule.

The roles run through ansible-playbook with AWS pointed at a closed port (127.0.0.1:23199):
had any AWS call been made, the failure would be a connection error instead."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PCR0 = "ab" * 48

PLAYBOOK = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      module_defaults:
        group/threshold_kms.mpc_party.aws: {endpoint_url: "http://127.0.0.1:23199", region: eu-west-1}
        group/community.aws.aws: {endpoint_url: "http://127.0.0.1:23199", region: eu-west-1}
      vars:
        mpc_party_id: 1
        mpc_aws_region: eu-west-1
        mpc_cluster_name: kms-test-p1
        mpc_kubeconfig: /tmp/kubeconfig-of-a-test
        mpc_private_bucket: kms-test-p1-private
        mpc_public_bucket: kms-test-p1-public
        mpc_network: {trusted_releases: [{pcr0: "%s"}]}
      tasks:
        - name: Run the role
          block:
            - ansible.builtin.include_role:
                name: "threshold_kms.mpc_party.{{ role }}"
          rescue:
            - ansible.builtin.copy:
                content: "{{ {'task': ansible_failed_task.name, 'msg': ansible_failed_result.msg} | to_json }}"
                dest: "{{ out }}"
                mode: "0600"
    """ % PCR0)


def run_role(tmp_path, role, **bad):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    out = tmp_path / "failure.json"
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    extra = dict(bad, role=role, out=str(out), ansible_python_interpreter=sys.executable)
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", json.dumps(extra), str(playbook)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.exists(), "the role did not fail:\n" + done.stdout + done.stderr
    return json.loads(out.read_text())


def test_eks_cluster(tmp_path):
    failure = run_role(tmp_path, "eks_cluster", eks_cluster_name="bad name", eks_cluster_kubernetes_version="1.3",
                       eks_cluster_az_count=1, eks_cluster_vpc_cidr="10.0.0.0/8")
    assert failure["task"] == "Check the cluster inputs"
    msg = failure["msg"]
    assert "eks_cluster_name: 1-100 letters" in msg
    assert "eks_cluster_kubernetes_version: a minor version such as 1.32 (got 1.3)" in msg
    assert "eks_cluster_az_count: EKS needs two availability zones at least (got 1)" in msg
    assert "eks_cluster_vpc_cidr: an IPv4 CIDR from /16 to /28 (got 10.0.0.0/8)" in msg
    assert "eks_cluster_region" not in msg


def test_nitro_nodegroup(tmp_path):
    failure = run_role(tmp_path, "nitro_nodegroup", nitro_nodegroup_subnet_ids=[], nitro_nodegroup_security_group_ids=["sg-1"],
                       nitro_nodegroup_release_version="1.31.0-20250101", nitro_nodegroup_kms_trusted_pcr0=["abc"],
                       nitro_nodegroup_device_plugin_image="public.ecr.aws/x/plugin:latest",
                       nitro_nodegroup_enclave_memory_mib=1000, nitro_nodegroup_kms_deletion_window_days=3)
    assert failure["task"] == "Check the node group and key inputs"
    msg = failure["msg"]
    for expected in ("nitro_nodegroup_subnet_ids: at least one private subnet",
                     "nitro_nodegroup_release_version: must be an AMI release of Kubernetes 1.32",
                     "nitro_nodegroup_enclave_memory_mib: at least 64 MiB, in whole GiB",
                     "nitro_nodegroup_kms_deletion_window_days: 7 to 30 (got 3)",
                     "nitro_nodegroup_kms_trusted_pcr0: each PCR0 is a SHA-384, 96 hex characters",
                     "nitro_nodegroup_device_plugin_image: 'public.ecr.aws/x/plugin:latest' uses the moving tag latest"):
        assert expected in msg
    assert "nitro_nodegroup_security_group_ids" not in msg


@pytest.mark.parametrize("bad, expected", [
    ({"vault_buckets_public_name": "kms-test-p1-private"}, "vault_buckets_public_name: each vault needs its own bucket"),
    ({"vault_buckets_private_name": "Not_A_Bucket"}, "vault_buckets_private_name: S3 bucket names use only lowercase"),
    ({"vault_buckets_public_prefix": "PRIV-p1"}, "vault_buckets_public_prefix: the three prefixes must differ"),
    ({"vault_buckets_backup_replication_region": "eu-central-1"}, "vault_buckets_backup_replication_region: needs a backup vault"),
])
def test_vault_buckets(tmp_path, bad, expected):
    args = dict(bad, vault_buckets_oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/X")
    failure = run_role(tmp_path, "vault_buckets", **args)
    assert failure["task"] == "Check the vault inputs"
    assert expected in failure["msg"]


def test_vault_buckets_needs_the_oidc_provider(tmp_path):
    failure = run_role(tmp_path, "vault_buckets")
    assert "vault_buckets_oidc_provider_arn: the IAM OIDC provider ARN of the cluster" in failure["msg"]


def test_nitro_nodegroup_hugepages_within_the_enclave_memory(tmp_path):
    failure = run_role(tmp_path, "nitro_nodegroup", nitro_nodegroup_subnet_ids=["subnet-1"],
                       nitro_nodegroup_security_group_ids=["sg-1"], nitro_nodegroup_enclave_memory_mib=8192,
                       nitro_nodegroup_hugepages_1g=9)
    assert failure["task"] == "Check the node group and key inputs"
    assert failure["msg"].splitlines() == [
        "1 input problem, nothing was called:",
        "  nitro_nodegroup: nitro_nodegroup_hugepages_1g: 1 to 8 (nitro_nodegroup_enclave_memory_mib / 1024:"
        " the allocator keeps only the enclave memory as hugepages; got 9)"]


def test_vault_buckets_refuses_sse_kms_with_replication(tmp_path):
    failure = run_role(tmp_path, "vault_buckets", mpc_backup_bucket="kms-test-p1-backup",
                       vault_buckets_backup_replication_region="eu-central-1", vault_buckets_encryption="aws:kms",
                       vault_buckets_oidc_provider_arn="arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/X")
    assert failure["task"] == "Check the vault inputs"
    assert (
        "  vault_buckets: vault_buckets_encryption: aws:kms cannot be combined with vault_buckets_backup_replication_region"
        " (eu-central-1): S3 replicates SSE-KMS objects only with a KMS key in the replica region" in failure["msg"])
    assert "use AES256 for a replicated backup vault or drop the replication" in failure["msg"]


# privatelink, consumer side: the peer endpoints' security groups never admit the world. The
# check only runs when there is a peer to connect to, so party 2 publishes its service (in its
# own region, as the normalised network carries it).
PRIVATELINK = dict(
    privatelink_sides=["consumer"], privatelink_network_name="test", privatelink_party_id=1, privatelink_tls_mode="none",
    privatelink_parties=[
        {"party_id": 1, "aws_account_id": "111111111111", "region": "eu-west-1", "peer_port": 50001},
        {"party_id": 2, "aws_account_id": "222222222222", "region": "eu-west-1", "peer_port": 50002,
         "privatelink_service_name": "com.amazonaws.vpce.eu-west-1.vpce-svc-0123456789abcdef0"}],
    privatelink_namespace="kms", privatelink_public_bucket="kms-test-p1-public", privatelink_public_prefix="PUB-p1",
    privatelink_kube_api_server="http://127.0.0.1:23199",
    privatelink_vpc_id="vpc-0123456789abcdef0", privatelink_private_subnet_ids=["subnet-0123456789abcdef0"])


@pytest.mark.parametrize("network", [
    {"privatelink_allowed_cidrs": ["0.0.0.0/0"]},
    {"privatelink_allowed_cidrs": ["::/0"]},
    {"privatelink_allowed_cidrs": ["10.0.0.0/16", "0.0.0.0/0"], "privatelink_node_security_group_id": "sg-0123456789abcdef0"},
    {},
], ids=["ipv4-world", "ipv6-world", "world-beside-a-group", "neither-group-nor-cidrs"])
def test_privatelink_never_opens_a_peer_endpoint_to_the_world(tmp_path, network):
    failure = run_role(tmp_path, "privatelink", **dict(PRIVATELINK, **network))
    assert failure["task"].startswith("Check this party, its peers")
    msg = failure["msg"]
    cidrs = network.get("privatelink_allowed_cidrs", [])
    if cidrs:
        world = cidrs.index(next(c for c in cidrs if c.endswith("/0")))
        assert "privatelink_allowed_cidrs[%d]: a /0 opens the peer port" % world in msg, msg
    else:
        assert "privatelink_node_security_group_id" in msg and "at least one of them is required (got neither)" in msg, msg


def test_privatelink_admits_a_node_security_group_and_private_cidrs(tmp_path):
    """The same inputs with a group and private CIDRs pass the consumer check: the role goes on
    to AWS (a closed port here) instead of failing validation."""
    failure = run_role(tmp_path, "privatelink", **dict(PRIVATELINK, privatelink_node_security_group_id="sg-0123456789abcdef0",
                                                       privatelink_allowed_cidrs=["10.0.0.0/16", "fd00::/8"]))
    assert not failure["task"].startswith("Check ")
