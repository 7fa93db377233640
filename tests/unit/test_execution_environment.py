"""The execution environment definition (execution-environment.yml) against what the collection needs.

No container engine runs here, so the build is judged from the context ``ansible-builder create``
writes: the Containerfile is read stage by stage, and every path a stage uses that the build context
provides (``COPY _build/... /dest`` in some stage) must be in that stage: copied there from the
context, inherited from the stage it starts ``FROM``, or copied ``--from`` a stage that has it.
A file installed from a directory only another stage has is the build failing half-way.

Then what the EE declares against what the collection uses: every third-party package the
modules, module_utils and filters of plugins/ import; every executable the roles and the
kubeconfigs they write call (``aws eks get-token``, helm); the versions shared with
requirements.txt / constraints.txt; the collection tarball ``make build`` writes.

tests/integration/test_ee_requirements.py installs exactly these declarations into a fresh
virtualenv and deploys a party with it.
"""
import ast
import importlib.metadata
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
EE_FILE = os.path.join(ROOT, "execution-environment.yml")

# Executables the collection runs, and how the EE must declare each: a Python package whose
# distribution installs the command, or a bindep (system package) entry.
EXECUTABLE_PROVIDERS = {
    "aws": ("python", "awscli"),
    "helm": ("system", "helm"),
    "git": ("system", "git"),
}
# Modules of the dependencies that run an executable of their own.
MODULE_EXECUTABLES = {
    "kubernetes.core.helm": "helm",
    "kubernetes.core.helm_info": "helm",
    "kubernetes.core.helm_repository": "helm",
    "kubernetes.core.helm_plugin": "helm",
    "ansible.builtin.git": "git",
}


# ------------------------------------------------------------------------------ the build context
def load_ee(path=EE_FILE):
    with open(path) as fh:
        return yaml.safe_load(fh)


def galaxy_tarball(version=False):
    """The tarball `make build` leaves in build/: ansible-galaxy's name without the version (galaxy.yml
    keeps it); ``version=True``: the name ansible-galaxy gives it."""
    with open(os.path.join(ROOT, "galaxy.yml")) as fh:
        meta = yaml.safe_load(fh)
    if version:
        return "%s-%s-%s.tar.gz" % (meta["namespace"], meta["name"], meta["version"])
    return "%s-%s.tar.gz" % (meta["namespace"], meta["name"])


def create_context(ee_text, workdir):
    """``ansible-builder create`` of ``ee_text`` in ``workdir`` (with the files it names and the
    collection tarball built there, as ``make build`` does); returns the context directory."""
    workdir = str(workdir)
    ee = yaml.safe_load(ee_text)
    with open(os.path.join(workdir, "execution-environment.yml"), "w") as fh:
        fh.write(ee_text)
    deps = ee.get("dependencies") or {}
    for key in ("galaxy", "python", "system"):
        if isinstance(deps.get(key), str):
            shutil.copy(os.path.join(ROOT, deps[key]), os.path.join(workdir, deps[key]))
    build = os.path.join(workdir, "build")
    os.makedirs(build, exist_ok=True)
    proc = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", build, ROOT],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    os.rename(os.path.join(build, galaxy_tarball(version=True)), os.path.join(build, galaxy_tarball()))
    context = os.path.join(workdir, "context")
    proc = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", context,
                           "--output-filename", "Containerfile"], cwd=workdir, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return context


