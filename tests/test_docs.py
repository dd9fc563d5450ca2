"""The Portuguese docs cannot drift from the English ones: the same settings, the same commands, the same JSON.

The README is one screen and the topics are pages under docs/, each with its Brazilian Portuguese twin of the same
name under docs/pt-BR/. For the two READMEs and for each page pair: the variable tables (header `| variable |` or
`| variável |`) name the same variables, the shell examples run the same commands (comments may be translated),
the JSON examples are identical, and every internal link resolves, anchors included. The configuration page's
tables name exactly what .env.example lists (tests/e2e/test_deploy.py checks that .env.example lists exactly what
the code reads). So a row, a curl or a section added to one language and not to the other fails here, and says
which.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT / "README.md"
PORTUGUESE = ROOT / "README.pt-BR.md"
DOCS = ROOT / "docs"
PT_DOCS = DOCS / "pt-BR"
# The topic pages the README links to, in both languages (docs/ARCHITECTURE.md and the like are English only).
PAGES = [
    "api",
    "sources",
    "webhook",
    "answering",
    "routes",
    "monitoring",
    "configuration",
    "deploy",
    "troubleshooting",
    "development",
]
PAIRS = [(ENGLISH, PORTUGUESE)] + [(DOCS / f"{page}.md", PT_DOCS / f"{page}.md") for page in PAGES]
ALL = [path for pair in PAIRS for path in pair]
CONFIGURATION = (DOCS / "configuration.md", PT_DOCS / "configuration.md")
README_MAX_LINES = 250  # one screen, with room for the ASCII diagram and the batch
VARIABLE_HEADERS = {"variable", "variável"}
SHELL = {"bash", "sh", "shell"}
NAME = r"`([A-Z][A-Z0-9_]*)`"
# A fenced block, possibly indented inside a list item: (indent, info string, body).
FENCE = re.compile(r"^([ \t]*)```([\w-]*)[ \t]*\n(.*?)^\1```[ \t]*$", re.M | re.S)
LINK = re.compile(r"\]\(([^)\s]+)\)")


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def pair_id(pair: tuple[Path, Path]) -> str:
    return pair[0].stem if pair[0].parent == DOCS else "README"


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def variable_tables(text: str) -> list[list[list[str]]]:
    """The data rows (as cells) of every table whose first header cell is `variable` / `variável`."""
    tables, lines = [], text.splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.startswith("|") and cells(line)[0].lower() in VARIABLE_HEADERS and lines[i + 1].startswith("| ---"):
            rows = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                rows.append(cells(row))
            tables.append(rows)
    return tables


def documented_variables(path: Path) -> list[str]:
    """Every variable the file's variable tables name; a row may name several (`A`, `B`)."""
    names = []
    for rows in variable_tables(path.read_text()):
        for row in rows:
            first = row[0]
            assert re.fullmatch(rf"{NAME}(, {NAME})*", first), f"{name(path)}: not a variable row: {row}"
            names += re.findall(NAME, first)
    return names


