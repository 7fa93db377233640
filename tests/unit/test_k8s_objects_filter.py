"""plugins/filter/k8s_objects.py against the Kubernetes API emulator and kubernetes.core's own
client-side apply (module_utils/apply.py, the code ``kubernetes.core.k8s`` runs with ``apply:
true``).

The promise the roles rely on: an object the filter calls "in place" is one that apply would
leave unchanged, so skipping the module loses nothing. The cases of drift (a field we set edited
by hand, an item added to a list we set, a field we stopped giving, an object made by someone
else) must come out "not in place", and apply must then change the object - the module still
repairs them.

Ports: 29900 + 10 per pytest-xdist worker.
"""
import copy
import json
import os

import pytest

from ansible_collections.threshold_kms.mpc_party.plugins.filter.k8s_objects import (
    LAST_APPLIED, k8s_apply_plan, k8s_live_object, k8s_object_in_place, k8s_read_kinds)
from sandbox.kube_emulator import run_emulators

WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
BASE_PORT = 29900 + 10 * WORKER
NS = "kms"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from kubernetes import dynamic
    from kubernetes.client import api_client

    with run_emulators(1, base_port=BASE_PORT, controller=False) as kube:
        path = kube.write_kubeconfig(1, tmp_path_factory.mktemp("kubeconfig") / "p1.yaml")
        client = dynamic.DynamicClient(api_client.ApiClient(configuration=_configuration(path)))
        client.resources.get(api_version="v1", kind="Namespace").create(body={"metadata": {"name": NS}})
        yield client


def _configuration(path):
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(config_file=path, client_configuration=configuration)
    return configuration


def apply(api, definition):
    """kubernetes.core's client-side apply; returns (object before or None, object after)."""
    from ansible_collections.kubernetes.core.plugins.module_utils.apply import k8s_apply
    from kubernetes.dynamic.exceptions import NotFoundError

    resource = api.resources.get(api_version=definition["apiVersion"], kind=definition["kind"])
    meta = definition["metadata"]
    try:
        before = resource.get(name=meta["name"], namespace=meta.get("namespace")).to_dict()
    except NotFoundError:
        before = None
    k8s_apply(resource, copy.deepcopy(definition))
    return before, resource.get(name=meta["name"], namespace=meta.get("namespace")).to_dict()


def changed(before, after):
    """What kubernetes.core's diff would report: anything besides resourceVersion / generation /
    managedFields."""
    def strip(obj):
        obj = copy.deepcopy(obj)
        for key in ("resourceVersion", "generation", "managedFields"):
            obj.get("metadata", {}).pop(key, None)
        return obj
    return before is None or strip(before) != strip(after)


def edit(api, name, body):
    """Someone's hand edit of Service ``name`` (a JSON merge patch)."""
    api.resources.get(api_version="v1", kind="Service").patch(
        name=name, namespace=NS, body=body, content_type="application/merge-patch+json")


def live(api, definition):
    resource = api.resources.get(api_version=definition["apiVersion"], kind=definition["kind"])
    return resource.get(name=definition["metadata"]["name"], namespace=definition["metadata"].get("namespace")).to_dict()


def read(api, definitions):
    """What the roles' k8s_info loop over k8s_read_kinds registers."""
    results = []
    for kind in k8s_read_kinds(definitions, NS):
        resource = api.resources.get(api_version=kind["api_version"], kind=kind["kind"])
        items = resource.get(namespace=kind.get("namespace")).to_dict()["items"]
        results.append({"item": kind, "resources": items, "changed": False})
    return results


def service(name, port=50001, extra_port=False, labels=None):
    ports = [{"name": "peer", "port": port, "targetPort": port}]
    if extra_port:
        ports.append({"name": "metrics", "port": 9646, "targetPort": 9646})
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NS, "labels": labels or {"app.kubernetes.io/name": "kms-core"}},
            "spec": {"type": "ClusterIP", "selector": {"app.kubernetes.io/name": "kms-core"}, "ports": ports}}


def statefulset(name, image="ghcr.io/zama-ai/kms/core-service:v0.14.0", replicas=1):
    labels = {"app.kubernetes.io/name": name}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "kms", "image": image,
                                                           "ports": [{"name": "peer", "containerPort": 50001}]}]}}}}


def test_absent_object_is_not_in_place(api):
    wanted = service("never-applied")
    plan = k8s_apply_plan([wanted], read(api, [wanted]), NS)
    assert plan == [{"definition": wanted, "kind": "Service", "namespace": NS, "name": "never-applied",
                     "exists": False, "in_place": False}]


@pytest.mark.parametrize("make", [lambda: service("svc-a", extra_port=True), lambda: statefulset("sts-a"),
                                  lambda: {"apiVersion": "v1", "kind": "ConfigMap",
                                           "metadata": {"name": "cm-a", "namespace": NS},
                                           "data": {"threshold.toml": "[service]\nlisten_port = 50100\n"}}])
def test_an_applied_object_is_in_place_and_apply_would_change_nothing(api, make):
    wanted = make()
    apply(api, wanted)
    plan = k8s_apply_plan([wanted], read(api, [wanted]), NS)
    assert plan[0]["exists"] and plan[0]["in_place"], plan
    before, after = apply(api, wanted)
    assert not changed(before, after)