def instructions(text):
    """(INSTRUCTION, arguments) of a Containerfile, continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


class Stage(object):
    def __init__(self, name, parent):
        self.name = name
        self.parent = parent
        self.files = set(parent.files) if parent else set()  # context files present (absolute paths)
        self.workdir = parent.workdir if parent else "/"
        self.uses = []  # (instruction, path) read by RUN / ENTRYPOINT / CMD


def copy_args(rest):
    words = shlex.split(rest)
    options = {w.split("=", 1)[0][2:]: w.split("=", 1)[1] for w in words if w.startswith("--") and "=" in w}
    words = [w for w in words if not w.startswith("--")]
    return options, words[:-1], words[-1]


def _target(dest, src, many):
    if dest.endswith("/") or many:
        return posixpath.join(dest, posixpath.basename(src.rstrip("/")))
    return dest


def analyse(text, context):
    """The stages of a Containerfile and the problems found: [(stage, message)]."""
    stages, problems, current = {}, [], None
    context_dests = []  # every destination a COPY from the build context writes, in any stage
    for word, rest in instructions(text):
        if word == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else "stage%d" % len(stages)
            current = Stage(name, stages.get(parts[0]))
            stages[name] = current
        elif current is None:
            continue
        elif word == "WORKDIR":
            current.workdir = posixpath.normpath(posixpath.join(current.workdir, rest))
        elif word in ("COPY", "ADD"):
            options, sources, dest = copy_args(rest)
            dest = posixpath.join(current.workdir, dest) if not dest.startswith("/") else dest
            dest = dest if not dest.endswith("/") else dest.rstrip("/") + "/"
            many = len(sources) > 1
            if "from" in options:
                origin = stages.get(options["from"])
                if origin is None:
                    problems.append((current.name, "COPY --from=%s: no such stage before it" % options["from"]))
                    continue
                for src in sources:
                    for path in sorted(origin.files):
                        if path == src.rstrip("/") or path.startswith(src.rstrip("/") + "/"):
                            current.files.add(_target(dest, src, many) + path[len(src.rstrip("/")):])
                continue
            context_dests.append(dest.rstrip("/") or "/")
            for src in sources:
                local = os.path.join(context, src)
                if not os.path.exists(local):
                    problems.append((current.name, "COPY %s: not in the build context" % src))
                elif os.path.isdir(local):
                    base = dest.rstrip("/")
                    for dirpath, _, names in os.walk(local):
                        for name in names:
                            rel = os.path.relpath(os.path.join(dirpath, name), local)
                            current.files.add(posixpath.join(base, rel.replace(os.sep, "/")))
                else:
                    current.files.add(_target(dest, src, many))
        elif word == "RUN":
            for path in run_paths(rest, current.workdir):
                current.uses.append(("RUN", path))
        elif word in ("ENTRYPOINT", "CMD"):
            for path in re.findall(r'"(/[^"]+)"', rest):
                current.uses.append((word, path))

    def from_context(path):
        return any(path == d or path.startswith(d + "/") for d in context_dests)

    for stage in stages.values():
        for word, path in stage.uses:
            if not from_context(path):
                continue  # made by a RUN or part of the base image: nothing to check here
            if path not in stage.files and not any(f.startswith(path + "/") for f in stage.files):
                problems.append((stage.name, "%s reads %s, which the build context puts only into stage(s) %s"
                                 % (word, path, ", ".join(s.name for s in stages.values()
                                                          if path in s.files or any(f.startswith(path + "/") for f in s.files))
                                    or "none")))
    return stages, problems


def run_paths(command, workdir):
    """Paths a RUN command names: absolute words, and relative file names (with a dot or a slash)
    resolved against the stage's WORKDIR; values of --option=value words too."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = command.split()
    paths = []
    for word in words:
        if word.startswith("-"):
            if "=" not in word:
                continue
            word = word.split("=", 1)[1]
        elif "=" in word or "$" in word or word in ("&&", "||", ";", "|"):
            continue
        word = word.strip("'\"")
        if word.startswith("/"):
            paths.append(posixpath.normpath(word))
        elif ("." in word or "/" in word) and re.match(r"^[\w][\w./-]*$", word) and not re.match(r"^[\d.]+$", word):
            paths.append(posixpath.normpath(posixpath.join(workdir, word)))
    return paths


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    with open(EE_FILE) as fh:
        return create_context(fh.read(), tmp_path_factory.mktemp("ee"))


def containerfile(context_dir):
    with open(os.path.join(context_dir, "Containerfile")) as fh:
        return fh.read()


def test_each_stage_has_what_it_uses(context):
    stages, problems = analyse(containerfile(context), context)
    assert {"base", "galaxy", "builder", "final"} <= set(stages), sorted(stages)
    assert problems == []
    # and the final image does install this collection, from a file the final stage has
    final = stages["final"]
    installs = [p for w, p in final.uses if p.endswith(galaxy_tarball())]
    assert installs and all(p in final.files for p in installs), final.uses


