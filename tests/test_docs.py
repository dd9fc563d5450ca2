"""README.pt-BR.md cannot drift from README.md: the same settings, the same commands, the same JSON.

Both READMEs' variable tables (header `| variable |` or `| variável |`) must name the same variables, and
exactly the ones .env.example lists (tests/e2e/test_deploy.py checks that .env.example lists exactly what
the code reads). Their shell examples must run the same commands (comments may be translated), their JSON
examples must be identical, and their internal links must resolve. So a row, a curl or a section added to
one README and not to the other fails here, and says which.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT / "README.md"
PORTUGUESE = ROOT / "README.pt-BR.md"
READMES = [ENGLISH, PORTUGUESE]
CONFIGURATION_HEADINGS = {ENGLISH: "## Configuration", PORTUGUESE: "## Configuração"}
VARIABLE_HEADERS = {"variable", "variável"}
SHELL = {"bash", "sh", "shell"}
NAME = r"`([A-Z][A-Z0-9_]*)`"
# A fenced block, possibly indented inside a list item: (indent, info string, body).
FENCE = re.compile(r"^([ \t]*)```([\w-]*)[ \t]*\n(.*?)^\1```[ \t]*$", re.M | re.S)


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
    """Every variable the README's variable tables name; a row may name several (`A`, `B`)."""
    text = path.read_text()
    tables = variable_tables(text)
    heading = CONFIGURATION_HEADINGS[path]
    assert heading in text.splitlines(), f"{path.name} has no '{heading}' section"
    configuration = text.split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    assert variable_tables(configuration), f"{path.name}: no `| variable |` table under '{heading}'"
    names = []
    for rows in tables:
        for row in rows:
            first = row[0]
            assert re.fullmatch(rf"{NAME}(, {NAME})*", first), f"{path.name}: not a variable row: {row}"
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


def test_each_readme_links_to_the_other_on_its_first_line() -> None:
    assert "[README.pt-BR.md](README.pt-BR.md)" in ENGLISH.read_text().splitlines()[0]
    assert "[README.md](README.md)" in PORTUGUESE.read_text().splitlines()[0]


def test_both_readmes_document_the_same_variables() -> None:
    english, portuguese = documented_variables(ENGLISH), documented_variables(PORTUGUESE)
    for path, names in ((ENGLISH, english), (PORTUGUESE, portuguese)):
        assert len(names) == len(set(names)), f"{path.name} documents a variable twice"
    assert len(english) > 40  # the parser found the tables
    assert set(english) - set(portuguese) == set(), "documented in README.md but not in README.pt-BR.md"
    assert set(portuguese) - set(english) == set(), "documented in README.pt-BR.md but not in README.md"


@pytest.mark.parametrize("path", READMES, ids=lambda p: p.name)
def test_the_readmes_document_exactly_the_variables_the_code_reads(path: Path) -> None:
    documented, known = set(documented_variables(path)), example_variables()
    assert documented - known == set(), f"{path.name} documents variables nothing reads (not in .env.example)"
    assert known - documented == set(), f"{path.name} does not document these variables of .env.example"


def test_both_readmes_show_the_same_commands_and_json() -> None:
    english, portuguese = shell_commands(ENGLISH), shell_commands(PORTUGUESE)
    assert len(english) > 20  # the parser found the examples
    assert [c for c in english if c not in portuguese] == [], "commands of README.md missing from README.pt-BR.md"
    assert [c for c in portuguese if c not in english] == [], "commands of README.pt-BR.md missing from README.md"
    assert sorted(english) == sorted(portuguese), "a command is shown a different number of times"

    def json_blocks(path: Path) -> list[str]:
        return [body for info, body in fenced_blocks(path) if info == "json"]

    assert json_blocks(ENGLISH) == json_blocks(PORTUGUESE), "the JSON examples differ (they are not translated)"
    languages = [[info for info, _ in fenced_blocks(path)] for path in READMES]
    assert languages[0] == languages[1], "the READMEs do not have the same code blocks in the same order"


def github_anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped (letters with accents kept), spaces to '-'."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("path", READMES, ids=lambda p: p.name)
def test_links_resolve(path: Path) -> None:
    text = path.read_text()
    outside_code = FENCE.sub("", text)
    anchors = {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", outside_code, re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", outside_code):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in anchors, f"{path.name}: no heading for the link {target}"
        else:
            assert (ROOT / target.split("#")[0]).exists(), f"{path.name}: {target} does not exist"
