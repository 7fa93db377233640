"""The privatelink role in check mode before eks_cluster made the VPC: the task files wire the
filters together, say which sides they could not evaluate, and make no AWS or Kubernetes call
(AWS and the API server are a closed port here: any call would fail the run)."""
import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLOSED = "http://127.0.0.1:15001"  # nothing listens here (this suite's range 15000-15499)

PLAYBOOK = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      module_defaults:
        group/threshold_kms.mpc_party.aws: {endpoint_url: "%s", region: eu-west-1}
      tasks:
        - name: Run the role
          ansible.builtin.include_role:
            name: threshold_kms.mpc_party.privatelink
        - name: Hand back what it published
          ansible.builtin.copy:
            content: "{{ {'facts': privatelink_facts, 'warning': __privatelink_address_warning.msg} | to_json }}"
            dest: "{{ out }}"
            mode: "0600"
          check_mode: false
    """ % CLOSED)

PARTIES = [
    {"party_id": 1, "aws_account_id": "100000000001", "region": "eu-west-1", "peer_port": 50001},
    {"party_id": 2, "aws_account_id": "100000000002", "region": "us-east-1", "peer_port": 50002,
     "privatelink_service_name": "com.amazonaws.vpce.us-east-1.vpce-svc-0123456789abcdef0", "address": "10.0.0.2"},
]


def test_check_mode_before_the_vpc_exists_says_what_it_skips_and_calls_nothing(tmp_path):
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    out = tmp_path / "out.json"
    extra = dict(privatelink_sides=["provider", "consumer"], privatelink_network_name="net", privatelink_party_id=1,
                 privatelink_parties=PARTIES, privatelink_tls_mode="none", privatelink_namespace="kms",
                 privatelink_public_bucket="kms-net-p1-public", privatelink_public_prefix="PUB-p1",
                 privatelink_kube_api_server=CLOSED, privatelink_vpc_id="vpc-known-after-apply",
                 out=str(out), ansible_python_interpreter=sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "--check", "-i",
                           "localhost,", "-c", "local", "-e", json.dumps(extra), str(playbook)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["warning"].startswith("Check mode: the VPC does not exist yet (privatelink_vpc_id is "
                                        "'vpc-known-after-apply'), so the provider and consumer side(s)")
    assert 'party 2 is "10.0.0.2"' in result["warning"]
    facts = result["facts"]
    assert facts["service_name"] == "" and facts["peer_endpoints"] == {} and facts["removed_peers"] == []
    assert facts["allowed_account_ids"] == ["100000000002"] and facts["supported_regions"] == ["us-east-1"]
    assert "no endpoint service yet (check mode" in done.stdout


# ------------------------------------------------------------------ teardown on moto --

# moto_url (tests/unit/conftest.py) listens on this + the xdist worker number (this suite's range).
MOTO_PORT_BASE = 15010

TEARDOWN = textwrap.dedent("""\
    - hosts: localhost
      gather_facts: false
      module_defaults:
        group/threshold_kms.mpc_party.aws: {endpoint_url: "{{ moto }}", region: eu-west-1}
      tasks:
        - name: Tear down party 1's PrivateLink
          ansible.builtin.include_role:
            name: threshold_kms.mpc_party.privatelink
            tasks_from: teardown
    """)


def tags(peer, network="net", party="1"):
    return [{"Key": "threshold_kms/party-id", "Value": party}, {"Key": "threshold_kms/network", "Value": network},
            {"Key": "threshold_kms/component", "Value": "peer-endpoint"},
            {"Key": "threshold_kms/peer-party-id", "Value": str(peer)}]


def test_teardown_removes_exactly_this_partys_endpoints_and_groups(tmp_path, moto_url):
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=moto_url, region_name="eu-west-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    groups = {}
    for name, group_tags in (("kms-net-p1-to-p2", tags(2)), ("kms-net-p1-to-p3", tags(3)),
                             ("kms-other-p1-to-p2", tags(2, network="other")), ("kms-net-p2-to-p1", tags(1, party="2"))):
        groups[name] = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc, TagSpecifications=[
            {"ResourceType": "security-group", "Tags": group_tags}])["GroupId"]
    mine = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName="com.amazonaws.eu-west-1.s3", VpcEndpointType="Interface",
        SubnetIds=[subnet], SecurityGroupIds=[groups["kms-net-p1-to-p2"]],
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": tags(2)}])["VpcEndpoint"]["VpcEndpointId"]
    other = ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName="com.amazonaws.eu-west-1.sts", VpcEndpointType="Interface",
        SubnetIds=[subnet], SecurityGroupIds=[groups["kms-net-p2-to-p1"]],
        TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": tags(1, party="2")}])["VpcEndpoint"]["VpcEndpointId"]

    playbook = tmp_path / "teardown.yml"
    playbook.write_text(TEARDOWN)
    extra = dict(moto=moto_url, privatelink_network_name="net", privatelink_party_id=1, privatelink_parties=PARTIES,
                 privatelink_tls_mode="none", privatelink_namespace="kms", privatelink_public_bucket="b",
                 privatelink_public_prefix="PUB-p1", privatelink_kubeconfig="", privatelink_kube_api_server="",
                 ansible_python_interpreter=sys.executable)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_NOCOLOR="1",
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    done = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", "-e", json.dumps(extra), str(playbook)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    live = {e["VpcEndpointId"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]
            if e["State"].lower() not in ("deleting", "deleted")}
    assert mine not in live and other in live
    left = {g["GroupName"] for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["SecurityGroups"]}
    assert left == {"default", "kms-other-p1-to-p2", "kms-net-p2-to-p1"}
    # the cluster is gone (no kubeconfig, no API server): no Kubernetes call was tried
    assert "Find this party's party<N>-external Services" in done.stdout
    assert "skipping: [localhost]" in done.stdout.split("Find this party's party<N>-external Services", 1)[1].split("TASK", 1)[0]
