"""Import the collection's module_utils from the simulator, with or without pytest.

Under pytest, tests/conftest.py has already installed ansible's collection loader. When the
simulator runs on its own (``python -m tests.support.kms_sim``, the sandbox controller) it
installs the loader itself, for the same ``.collections`` tree.
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _ensure_loader():
    from ansible.utils.collection_loader import AnsibleCollectionConfig

    if AnsibleCollectionConfig.collection_finder is not None:
        return  # installed by tests/conftest.py or by ansible itself
    link = os.path.join(ROOT, ".collections", "ansible_collections", "threshold_kms", "mpc_party")
    if not os.path.islink(link) and not os.path.isdir(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink("../../..", link)
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
    _AnsibleCollectionFinder(paths=[os.path.join(ROOT, ".collections")])._install()


_ensure_loader()

from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_proto  # noqa: E402

try:  # written by the kms_config work; the simulator applies the server's rules with it
    from ansible_collections.threshold_kms.mpc_party.plugins.module_utils import kms_config_schema
except ImportError:  # pragma: no cover
    kms_config_schema = None

__all__ = ["kms_proto", "kms_config_schema", "ROOT"]