def test_the_namespace_is_read_cluster_wide_and_found(api):
    wanted = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-a", "labels": {"team": "kms"}}}
    assert k8s_read_kinds([wanted], NS) == [{"api_version": "v1", "kind": "Namespace"}]
    assert not k8s_apply_plan([wanted], read(api, [wanted]), NS)[0]["in_place"]
    apply(api, wanted)
    plan = k8s_apply_plan([wanted], read(api, [wanted]), NS)
    assert plan[0]["in_place"] and plan[0]["namespace"] == ""


def test_a_field_we_set_edited_by_hand_is_not_in_place_and_apply_repairs_it(api):
    wanted = service("svc-edited")
    apply(api, wanted)
    edit(api, "svc-edited", {"spec": {"selector": {"app.kubernetes.io/name": "other"}}})
    assert not k8s_object_in_place(wanted, live(api, wanted))
    before, after = apply(api, wanted)
    assert changed(before, after) and after["spec"]["selector"] == {"app.kubernetes.io/name": "kms-core"}
    assert k8s_object_in_place(wanted, live(api, wanted))


def test_an_item_added_to_a_list_we_set_is_not_in_place(api):
    wanted = service("svc-port-added")
    apply(api, wanted)
    edited = live(api, wanted)
    edited["spec"]["ports"].append({"name": "debug", "port": 6060, "targetPort": 6060})
    edit(api, "svc-port-added", {"spec": {"ports": edited["spec"]["ports"]}})
    assert len(live(api, wanted)["spec"]["ports"]) == 2
    assert not k8s_object_in_place(wanted, live(api, wanted))


def test_a_label_someone_else_added_is_kept_by_apply_and_stays_in_place(api):
    wanted = service("svc-labelled")
    apply(api, wanted)
    edit(api, "svc-labelled", {"metadata": {"labels": {"owner": "ops"}}})
    assert k8s_object_in_place(wanted, live(api, wanted))
    before, after = apply(api, wanted)
    assert not changed(before, after) and after["metadata"]["labels"]["owner"] == "ops"


def test_a_new_or_changed_field_in_our_definition_is_not_in_place(api):
    wanted = statefulset("sts-upgrade")
    apply(api, wanted)
    newer = statefulset("sts-upgrade", image="ghcr.io/zama-ai/kms/core-service:v0.14.1")
    assert not k8s_object_in_place(newer, live(api, wanted))
    more = statefulset("sts-upgrade")
    more["spec"]["template"]["metadata"]["annotations"] = {"kms/config-checksum": "abc"}
    assert not k8s_object_in_place(more, live(api, wanted))
    before, after = apply(api, more)
    assert changed(before, after)


def test_a_field_we_stopped_giving_is_not_in_place_and_apply_removes_it(api):
    wanted = service("svc-shrunk", labels={"app.kubernetes.io/name": "kms-core", "tier": "peer"})
    apply(api, wanted)
    smaller = service("svc-shrunk")
    current = live(api, wanted)
    # Every field of the smaller definition has its value in the live object: only the
    # last-applied annotation tells that apply would remove the label.
    assert set(smaller["metadata"]["labels"].items()) < set(current["metadata"]["labels"].items())
    assert not k8s_object_in_place(smaller, current)
    before, after = apply(api, smaller)
    assert changed(before, after) and "tier" not in after["metadata"]["labels"]


def test_an_object_someone_else_made_without_our_annotation_is_not_in_place(api):
    wanted = service("svc-foreign")
    api.resources.get(api_version="v1", kind="Service").create(body=copy.deepcopy(wanted), namespace=NS)
    current = live(api, wanted)
    assert LAST_APPLIED not in (current["metadata"].get("annotations") or {})
    assert not k8s_object_in_place(wanted, current)


def test_bool_and_number_are_not_the_same_value():
    wanted = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": {"a": 1}}
    live_obj = copy.deepcopy(wanted)
    live_obj["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(wanted)}
    assert k8s_object_in_place(wanted, live_obj)
    live_obj["spec"]["a"] = True
    assert not k8s_object_in_place(wanted, live_obj)


def test_a_kind_not_read_counts_as_not_in_place_and_live_object_finds_what_was_read(api):
    wanted = service("svc-read")
    apply(api, wanted)
    reads = read(api, [wanted])
    assert k8s_live_object(reads, "v1", "Service", "svc-read", NS)["metadata"]["name"] == "svc-read"
    assert k8s_live_object(reads, "v1", "Service", "absent", NS) == {}
    skipped = [dict(reads[0], skipped=True)]
    assert k8s_apply_plan([wanted], skipped, NS)[0] == dict(k8s_apply_plan([wanted], reads, NS)[0],
                                                          exists=False, in_place=False)
    assert k8s_read_kinds([wanted, service("b"), statefulset("c")], NS) == [
        {"api_version": "v1", "kind": "Service", "namespace": NS},
        {"api_version": "apps/v1", "kind": "StatefulSet", "namespace": NS}]


def test_a_create_only_kind_is_in_place_once_it_exists_whatever_another_role_applied(api):
    bare = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-owned"}}
    owned = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-owned", "labels": {"owner": "kms_workload"}}}
    assert not k8s_apply_plan([bare], read(api, [bare]), create_only=["Namespace"])[0]["in_place"]
    apply(api, owned)  # the owner's apply, with its labels
    reads = read(api, [bare])
    assert not k8s_apply_plan([bare], reads)[0]["in_place"]  # an apply of the bare one would drop the labels
    assert k8s_apply_plan([bare], reads, create_only=["Namespace"])[0]["in_place"]
