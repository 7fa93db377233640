"""Static scan of the AWS API calls the collection's playbooks can make (for test_iam_policy.py).

Three steps, each from the code as it is:

1. the module FQCNs every task of ``roles/*/tasks`` and ``playbooks/`` calls;
2. for each AWS module (this collection's, amazon.aws's and community.aws's), the code a run can
   reach: the module file itself, then every module_utils function, class or constant it names,
   followed transitively through ``from ... import`` (``ast``, no import of the code);
3. in that code, the AWS services it opens clients for (``module.client("eks")``,
   ``aws_retry.client(module, "s3")``, ``boto3_conn(..., resource="s3")``) and the operations of
   those services it names: client methods and paginators (``describe_vpcs``), botocore waiters
   (``bucket_exists``) and amazon.aws's own waiter models (``"operation": "DescribeVpcs"``),
   checked against botocore's service models. Each operation becomes an IAM action:
   ``<signing name>:<OperationName>`` unless the IAM service names it otherwise (S3 mostly; the
   table is in data/iam_module_actions.yml).
"""

import ast
import functools
import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTION = "threshold_kms.mpc_party"
AWS_COLLECTIONS = ("amazon.aws", "community.aws")
FQCN = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+\.[a-z0-9_]+$")
TASK_LISTS = ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers")
CLIENT_FACTORIES = ("client", "resource", "boto3_conn", "_client")


def task_files():
    """roles/*/tasks/**/*.yml and playbooks/**/*.yml, relative to the collection root."""
    found = []
    for top in ("roles", "playbooks"):
        for dirpath, _dirs, files in os.walk(os.path.join(ROOT, top)):
            rel = os.path.relpath(dirpath, ROOT).split(os.sep)
            if top == "roles" and (len(rel) < 3 or rel[2] != "tasks"):
                continue
            found += [os.path.join(dirpath, f) for f in files if f.endswith((".yml", ".yaml"))]
    return sorted(found)


def _walk_tasks(items, out, where):
    for task in items or []:
        if not isinstance(task, dict):
            continue
        for key, value in task.items():
            if key in TASK_LISTS and isinstance(value, list):
                _walk_tasks(value, out, where)
            elif FQCN.match(key):
                out.setdefault(key, set()).add(where)
        if "action" in task or "local_action" in task:
            raise AssertionError("%s: write the module as the task's key, not action:" % where)


def modules_used():
    """{module FQCN: {relative task file, ...}} for every module a task names."""
    used = {}
    for path in task_files():
        with open(path) as handle:
            doc = yaml.safe_load(handle)
        _walk_tasks(doc if isinstance(doc, list) else [], used, os.path.relpath(path, ROOT))
    return used


def is_aws_module(fqcn):
    """amazon.aws/community.aws modules, and ours that open an AWS client."""
    if fqcn.rsplit(".", 1)[0] in AWS_COLLECTIONS:
        return True
    if fqcn.startswith(COLLECTION + "."):
        return bool(reachable(fqcn).services)
    return False


# ---- where the code lives ------------------------------------------------------------------------

def collection_dir(namespace, name):
    if "%s.%s" % (namespace, name) == COLLECTION:
        return ROOT
    import ansible_collections

    for base in ansible_collections.__path__:
        path = os.path.join(base, namespace, name)
        if os.path.isdir(path):
            return path
    raise AssertionError("collection %s.%s is not installed" % (namespace, name))


def module_path(fqcn):
    namespace, name, module = fqcn.split(".")
    return os.path.join(collection_dir(namespace, name), "plugins", "modules", module + ".py")


