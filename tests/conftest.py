"""Test set-up shared by every suite: load the collection under its FQCN.

The repository root is the collection; `make collection-link` exposes it as
.collections/ansible_collections/threshold_kms/mpc_party. ansible's own collection loader
(the one ansible-test uses) then resolves `ansible_collections.threshold_kms.mpc_party...`
and the dependencies shipped in the `ansible` package.
"""
import os
import sys

import pytest

# Test processes run gRPC clients and servers in-process (the KMS node simulator, kms_health) and
# start stand-ins with subprocess's preexec_fn: with gRPC's fork support on (grpcio's default),
# the child re-starts gRPC's poller thread after fork and, once in a while, crashes before exec
# (epoll_wait: Bad file descriptor; grpc/grpc#43055 - 15 of 1500 starts here, 0 with it off).
# Nothing here forks to go on using gRPC in the child. Read at gRPC's import: set before any.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINK = os.path.join(ROOT, ".collections", "ansible_collections", "threshold_kms", "mpc_party")

if not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink("../../..", LINK)

from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder  # noqa: E402

_AnsibleCollectionFinder(paths=[os.path.join(ROOT, ".collections")])._install()

if ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # sandbox.* (stand-ins) and tests.support.* importable

# Stand-ins that tools/sandbox starts for a test belong to this pytest process: they stop by
# themselves once it has ended, however it ended (sandbox/owned.py).
os.environ["SANDBOX_OWNER_PID"] = str(os.getpid())


def module_fixture_group(item):
    """The xdist group of a test that uses a module-scoped fixture of its own module, or None.

    With `--dist loadgroup` the tests of a module are otherwise spread over the workers, and each
    worker that gets one builds the module's fixtures again (a check-mode deploy, a render, a moto
    account): the work is done once per worker instead of once. Such a module runs on one worker.
    """
    module_id = item.nodeid.split("::")[0]
    info = getattr(item, "_fixtureinfo", None)  # test functions have it; other kinds of items use no fixture
    for defs in (info.name2fixturedefs.values() if info is not None else ()):
        if defs and defs[-1].scope == "module" and defs[-1].baseid == module_id:
            return module_id  # the path: tests/unit and tests/integration hold modules of the same name
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the groups
def pytest_collection_modifyitems(items):
    for item in items:
        if next(item.iter_markers("xdist_group"), None) is None:
            group = module_fixture_group(item)
            if group:
                item.add_marker(pytest.mark.xdist_group(group))
