"""The README's layout section names every package and module of the tree, and nothing else.

A newcomer reads the layout to find where an idea lives; a module missing from it, or a line
naming one that moved, sends them to the wrong place.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "shadowtap"


def layout_entries(readme: str) -> dict[str, str]:
    """``{path below shadowtap/: its line's description}`` from the Layout section's tree."""
    section = readme.split("\n## Layout\n", 1)[1]
    block = section.split("```\n", 2)[1]
    lines = block.splitlines()
    assert lines[0] == "shadowtap/", lines[0]
    entries: dict[str, str] = {}
    parents: list[str] = []
    for line in lines[1:]:
        indent = len(line) - len(line.lstrip(" "))
        depth = indent // 2
        name, _, description = line.strip().partition(" ")
        assert indent % 2 == 0 and 1 <= depth <= len(parents) + 1, f"misindented: {line!r}"
        del parents[depth - 1 :]
        path = "".join(parents) + name
        entries[path] = description.strip()
        if name.endswith("/"):
            parents.append(name)
    return entries


def tree_entries() -> set[str]:
    """Every package (``name/``) and module below shadowtap/, ``__init__``/``__main__`` aside."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if path.name in ("__init__.py", "__main__.py"):
            if rel.parent != Path(".") and path.name == "__init__.py":
                found.add(f"{rel.parent.as_posix()}/")
            continue
        found.add(rel.as_posix())
    return found


def test_layout_section_matches_the_tree() -> None:
    entries = layout_entries((ROOT / "README.md").read_text())
    tree = tree_entries()
    assert sorted(tree - entries.keys()) == [], "modules missing from the README's Layout"
    assert sorted(entries.keys() - tree) == [], "Layout lines naming no module of the tree"
    assert [p for p, text in entries.items() if not text] == [], "lines without a description"


def test_layout_parser_reads_nesting() -> None:
    readme = (
        "intro\n## Layout\n\ntext\n\n```\nshadowtap/\n  a.py      one\n  pkg/      two\n"
        "    b.py    three\n    sub/    four\n      c.py  five\n  d.py      six\n```\n"
    )
    assert layout_entries(readme) == {
        "a.py": "one",
        "pkg/": "two",
        "pkg/b.py": "three",
        "pkg/sub/": "four",
        "pkg/sub/c.py": "five",
        "d.py": "six",
    }
