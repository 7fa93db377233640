"""``tools/sandbox publish``: the network coordinators of the sandbox.

On a real network each party sends the endpoint service name its first deploy created to the
network coordinators, who add it to the shared network definition
(``mpc_network.parties[].privatelink_service_name``); every party's next run connects to it.
In the sandbox one controller runs every party, and this command plays the coordinators: it asks
each party's own AWS account (the party's profile, in its region) which endpoint service the party
offers for this network (the service tagged ``threshold_kms/network`` and ``threshold_kms/party-id``)
and writes the network definition with those names to ``$SANDBOX_DIR/network-overrides.yml``. The
inventory is never edited; the runs after it load the file with ``-e @<file>`` (``make sandbox``
does). A name already in the inventory is kept when the party offers none.

The AWS stand-in forgets everything when it restarts: ``tools/sandbox up`` removes the file then.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

OVERLAY = "network-overrides.yml"
HEADER = ("---\n# Written by `tools/sandbox publish` (sandbox/coordinator.py), the sandbox's network coordinators:\n"
          "# the inventory's network definition with the endpoint service names the parties offer.\n"
          "# Load it with -e @<this file>; do not edit it by hand.\n")


def overlay_path(sandbox_dir: Path) -> Path:
    return Path(sandbox_dir) / OVERLAY


def offered_service(ec2, network: str, party_id: int) -> str:
    """The service name of the endpoint service tagged for (network, party) in the client's account
    and region; "" when there is none. Several are an error: the coordinators would not know which."""
    names = []
    paginator = ec2.get_paginator("describe_vpc_endpoint_service_configurations")
    for page in paginator.paginate():
        for config in page.get("ServiceConfigurations", []):
            tags = {t.get("Key"): t.get("Value") for t in config.get("Tags") or []}
            state = str(config.get("ServiceState", "")).lower()
            if (tags.get("threshold_kms/network") == network and tags.get("threshold_kms/party-id") == str(party_id)
                    and state not in ("deleting", "deleted", "failed")):
                names.append(config["ServiceName"])
    if len(names) > 1:
        raise ValueError("party %d offers %d endpoint services for network %s: %s"
                         % (party_id, len(names), network, ", ".join(sorted(names))))
    return names[0] if names else ""


def with_names(network: dict, names: dict) -> dict:
    """``network`` with ``privatelink_service_name`` set from ``names`` ({party id: name}); a party
    without an offered name keeps the one the definition gives. The input is not changed."""
    parties = []
    for party in network.get("parties") or []:
        offered = names.get(int(party.get("party_id", 0)), "")
        parties.append(dict(party, privatelink_service_name=offered or party.get("privatelink_service_name") or ""))
    return dict(network, parties=parties)


def publish(network: dict, client_for, path: Path) -> tuple[dict, bool]:
    """Ask every party's account, write the overlay to ``path``. ``client_for(party)`` gives an EC2
    client signing as that party in its region. Returns ({party id: name or ""}, whether the file
    changed)."""
    names = {}
    for party in sorted(network.get("parties") or [], key=lambda p: int(p.get("party_id", 0))):
        pid = int(party["party_id"])
        names[pid] = offered_service(client_for(party), str(network.get("name", "")), pid)
    text = HEADER + yaml.safe_dump({"mpc_network": with_names(network, names)}, sort_keys=False)
    path = Path(path)
    old = path.read_text() if path.is_file() else None
    if old != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
    return names, old != text


def report(names: dict, path: Path, changed: bool) -> str:
    """What ``publish`` did, one line per party and one for the file (both entry points print it)."""
    lines = ["party %d: %s" % (pid, name or "no endpoint service yet") for pid, name in sorted(names.items())]
    return "\n".join(lines + ["%s: %s" % (path, "written" if changed else "unchanged")])


def read_network_file(path: Path) -> dict:
    """mpc_network from a YAML file holding it (an inventory's group_vars file or an overlay)."""
    doc = yaml.safe_load(Path(path).read_text()) or {}
    network = doc.get("mpc_network") if isinstance(doc, dict) else None
    if not isinstance(network, dict) or not isinstance(network.get("parties"), list):
        raise ValueError("%s: no mpc_network with parties" % path)
    return network


def main(argv=None) -> int:
    """``python -m sandbox.coordinator``: publish with the credentials of the environment (one
    account for every party, as in a Molecule scenario); ``tools/sandbox publish`` signs as each
    party instead."""
    import argparse
    import sys

    import boto3

    ap = argparse.ArgumentParser(prog="python -m sandbox.coordinator", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--network", required=True, help="YAML file with mpc_network (group_vars file or overlay)")
    ap.add_argument("--out", required=True, help="overlay file to write")
    ap.add_argument("--endpoint-url", required=True, help="the AWS stand-in")
    args = ap.parse_args(argv)
    try:
        network = read_network_file(Path(args.network))
        out = Path(args.out)

        def client_for(party):
            return boto3.client("ec2", endpoint_url=args.endpoint_url, region_name=str(party.get("region") or "eu-west-1"))

        names, changed = publish(network, client_for, out)
    except ValueError as exc:
        print("coordinator: %s" % exc, file=sys.stderr)
        return 2
    print(report(names, out, changed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