# The layout issue 15 found: the tarball lands in the galaxy stage's /build and the final stage
# installs it from there. The analysis must report it (the check above can fail).
BROKEN_FINAL_STEP = ("RUN ansible-galaxy collection install /build/collections/%s --no-deps "
                     "-p /usr/share/ansible/collections")


def test_a_file_only_another_stage_has_is_reported(tmp_path):
    ee = load_ee()
    ee["additional_build_steps"] = {"append_final": [BROKEN_FINAL_STEP % galaxy_tarball()]}
    context_dir = create_context(yaml.safe_dump(ee, sort_keys=False), tmp_path)
    _, problems = analyse(containerfile(context_dir), context_dir)
    assert problems == [("final", "RUN reads /build/collections/%s, which the build context puts only into stage(s) galaxy"
                         % galaxy_tarball())], problems


def test_the_interpreter_is_set_and_is_the_controller_python():
    interpreter = load_ee()["dependencies"].get("python_interpreter") or {}
    assert interpreter.get("python_path", "").startswith("/"), "dependencies.python_interpreter.python_path is not set"
    # requirements.txt pins for Python 3.11 (ansible-core 2.19 on the controller)
    assert re.search(r"python3\.11$", interpreter["python_path"]), interpreter
    assert interpreter.get("package_system") == "python3.11", interpreter