def example_variables() -> set[str]:
    """The variables .env.example names, commented-out ones included (as tests/e2e/test_deploy.py reads it)."""
    return set(re.findall(r"^#?[ \t]*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))


def fenced_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, dedented body) of every fenced code block, in order."""
    return [(info, textwrap.dedent(body)) for _, info, body in FENCE.findall(path.read_text())]


def shell_commands(path: Path) -> list[str]:
    """The commands of the shell examples: continuations joined, comments (which may be translated) dropped."""
    commands = []
    for info, body in fenced_blocks(path):
        if info in SHELL:
            for line in re.sub(r"\\\n", " ", body).splitlines():
                command = re.sub(r"\s+#\s.*$", "", line).strip()
                if command and not command.startswith("#"):
                    commands.append(re.sub(r"\s+", " ", command))
    return commands


def json_blocks(path: Path) -> list[str]:
    return [body for info, body in fenced_blocks(path) if info == "json"]


def outside_code(path: Path) -> str:
    """The file without its fenced blocks and HTML comments (neither holds links or headings)."""
    return re.sub(r"<!--.*?-->", "", FENCE.sub("", path.read_text()), flags=re.S)


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped (letters with accents kept), spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", outside_code(path), re.M)}


def local_links(path: Path) -> list[str]:
    return [t for t in LINK.findall(outside_code(path)) if not t.startswith(("http://", "https://", "mailto:"))]


def test_every_page_has_its_twin_and_no_twin_is_an_orphan() -> None:
    english = {p.stem for p in DOCS.glob("*.md")}
    portuguese = {p.stem for p in PT_DOCS.glob("*.md")}
    assert set(PAGES) - english == set(), "topic pages missing from docs/"
    assert set(PAGES) - portuguese == set(), "topic pages missing from docs/pt-BR/"
    assert portuguese - set(PAGES) == set(), "docs/pt-BR/ has a page PAGES (and so the README) does not list"


def test_each_readme_links_to_the_other_on_its_first_line() -> None:
    assert "[README.pt-BR.md](README.pt-BR.md)" in ENGLISH.read_text().splitlines()[0]
    assert "[README.md](README.md)" in PORTUGUESE.read_text().splitlines()[0]


@pytest.mark.parametrize("page", PAGES)
def test_each_page_links_to_its_twin_below_its_title(page: str) -> None:
    english, portuguese = DOCS / f"{page}.md", PT_DOCS / f"{page}.md"
    assert f"(pt-BR/{page}.md)" in "\n".join(english.read_text().splitlines()[:4]), f"docs/{page}.md"
    assert f"(../{page}.md)" in "\n".join(portuguese.read_text().splitlines()[:4]), f"docs/pt-BR/{page}.md"


@pytest.mark.parametrize("path", [ENGLISH, PORTUGUESE], ids=name)
def test_the_readme_is_one_screen_that_links_every_page_in_its_language(path: Path) -> None:
    lines = path.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"{name(path)} has {len(lines)} lines: move a topic to a page under docs/"
    folder = "docs/pt-BR" if path == PORTUGUESE else "docs"
    targets = {target.split("#")[0] for target in local_links(path)}
    missing = [page for page in PAGES if f"{folder}/{page}.md" not in targets]
    assert missing == [], f"{name(path)} does not link to these pages of {folder}/"
    assert "./dev run" in path.read_text() and "./dev test" in path.read_text()


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_both_languages_document_the_same_variables(pair: tuple[Path, Path]) -> None:
    english, portuguese = (documented_variables(path) for path in pair)
    for path, names in zip(pair, (english, portuguese), strict=True):
        assert len(names) == len(set(names)), f"{name(path)} documents a variable twice"
    assert set(english) - set(portuguese) == set(), f"documented in {name(pair[0])} but not in {name(pair[1])}"
    assert set(portuguese) - set(english) == set(), f"documented in {name(pair[1])} but not in {name(pair[0])}"


@pytest.mark.parametrize("path", CONFIGURATION, ids=name)
def test_the_configuration_page_documents_exactly_the_variables_the_code_reads(path: Path) -> None:
    names = documented_variables(path)
    assert len(names) > 40  # the parser found the tables
    documented, known = set(names), example_variables()
    assert documented - known == set(), f"{name(path)} documents variables nothing reads (not in .env.example)"
    assert known - documented == set(), f"{name(path)} does not document these variables of .env.example"


def test_no_other_page_keeps_a_variable_table() -> None:
    """One place per variable: a second table would drift from the configuration page."""
    others = [name(path) for path in ALL if path not in CONFIGURATION and variable_tables(path.read_text())]
    assert others == [], "variable tables belong on docs/configuration.md (and its twin)"


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_both_languages_show_the_same_commands_and_json(pair: tuple[Path, Path]) -> None:
    english, portuguese = (shell_commands(path) for path in pair)
    first, second = (name(path) for path in pair)
    assert [c for c in english if c not in portuguese] == [], f"commands of {first} missing from {second}"
    assert [c for c in portuguese if c not in english] == [], f"commands of {second} missing from {first}"
    assert sorted(english) == sorted(portuguese), "a command is shown a different number of times"
    assert json_blocks(pair[0]) == json_blocks(pair[1]), "the JSON examples differ (they are not translated)"
    languages = [[info for info, _ in fenced_blocks(path)] for path in pair]
    assert languages[0] == languages[1], f"{first} and {second} do not have the same code blocks in the same order"


def test_the_parsers_found_the_examples() -> None:
    assert sum(len(shell_commands(english)) for english, _ in PAIRS) > 40
    assert sum(len(json_blocks(english)) for english, _ in PAIRS) > 10


@pytest.mark.parametrize("path", ALL, ids=name)
def test_links_resolve(path: Path) -> None:
    for target in local_links(path):
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        assert resolved.exists(), f"{name(path)}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{name(path)}: no heading for the link {target}"


@pytest.mark.parametrize("path", [PORTUGUESE, *(PT_DOCS / f"{page}.md" for page in PAGES)], ids=name)
def test_portuguese_pages_link_to_portuguese_pages(path: Path) -> None:
    """Past the language switch at the top, a Portuguese reader stays in Portuguese where a twin exists."""
    links = local_links(path)[1:]  # the first link is the switch to the English twin
    english = {(DOCS / f"{page}.md").resolve() for page in PAGES} | {ENGLISH.resolve()}
    wrong = [t for t in links if t.split("#")[0] and (path.parent / t.split("#")[0]).resolve() in english]
    assert wrong == [], f"{name(path)} links to English pages that have a Portuguese twin"


@pytest.mark.parametrize("path", [ENGLISH, *(DOCS / f"{page}.md" for page in PAGES)], ids=name)
def test_english_pages_link_to_english_pages(path: Path) -> None:
    links = local_links(path)[1:]  # the first link is the switch to the Portuguese twin
    portuguese = {p.resolve() for p in PT_DOCS.glob("*.md")} | {PORTUGUESE.resolve()}
    wrong = [t for t in links if t.split("#")[0] and (path.parent / t.split("#")[0]).resolve() in portuguese]
    assert wrong == [], f"{name(path)} links to Portuguese pages"
