"""Fixes to moto loaded into the sandbox's AWS stand-in for the integration tests.

tests/integration/standins.py puts this directory on PYTHONPATH when it runs `tools/sandbox
up`, so Python imports this file at start-up in the stand-in's process; nothing is patched in
the test process or in boto3. Each fix applies when (and only if) its moto module is imported.

* moto 5.2.5 KmsBackend.schedule_key_deletion, cancel_key_deletion, enable_key and disable_key
  index the key table with the KeyId exactly as sent, so a key ARN (what AWS accepts, and what
  amazon.aws.kms_key sends: state=absent schedules the deletion by ARN; a later state=present
  cancels it and enables the key by ARN) raises KeyError -> HTTP 500. Here the id is
  normalised first, as moto's other KMS calls do (any_id_to_key_id).

Once tests/support/aws_standin.py carries the same fix this file can go.
"""
import importlib.abc
import importlib.util
import sys


def _fix_kms(module):
    backend = module.KmsBackend
    if getattr(backend, "_ops_tests_fixed", False):
        return
    for name in ("schedule_key_deletion", "cancel_key_deletion", "enable_key", "disable_key"):
        original = getattr(backend, name)

        def fixed(self, key_id, *args, _original=original, **kwargs):
            return _original(self, self.any_id_to_key_id(key_id), *args, **kwargs)

        setattr(backend, name, fixed)
    backend._ops_tests_fixed = True


_FIXES = {"moto.kms.models": _fix_kms}


class _Loader(importlib.abc.Loader):
    def __init__(self, loader, fix):
        self._loader, self._fix = loader, fix

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        self._fix(module)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in _FIXES:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None and spec.loader is not None:
                spec.loader = _Loader(spec.loader, _FIXES[fullname])
                return spec
        return None


sys.meta_path.insert(0, _Finder())
