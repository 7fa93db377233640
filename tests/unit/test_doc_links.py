"""The documentation is true to the repository: every relative link resolves, and no page names a
path of one developer's machine.

Pages: README.md, docs/**/*.md and roles/*/README.md. A relative link (inline ``[text](target)``,
reference ``[label]: target`` or an HTML ``href``/``src``) must name a file or directory that exists,
and its ``#anchor``, when given, a heading of the target page (GitHub's anchors: lower case,
punctuation dropped, spaces as hyphens, ``-1``, ``-2`` ... for repeats) or an explicit
``<a id/name=...>``. Links inside code blocks and code spans are text, not links.
"""
import ast
import glob
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HTML_REF = re.compile(r"""\b(?:href|src)\s*=\s*["']([^"']+)["']""")
HTML_ANCHOR = re.compile(r"""<a\s+[^>]*\b(?:id|name)\s*=\s*["']([^"']+)["']""")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

# A repository path named in the text (prose, code span or example command), e.g. `docs/awx.md`.
REPO_PATH = re.compile(r"(?<![\w./~$-])((?:docs|roles|playbooks|plugins|tools|inventories|molecule|tests|changelogs|meta)"
                       r"/[\w./-]*[\w/])(?![\w$<{*-])")
# Paths of a developer's machine. /tmp/... in an example command is generic; these are not.
MACHINE_PATH = re.compile(r"(?<![\w.~-])(/work/|/root/|/home/(?!<|\{|\$|user/|you/|USER/)[A-Za-z0-9_.-]+/)")


def pages():
    found = [os.path.join(ROOT, "README.md")]
    found += glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    found += glob.glob(os.path.join(ROOT, "roles", "*", "README.md"))
    return sorted(p for p in found if os.path.isfile(p))


def prose_lines(text):
    """(line number, line) outside fenced code blocks, with code spans blanked out."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        if match:
            fence = match.group(1)
            continue
        yield number, CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """GitHub's anchor of a heading text."""
    text = re.sub(r"<[^>]+>", "", heading)                 # inline HTML
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    seen, result = {}, set()
    fence = None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            continue
        if match:
            fence = match.group(1)
            continue
        heading = HEADING.match(line)
        if heading:
            base = slug(heading.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            result.add(base if count == 0 else "%s-%d" % (base, count))
        result.update(HTML_ANCHOR.findall(line))
    return result


def links(path):
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    for number, line in prose_lines(text):
        targets = INLINE_LINK.findall(line) + HTML_REF.findall(line)
        ref = REFERENCE_DEF.match(line)
        if ref:
            targets.append(ref.group(1))
        for target in targets:
            yield number, target


def dead_links(path, root=ROOT):
    """[(line, target, why)] of the relative links of one page that do not resolve."""
    dead = []
    for number, target in links(path):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # absolute URL (https:, mailto:, ...)
        file_part, _, anchor = target.partition("#")
        file_part = file_part.split("?", 1)[0]
        if file_part.startswith("/"):
            dead.append((number, target, "absolute path: link relative to the page"))
            continue
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part)) if file_part else path
        if not os.path.exists(resolved):
            dead.append((number, target, "no such file"))
        elif os.path.commonpath([os.path.realpath(resolved), os.path.realpath(root)]) != os.path.realpath(root):
            dead.append((number, target, "outside the repository"))
        elif anchor and resolved.endswith(".md") and os.path.isfile(resolved) and anchor not in anchors(resolved):
            dead.append((number, target, "no heading with anchor #%s" % anchor))
    return dead


def missing_paths(path, root=ROOT):
    """[(line, path)] of repository paths a page names that exist neither from the repository root, nor
    from the page's directory, nor (for a role's own files, e.g. meta/argument_specs.yml) in some role."""
    missing = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            for named in REPO_PATH.findall(line):
                places = [os.path.join(root, named), os.path.join(os.path.dirname(path), named)]
                if any(os.path.exists(p) for p in places) or glob.glob(os.path.join(root, "roles", "*", named)):
                    continue
                missing.append((number, named))
    return missing


def machine_paths(path):
    with open(path, encoding="utf-8") as fh:
        return [(number, line.strip()) for number, line in enumerate(fh, 1) if MACHINE_PATH.search(line)]


PAGES = pages()


def _id(path):
    return os.path.relpath(path, ROOT)


def test_pages_are_found():
    names = {_id(p) for p in PAGES}
    assert "README.md" in names
    assert any(n.startswith("docs" + os.sep) for n in names)
    assert any(n.startswith("roles" + os.sep) for n in names)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_relative_links_resolve(page):
    dead = dead_links(page)
    assert dead == [], "\n".join("%s:%d: %s (%s)" % (_id(page), n, t, why) for n, t, why in dead)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_named_repository_paths_exist(page):
    missing = missing_paths(page)
    assert missing == [], "\n".join("%s:%d: %s does not exist" % (_id(page), n, named) for n, named in missing)


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_no_path_of_a_developer_machine(page):
    found = machine_paths(page)
    assert found == [], "\n".join("%s:%d: %s" % (_id(page), n, line) for n, line in found)


