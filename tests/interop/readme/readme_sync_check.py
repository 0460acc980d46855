"""Checks that the code in README.md's "Using it from several languages"
section is the code readme_test runs: every code block there must be
preceded by a line naming its file (`tests/interop/readme/...`), and its
lines must appear in that file in the same order (indentation aside, and
lines may be left out, so a block may be an excerpt).

    readme_sync_check.py README.md ROOT
"""

from __future__ import annotations

import re
import sys
from typing import List, Tuple

SECTION = "## Using it from several languages"
FILE_REFERENCE = re.compile(r"`(tests/interop/readme/[^`]+)`")


def blocks(readme: str) -> List[Tuple[str, List[str]]]:
    """(file named before the block, the block's lines) for each code block."""
    start = readme.index(SECTION)
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end >= 0 else len(readme)]
    found = []
    named = None
    lines = iter(section.splitlines())
    for line in lines:
        if line.startswith("```"):
            body = []
            for code in lines:
                if code.startswith("```"):
                    break
                body.append(code)
            if line.strip() not in ("```sh", "```console"):
                found.append((named, body))
            named = None
            continue
        reference = FILE_REFERENCE.search(line)
        if reference:
            named = reference.group(1)
    return found


def contains(text: List[str], excerpt: List[str]) -> bool:
    """Every non-blank excerpt line is a line of text, in the same order
    (lines may be left out between them, and indentation differs)."""
    have = iter(line.strip() for line in text)
    return all(
        any(line == wanted for line in have)
        for wanted in (line.strip() for line in excerpt)
        if wanted
    )


def main() -> int:
    readme_path, root = sys.argv[1], sys.argv[2]
    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    if SECTION not in readme:
        print(f"README.md has no section {SECTION!r}", file=sys.stderr)
        return 1
    failures = 0
    found = blocks(readme)
    for named, body in found:
        if named is None:
            print("a code block without a tests/interop/readme/ file before it:")
            print("\n".join(body[:3]))
            failures += 1
            continue
        with open(f"{root}/{named}", encoding="utf-8") as f:
            source = f.read().splitlines()
        if not contains(source, body):
            print(f"README.md's block for {named} is not in that file (any more)")
            failures += 1
        else:
            print(f"ok: {named}")
    if not found:
        print("no code blocks in the section", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