def test_the_base_image_digest_is_a_build_argument_make_ee_image_requires():
    ee = load_ee()
    name = ee["images"]["base_image"]["name"]
    assert "@sha256:" not in name or re.search(r"@sha256:[0-9a-f]{64}$", name), name
    bad = subprocess.run(["make", "-s", "ee-image-check", "EE_BASE_IMAGE=" + name, "EE_TAG=registry.example.org/ee:1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "EE_BASE_IMAGE" in bad.stdout + bad.stderr, bad.stdout + bad.stderr
    pinned = name.split(":")[0] + "@sha256:" + "0" * 64
    good = subprocess.run(["make", "-s", "ee-image-check", "EE_BASE_IMAGE=" + pinned, "EE_TAG=registry.example.org/ee:1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stdout + good.stderr


def test_the_collection_tarball_is_the_one_make_build_writes():
    ee = load_ee()
    sources = [f["src"] for f in ee.get("additional_build_files") or []]
    assert "build/" + galaxy_tarball() in sources, sources
    steps = " ".join(ee["additional_build_steps"]["append_final"])
    assert galaxy_tarball() in steps


# --------------------------------------------------------------------------------- declarations
def requirement_pins(path):
    """{normalised name: version} of the name==version lines of a requirements file."""
    pins = {}
    with open(path) as fh:
        for line in fh:
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)", line)
            if match:
                pins[normalise(match.group(1))] = match.group(2)
    return pins


def normalise(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def ee_python_pins():
    python = load_ee()["dependencies"]["python"]
    if isinstance(python, str):
        return requirement_pins(os.path.join(ROOT, python))
    pins = {}
    for line in python:
        name, _, version = line.partition("==")
        pins[normalise(name)] = version.strip()
    return pins


def ee_system_packages():
    system = load_ee()["dependencies"].get("system") or []
    if isinstance(system, str):
        with open(os.path.join(ROOT, system)) as fh:
            system = [line for line in fh if line.strip() and not line.startswith("#")]
    return {line.split()[0] for line in system}


def test_every_python_requirement_is_pinned_as_the_controller_pins_it():
    ee_pins = ee_python_pins()
    assert ee_pins and all(ee_pins.values()), "every EE Python requirement is pinned with =="
    shared = dict(requirement_pins(os.path.join(ROOT, "constraints.txt")))
    shared.update(requirement_pins(os.path.join(ROOT, "requirements.txt")))
    drift = {name: (version, shared[name]) for name, version in ee_pins.items() if name in shared and shared[name] != version}
    assert drift == {}, "EE pin != requirements.txt/constraints.txt pin: %s" % drift
    deps = load_ee()["dependencies"]
    for key, package in (("ansible_core", "ansible-core"), ("ansible_runner", "ansible-runner")):
        assert deps[key]["package_pip"] == "%s==%s" % (package, shared[package]), deps[key]


def third_party_imports():
    """{top-level module: [files]} imported by plugins/, outside the standard library and ansible;
    imports in an ``except ImportError`` branch (fallbacks such as tomli for tomllib) left out."""
    found = {}
    for dirpath, _, names in os.walk(os.path.join(ROOT, "plugins")):
        for name in names:
            if not name.endswith(".py"):
                continue
            path = os.path.join(dirpath, name)
            with open(path) as fh:
                tree = ast.parse(fh.read(), path)
            fallback = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.ExceptHandler):
                    for inner in ast.walk(node):
                        fallback.add(id(inner))
            for node in ast.walk(tree):
                if id(node) in fallback:
                    continue
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in ("ansible", "ansible_collections", "__future__"):
                        continue
                    found.setdefault(top, []).append(os.path.relpath(path, ROOT))
    return found


def test_every_package_the_plugins_import_is_declared():
    imports = third_party_imports()
    # what plugins/ is known to import today: the check sees them
    assert {"botocore", "kubernetes", "grpc", "google", "cryptography", "tomli_w"} <= set(imports), sorted(imports)
    distributions = importlib.metadata.packages_distributions()
    declared = set(ee_python_pins())
    missing = {}
    for module, files in sorted(imports.items()):
        providers = {normalise(d) for d in distributions.get(module, [])}
        assert providers, "no installed distribution provides %s (imported by %s)" % (module, files[0])
        if not providers & declared:
            missing[module] = (sorted(providers), sorted(set(files)))
    assert missing == {}, "imported by plugins/ but not in the EE's Python requirements: %s" % missing


def called_executables():
    """{executable: [where]} the roles, playbooks and kubeconfig templates run."""
    calls = {}
    defaults = {}
    for role in os.listdir(os.path.join(ROOT, "roles")):
        path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
        if os.path.exists(path):
            with open(path) as fh:
                defaults.update(yaml.safe_load(fh) or {})

    def resolve(word):
        match = re.match(r"^\{\{\s*(\w+)\s*\}\}$", str(word).strip())
        return str(defaults.get(match.group(1), word)) if match else str(word)

    for top in ("roles", "playbooks"):
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, ROOT)
                with open(path) as fh:
                    text = fh.read()
                if name.endswith(".j2"):
                    if not re.search(r"^kind:\s*Config\s*$", text, re.M):
                        continue  # not a kubeconfig (a Pod's exec probe runs in the pod, not here)
                    # a kubeconfig's exec credential plugin (users[].user.exec.command)
                    for command in re.findall(r"^\s*exec:\s*\n(?:\s+\S.*\n)*?\s+command:\s*(\S+)", text, re.M):
                        calls.setdefault(command, []).append(rel)
                    continue
                if not name.endswith((".yml", ".yaml")):
                    continue
                for task in iter_tasks(yaml.safe_load(text)):
                    for module, executable in MODULE_EXECUTABLES.items():
                        if module in task:
                            calls.setdefault(executable, []).append(rel)
                    for module in ("ansible.builtin.command", "ansible.builtin.shell"):
                        args = task.get(module)
                        if args is None:
                            continue
                        argv = args.get("argv") if isinstance(args, dict) else None
                        first = argv[0] if argv else (args.get("cmd") if isinstance(args, dict) else args).split()[0]
                        calls.setdefault(posixpath.basename(resolve(first)), []).append(rel)
    return calls


def iter_tasks(node):
    if isinstance(node, list):
        for item in node:
            yield from iter_tasks(item)
    elif isinstance(node, dict):
        yield node
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            if isinstance(node.get(key), list):
                yield from iter_tasks(node[key])


def test_every_executable_the_collection_calls_is_declared():
    calls = called_executables()
    # the kubeconfig eks_cluster writes authenticates with `aws eks get-token`; lb_controller runs helm
    assert "roles/eks_cluster/templates/kubeconfig.yaml.j2" in calls.get("aws", []), calls
    assert "helm" in calls, calls
    python, system = set(ee_python_pins()), ee_system_packages()
    undeclared = {}
    for executable, where in sorted(calls.items()):
        kind, package = EXECUTABLE_PROVIDERS.get(executable, (None, None))
        if kind is None or package not in (python if kind == "python" else system):
            undeclared[executable] = sorted(set(where))
    assert undeclared == {}, "executables the collection runs that the EE does not declare: %s" % undeclared
