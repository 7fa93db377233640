"""A four-party network definition the privatelink tests share (its filters and its input rules)."""


def svc(region, n):
    return "com.amazonaws.vpce.%s.vpce-svc-%017x" % (region, n)


def network(**changes):
    """Four parties; 2 and 3 publish a service, 2 in another region; 4 has no service name yet."""
    parties = [
        {"party_id": 1, "aws_account_id": "100000000001", "region": "eu-west-1", "peer_port": 50001,
         "client_port": 50101, "mpc_identity": "p1.kms", "public_vault_url": "https://p1.example/pub"},
        {"party_id": 2, "aws_account_id": "100000000002", "region": "us-east-1", "peer_port": 50002,
         "privatelink_service_name": svc("us-east-1", 2), "mpc_identity": "p2.kms",
         "public_vault_url": "https://p2.example/pub", "prefixes": {"public": "PUB-p2"}},
        {"party_id": 3, "aws_account_id": "100000000003", "region": "eu-west-1", "peer_port": 50003,
         "privatelink_service_name": svc("eu-west-1", 3), "mpc_identity": "p3.kms",
         "ca_certificate": {"source": "pem", "pem": "PEM3"}},
        {"party_id": 4, "aws_account_id": "100000000004", "region": "eu-central-1", "peer_port": 50004,
         "mpc_identity": "p4.kms", "ca_certificate": {"source": "path", "path": "ca/p4.pem"}},
    ]
    for pid, fields in changes.items():
        party = next(p for p in parties if p["party_id"] == int(pid[1:]))
        party.update(fields)
    return parties