# ---- docs/architecture.md names the modules and filters that exist, and only those -----------
def plugin_names(root=ROOT):
    """({module names}, {filter names}) of the collection: plugins/modules/*.py, and the keys of
    every FilterModule.filters() dict in plugins/filter/*.py."""
    modules = {os.path.basename(p)[:-3] for p in glob.glob(os.path.join(root, "plugins", "modules", "*.py"))
               if not os.path.basename(p).startswith("_")}
    filters = set()
    for path in glob.glob(os.path.join(root, "plugins", "filter", "*.py")):
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == "filters":
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Dict):
                        filters.update(k.value for k in ret.value.keys if isinstance(k, ast.Constant))
    return modules, filters


def plugin_tables(text):
    """{"module": {names}, "filter": {names}}: the first column of the tables headed `| module |`
    and `| filter |` (names in code spans)."""
    found, kind = {"module": set(), "filter": set()}, None
    for line in text.splitlines():
        head = re.match(r"^\|\s*(module|filter)\s*\|", line)
        if head:
            kind = head.group(1)
            continue
        if kind and line.startswith("|"):
            first = line.split("|")[1]
            found[kind].update(re.findall(r"`([a-z0-9_]+)`", first))
        elif not line.startswith("|"):
            kind = None
    return found


def test_architecture_describes_the_plugins_that_exist():
    modules, filters = plugin_names()
    assert modules and filters
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as fh:
        tables = plugin_tables(fh.read())
    assert tables["module"] - modules == set(), "docs/architecture.md lists modules that do not exist"
    assert tables["filter"] - filters == set(), "docs/architecture.md lists filters that do not exist"
    assert modules - tables["module"] == set(), "modules missing from docs/architecture.md, Plugins"
    assert filters - tables["filter"] == set(), "filters missing from docs/architecture.md, Plugins"


def test_plugin_tables_are_read():
    text = "\n".join(["| module | what |", "|---|---|", "| `a_mod` | x `not_me` |", "",
                      "| filter | what |", "|---|---|", "| `f1`, `f2` | y |", "text `outside`"])
    assert plugin_tables(text) == {"module": {"a_mod"}, "filter": {"f1", "f2"}}


# ---- the checker itself: it must see what it is meant to see ------------------------------
def _write(tmp_path, name, text):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def test_checker_finds_a_missing_file_and_anchor(tmp_path):
    _write(tmp_path, "docs/other.md", "# Other page\n\n## The `first` start, step 2\n\n## Repeat\n\n## Repeat\n")
    page = _write(tmp_path, "docs/page.md", "\n".join([
        "# Page",
        "[ok](other.md) [ok](other.md#the-first-start-step-2) [ok](other.md#repeat-1) [ok](#page)",
        "[gone](missing.md) [bad anchor](other.md#nowhere) [web](https://example.org/x.md)",
        "`[not a link](nowhere.md)`",
        "```",
        "[not a link either](nowhere.md)",
        "```",
        "[ref]: ../docs/missing-too.md",
        "<a href=\"other.md#repeat-2\">html</a> [out](../outside/x.md)",
    ]))
    _write(tmp_path, "outside/x.md", "# X\n")
    dead = sorted((t, why) for _, t, why in dead_links(page, root=str(tmp_path / "docs")))
    assert dead == sorted([("missing.md", "no such file"), ("other.md#nowhere", "no heading with anchor #nowhere"),
                           ("../docs/missing-too.md", "no such file"),
                           ("other.md#repeat-2", "no heading with anchor #repeat-2"),
                           ("../outside/x.md", "outside the repository")])


def test_checker_finds_machine_paths(tmp_path):
    page = _write(tmp_path, "x.md", "\n".join([
        "cd /work/main && make", "cp x /root/.ssh/", "ls /home/alice/src", "generic: /home/<user>/src and /tmp/render",
        "/home/user/project", "https://example.org/home/page",
    ]))
    assert [n for n, _ in machine_paths(page)] == [1, 2, 3]


def test_checker_finds_named_paths_that_do_not_exist(tmp_path):
    _write(tmp_path, "docs/here.md", "# Here\n")
    _write(tmp_path, "roles/r/meta/argument_specs.yml", "---\n")
    page = _write(tmp_path, "docs/page.md", "\n".join([
        "see docs/here.md and `docs/gone.md`", "each role's meta/argument_specs.yml", "here.md only",
        "playbooks/old.yml -i inventories/x", "build/iam/deploy-policy-$doc.json and docs/<topic>.md",
    ]))
    assert missing_paths(page, root=str(tmp_path)) == [(1, "docs/gone.md"), (4, "playbooks/old.yml"),
                                                       (4, "inventories/x")]
