"""Keep the bytecode of Python sources imported from zip archives, for the development virtualenv.

Ansible runs every module task in a new Python process. That process imports
``ansible.module_utils`` and the collections' ``module_utils`` from the module's zip payload
(AnsiballZ), and Python never caches bytecode for sources inside a zip archive. So every task
compiles the same sources again: ``ansible.module_utils.basic`` and its imports alone take about
0.19 s of the 0.24 s that ``ansible.builtin.ping`` costs on a 2-core machine.

``make venv`` copies this file into the virtualenv's site-packages and adds a ``.pth`` line that
imports it at interpreter start. It replaces ``zipimport``'s compile step with one that keeps each
compiled module in ``<venv>/zipimport-cache``, keyed by the SHA-256 of the source, the
interpreter's bytecode magic number and the optimisation level. A module read back from the cache
gets the file name of the archive it was imported from, so tracebacks still point at the payload.

Nothing else changes: the same sources are executed, and a source that differs by one byte is
compiled anew. ``MPC_ZIPIMPORT_CACHE=0`` turns it off; ``MPC_ZIPIMPORT_CACHE_DIR`` moves the cache.
Any error reading or writing the cache falls back to compiling, as Python does by itself.
"""
import marshal
import os
import sys
import types
import zipimport

CACHE_DIR = os.environ.get("MPC_ZIPIMPORT_CACHE_DIR") or os.path.join(sys.prefix, "zipimport-cache")
_compile = getattr(zipimport, "_compile_source", None)


def _key(source):
    import hashlib  # here, not at start-up: a process that imports nothing from a zip pays nothing
    from importlib._bootstrap_external import MAGIC_NUMBER

    digest = hashlib.sha256(MAGIC_NUMBER)
    digest.update(str(sys.flags.optimize).encode())
    digest.update(source)
    return digest.hexdigest()


def _retarget(code, filename):
    """The code object (and every nested one) with co_filename set to filename."""
    if code.co_filename == filename:
        return code
    consts = tuple(_retarget(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _store(path, code):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "wb") as handle:
            marshal.dump(code, handle)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old state or the whole file
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def compile_source(pathname, source):
    """zipimport's compile step, with the cache in front of it."""
    path = os.path.join(CACHE_DIR, _key(source))
    try:
        with open(path, "rb") as handle:
            code = marshal.load(handle)
        if isinstance(code, types.CodeType):
            return _retarget(code, pathname)
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile(pathname, source)
    _store(path, code)
    return code


def install():
    """Put the cache in front of zipimport's compile step (once; a no-op where it cannot)."""
    if os.environ.get("MPC_ZIPIMPORT_CACHE", "1") == "0" or _compile is None:
        return False
    if getattr(zipimport._compile_source, "__module__", None) == __name__:
        return True
    zipimport._compile_source = compile_source
    return True


install()
