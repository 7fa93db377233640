"""Keep what each module_utils source imports, between Ansible runs, for the development virtualenv.

Before every module task Ansible builds the module's payload (AnsiballZ): it parses the module and
every module_utils file it imports, walks each syntax tree for further imports, and puts the files
found in a zip archive. It keeps the finished archive for the rest of its run only (in a temporary
directory of that run), so every ``ansible-playbook`` run - a deploy, each Molecule step, each test
that runs a playbook - parses the same sources again: about 0.19 s per module, 6.8 of the 44 CPU
seconds of a one-party no-change re-run (35 modules; docs/performance.md).

``make venv`` copies this file into the virtualenv's site-packages and adds a ``.pth`` line that
imports it at interpreter start. When ``ansible.executor.module_common`` is imported, it puts a
cache in front of the import walk of ``recursive_finder``: the list of imports found in a source is
kept in ``<venv>/module-deps-cache``, keyed by the SHA-256 of the source, its module name, whether
it is a package's ``__init__``, and the Ansible version. A source is parsed only when its imports
are not cached (and for the module itself, whose METADATA is read from its syntax tree).

Nothing else changes: Ansible still finds each imported name's file, reads it and builds the archive
from the files as they are now; a source that differs by one byte is parsed anew.
``MPC_MODULE_DEPS_CACHE=0`` turns it off; ``MPC_MODULE_DEPS_CACHE_DIR`` moves the cache. Any error
reading or writing the cache falls back to parsing, as Ansible does by itself.
"""
import os
import sys

CACHE_DIR = os.environ.get("MPC_MODULE_DEPS_CACHE_DIR") or os.path.join(sys.prefix, "module-deps-cache")
TARGET = "ansible.executor.module_common"


class _Source(object):
    """What ``_compile_module_ast`` returns with the cache: the source, parsed on first use."""

    __slots__ = ("name", "source", "_parse", "_tree")

    def __init__(self, name, source, parse):
        self.name, self.source, self._parse, self._tree = name, source, parse, None

    @property
    def tree(self):
        if self._tree is None:
            self._tree = self._parse(self.name, self.source)
        return self._tree


class _Found(object):
    """The two results of ``ModuleDepFinder`` that ``recursive_finder`` reads, from the cache."""

    __slots__ = ("submodules", "optional_imports")

    def __init__(self, submodules, optional_imports):
        self.submodules, self.optional_imports = submodules, optional_imports


def _key(version, module_fqn, is_pkg_init, source):
    import hashlib  # here, not at start-up: a process that builds no payload pays nothing

    digest = hashlib.sha256(b"module-deps-1\0")
    digest.update(("%s\0%s\0%d\0" % (version, module_fqn, bool(is_pkg_init))).encode())
    digest.update(source if isinstance(source, bytes) else source.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _load(path):
    import json

    try:
        with open(path, "r") as handle:
            data = json.load(handle)
        return _Found({tuple(item) for item in data["submodules"]}, {tuple(item) for item in data["optional_imports"]})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _store(path, found):
    import json

    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w") as handle:
            json.dump({"submodules": sorted(found.submodules), "optional_imports": sorted(found.optional_imports)}, handle)
        os.replace(tmp, path)  # atomic: a concurrent reader sees no file or the whole file
    except (OSError, TypeError, ValueError):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def patch(module_common):
    """Put the cache in front of the import walk of ``module_common.recursive_finder`` (once)."""
    if getattr(module_common, "_mpc_module_deps_cache", False):
        return
    version = getattr(module_common, "__version__", "")
    parse = module_common._compile_module_ast
    finder = module_common.ModuleDepFinder
    metadata = module_common._get_module_metadata

    def compile_module_ast(module_name, source_code):
        return _Source(module_name, source_code, parse)

    def module_dep_finder(module_fqn, tree, is_pkg_init=False):
        if not isinstance(tree, _Source):
            return finder(module_fqn, tree, is_pkg_init)
        path = os.path.join(CACHE_DIR, _key(version, module_fqn, is_pkg_init, tree.source))
        found = _load(path)
        if found is None:
            found = finder(module_fqn, tree.tree, is_pkg_init)
            _store(path, found)
        return found

    def get_module_metadata(module):
        return metadata(module.tree if isinstance(module, _Source) else module)

    # recursive_finder alone sees the three replacements: a copy of it reads them from a namespace of
    # its own (ModuleDepFinder's own methods still name the class through the module's namespace)
    import types

    original = module_common.recursive_finder
    namespace = dict(vars(module_common), _compile_module_ast=compile_module_ast, ModuleDepFinder=module_dep_finder,
                     _get_module_metadata=get_module_metadata)
    module_common.recursive_finder = types.FunctionType(original.__code__, namespace, original.__name__,
                                                        original.__defaults__, original.__closure__)
    module_common._mpc_module_deps_cache = True


class _PatchOnImport(object):
    """A meta path finder that patches ``TARGET`` right after it is executed, and finds nothing itself."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader

        class Loader(object):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                try:
                    patch(module)
                except Exception:  # another Ansible than this one was written for: leave it as it is
                    pass

            def __getattr__(self, attribute):
                return getattr(loader, attribute)

        spec.loader = Loader()
        return spec


def install():
    """Patch module_common when it is imported (a no-op where the cache is off)."""
    if os.environ.get("MPC_MODULE_DEPS_CACHE", "1") == "0":
        return False
    module_common = sys.modules.get(TARGET)
    if module_common is not None:
        patch(module_common)
    elif not any(isinstance(f, _PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchOnImport())
    return True


install()