def util_path(dotted, importer=None):
    """``ansible_collections.<ns>.<name>.plugins.module_utils.<x>[.<y>]`` (or ``.x`` relative to the
    importing file) -> file, or None."""
    if dotted.startswith("."):
        level = len(dotted) - len(dotted.lstrip("."))
        base = os.path.dirname(importer)
        for _up in range(level - 1):
            base = os.path.dirname(base)
        base = os.path.join(base, *[p for p in dotted.lstrip(".").split(".") if p])
        for candidate in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(candidate) and os.sep + "module_utils" + os.sep in candidate:
                return candidate
        return None
    parts = dotted.split(".")
    if parts[:1] != ["ansible_collections"] or parts[3:5] != ["plugins", "module_utils"]:
        return None
    if "%s.%s" % (parts[1], parts[2]) not in AWS_COLLECTIONS + (COLLECTION,):
        return None
    base = os.path.join(collection_dir(parts[1], parts[2]), "plugins", "module_utils", *parts[5:])
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


class Source:
    """One parsed file: its top-level definitions and what its imports bind."""

    def __init__(self, path):
        with open(path) as handle:
            self.tree = ast.parse(handle.read(), path)
        self.path = path
        self.defs = {}       # name -> top-level node defining it
        self.imports = {}    # local name -> (module dotted name, attribute or None)
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.defs[node.name] = node
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    for name in ast.walk(target):
                        if isinstance(name, ast.Name):
                            self.defs[name.id] = node
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = (module, alias.name)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    self.imports[alias.asname or alias.name.split(".")[0]] = (alias.name, None)


@functools.lru_cache(maxsize=None)
def parse(path):
    return Source(path)


class Reach:
    """The code one module can run: its AST nodes, the services it opens, the operations it names."""

    def __init__(self):
        self.nodes = []
        self.services = set()
        self.files = set()


def _resolve(src, name, attr=None):
    """(file, definition name) a name (or module.attr) of ``src`` refers to in module_utils, or None."""
    if name not in src.imports:
        return None
    module, imported = src.imports[name]
    if imported is not None:
        target = util_path(module, src.path)
        if target:
            return target, imported
        sep = "" if module.endswith(".") else "."
        target = util_path(module + sep + imported, src.path)  # from ...module_utils import ec2
        if target and attr:
            return target, attr
        return None
    target = util_path(module, src.path)
    if target and attr:
        return target, attr
    return None


@functools.lru_cache(maxsize=None)
def reachable(fqcn):
    reach = Reach()
    seen = set()
    todo = [(module_path(fqcn), None)]  # None: the whole file
    while todo:
        path, name = todo.pop()
        if (path, name) in seen:
            continue
        seen.add((path, name))
        src = parse(path)
        if name is None:
            roots = [src.tree]
        elif path == waiters_path() and (name == "waiters_by_name" or name.endswith("_data")):
            roots = []  # amazon.aws's waiter table: only the waiters a module names count (api_calls)
        elif name in src.defs:
            roots = [src.defs[name]]
        else:
            roots = []
            ref = _resolve(src, name)  # re-exported from another module_utils file
            if ref:
                todo.append(ref)
        reach.files.add(path)
        for root in roots:
            reach.nodes.append(root)
            for node in ast.walk(root):
                if isinstance(node, ast.Name):
                    if node.id in src.defs and name is not None:
                        todo.append((path, node.id))
                    ref = _resolve(src, node.id)
                    if ref:
                        todo.append(ref)
                elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    ref = _resolve(src, node.value.id, node.attr)
                    if ref:
                        todo.append(ref)
                elif isinstance(node, ast.Call):
                    reach.services |= _client_services(node)
    return reach


def _call_name(func):
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _client_services(call):
    if _call_name(call.func) not in CLIENT_FACTORIES:
        return set()
    values = list(call.args) + [kw.value for kw in call.keywords if kw.arg in ("resource", "service", "service_name")]
    found = set()
    for value in values:
        if isinstance(value, ast.Constant) and isinstance(value.value, str) and value.value in botocore_services():
            found.add(value.value)
    return found


# ---- botocore -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _session():
    import botocore.session

    return botocore.session.get_session()


@functools.lru_cache(maxsize=None)
def botocore_services():
    return frozenset(_session().get_available_services())


