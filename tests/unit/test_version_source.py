"""galaxy.yml is the one place the collection's version is written.

The Makefile reads it (``VERSION``), the tarball ``make build`` leaves carries no version in its
name (execution-environment.yml needs none), and the docs do not repeat it. Allowed elsewhere:

* the changelog history (changelogs/, CHANGELOG.rst) and ``version_added:`` in plugin
  documentation (the version a plugin first shipped in, which stays when the version moves on);
* ``COLLECTION_VERSION`` in plugins/module_utils/aws_retry.py, the user agent of every AWS call:
  module_utils run inside a module's payload, where galaxy.yml cannot be read, so it is a copy,
  and this test fails unless it equals galaxy.yml's.

tests/ is not scanned: a version-like image tag in a test's input is data, not a version holder.
"""
import os
import re
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SKIP_DIRS = ("changelogs/", "tests/", ".git/")
SKIP_FILES = ("galaxy.yml", "CHANGELOG.rst")
ALLOWED_LINE = re.compile(r"^\s*version_added:\s")
RUNTIME_COPY = ("plugins/module_utils/aws_retry.py", re.compile(r'^COLLECTION_VERSION = "([^"]+)"', re.M))


def galaxy_version(root=ROOT):
    with open(os.path.join(root, "galaxy.yml")) as fh:
        return str(yaml.safe_load(fh)["version"])


def repository_files(root=ROOT):
    """Files git knows or would add (tracked, and untracked but not ignored)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=root,
                         capture_output=True, check=True).stdout.decode()
    return sorted({name for name in out.split("\0") if name and os.path.isfile(os.path.join(root, name))})


def hard_coded(version, files, root=ROOT):
    """[(file, line number, line)] where ``version`` is written outside the allowed places."""
    token = re.compile(r"(?<![\w.])%s(?![\w-]|\.\d)" % re.escape(version))
    found = []
    for name in files:
        if name.startswith(SKIP_DIRS) or name in SKIP_FILES:
            continue
        try:
            with open(os.path.join(root, name), encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (UnicodeDecodeError, OSError):
            continue  # binary
        for number, line in enumerate(lines, 1):
            if not token.search(line) or ALLOWED_LINE.match(line):
                continue
            if name == RUNTIME_COPY[0] and RUNTIME_COPY[1].match(line):
                continue
            found.append((name, number, line.strip()))
    return found


def test_only_galaxy_yml_writes_the_version():
    version = galaxy_version()
    assert re.match(r"^\d+\.\d+\.\d+", version), version
    found = hard_coded(version, repository_files())
    assert found == [], "the version %s is written outside galaxy.yml:\n%s" % (
        version, "\n".join("%s:%d: %s" % f for f in found))


def test_the_runtime_copy_equals_galaxy_yml():
    with open(os.path.join(ROOT, RUNTIME_COPY[0])) as fh:
        match = RUNTIME_COPY[1].search(fh.read())
    assert match, "COLLECTION_VERSION not found in %s" % RUNTIME_COPY[0]
    assert match.group(1) == galaxy_version(), "%s says %s, galaxy.yml %s" % (RUNTIME_COPY[0], match.group(1),
                                                                            galaxy_version())


def test_the_makefile_reads_the_version_from_galaxy_yml():
    proc = subprocess.run(["make", "-s", "-f", os.path.join(ROOT, "Makefile"), "--no-print-directory", "-C", ROOT,
                           "--eval", "print-version: ; @echo $(VERSION) $(COLLECTION_TARBALL)", "print-version"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [galaxy_version(), "build/threshold_kms-mpc_party.tar.gz"]


def test_the_scan_finds_a_hard_coded_version(tmp_path):
    files = {
        "docs/a.md": "make build  # build/threshold_kms-mpc_party-1.4.2.tar.gz\n",
        "ee.yml": "tag: ee:1.4.2\n",
        "plugins/modules/m.py": "version_added: 1.4.2\n",
        "docs/net.md": "cidr 11.4.2.0/24 and 1.4.20 and v1.4.2-rc\n",
        "changelogs/changelog.yaml": "releases:\n  1.4.2: {}\n",
        "tests/unit/t.py": "IMAGE = 'ee:1.4.2'\n",
        RUNTIME_COPY[0]: 'COLLECTION_VERSION = "1.4.2"\nUA = "x/1.4.2"\n',
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    found = [(name, number) for name, number, _ in hard_coded("1.4.2", sorted(files), root=str(tmp_path))]
    assert found == [("docs/a.md", 1), ("ee.yml", 1), (RUNTIME_COPY[0], 2)]