@functools.lru_cache(maxsize=None)
def operations(service):
    """{name as code may spell it: OperationName} -- snake_case methods/paginators, CamelCase, waiters."""
    from botocore import xform_name

    model = _session().get_service_model(service)
    names = {}
    for op in model.operation_names:
        names[xform_name(op)] = op
        names[op] = op
    try:
        waiters = _session().get_waiter_model(service)
    except Exception:  # a service without waiters
        waiters = None
    if waiters is not None:
        for waiter in waiters.waiter_names:
            names.setdefault(xform_name(waiter), waiters.get_waiter(waiter).operation)
    return names


def signing_name(service):
    return _session().get_service_model(service).signing_name


@functools.lru_cache(maxsize=None)
def waiters_path():
    return util_path("ansible_collections.amazon.aws.plugins.module_utils.waiters")


@functools.lru_cache(maxsize=None)
def amazon_waiters():
    """{waiter name: {client method it polls}} from amazon.aws's ``waiters_by_name``."""
    table = {}
    node = parse(waiters_path()).defs["waiters_by_name"]
    for key, value in zip(node.value.keys, node.value.values):
        name = key.elts[1].value
        table[name] = {n.attr for n in ast.walk(value) if isinstance(n, ast.Attribute)
                       and isinstance(n.value, ast.Name) and n.value.id == value.args.args[0].arg}
    return table


def api_calls(fqcn):
    """{(service, OperationName)} the module's reachable code names, for the services it opens."""
    reach = reachable(fqcn)
    words = set()
    for root in reach.nodes:
        keys = {id(n.slice) for n in ast.walk(root) if isinstance(n, ast.Subscript)}
        for node in ast.walk(root):
            if isinstance(node, ast.Attribute):
                words.add(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in keys:
                words.add(node.value)  # not a subscript (params["verify"] is no call)
    for name, methods in amazon_waiters().items():
        if name in words:
            words |= methods
    calls = set()
    for service in reach.services:
        ops = operations(service)
        calls |= {(service, ops[w]) for w in words if w in ops}
    return calls


def iam_actions(calls, exceptions):
    """IAM actions of {(service, Operation)}; ``exceptions`` maps "s3:Operation" -> [actions]."""
    actions = set()
    for service, op in calls:
        key = "%s:%s" % (signing_name(service), op)
        actions.update(exceptions.get(key, [key]))
    return actions


# ---- from modules to actions ----------------------------------------------------------------------

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "iam_module_actions.yml")


def load_data():
    with open(DATA) as handle:
        return yaml.safe_load(handle)


def task_args(fqcn):
    """The argument dicts of every task that calls ``fqcn``."""
    found = []

    def walk(items):
        for task in items or []:
            if isinstance(task, dict):
                for key in TASK_LISTS:
                    if isinstance(task.get(key), list):
                        walk(task[key])
                if isinstance(task.get(fqcn), dict):
                    found.append(task[fqcn])

    for path in task_files():
        with open(path) as handle:
            doc = yaml.safe_load(handle)
        walk(doc if isinstance(doc, list) else [])
    return found


def dynamic_calls(fqcn, entry):
    """{(service, Operation)} of a module that builds method names from a task parameter."""
    ops = operations(entry["service"])
    calls = set()
    for args in task_args(fqcn):
        for key, value in (args.get(entry["parameter"]) or {}).items():
            if value is True or str(value).lower() == "true":
                method = entry["method"].format(key=key)
                assert method in ops, "%s: %s is no %s operation" % (fqcn, method, entry["service"])
                calls.add((entry["service"], ops[method]))
    return calls


def module_actions(data=None):
    """{module FQCN: (actions the scan finds, actions the roles need)} for every AWS module used."""
    data = data or load_data()
    result = {}
    for fqcn in sorted(modules_used()):
        if not is_aws_module(fqcn):
            continue
        calls = api_calls(fqcn)
        if fqcn in data.get("dynamic_calls", {}):
            calls |= dynamic_calls(fqcn, data["dynamic_calls"][fqcn])
        found = iam_actions(calls, data["iam_names"])
        excluded = set(data.get("not_reached", {}).get(fqcn, {}).get("actions", []))
        result[fqcn] = (found, found - excluded)
    return result
