"""The READMEs' Python examples run as written.

A block fenced ```python right after a ``<!-- python-example -->`` line is
run in a fresh interpreter (with /dev/shm/ replaced by a temporary
directory); it must exit 0, print nothing on stderr, and leave no file
behind. When the block is followed by an "Output:" line and a fenced block,
its stdout must be exactly that. Every Python block of
bindings/python/README.md is such an example.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
from typing import List, NamedTuple, Optional

import pytest

import mmap_ringbuffer

HERE = pathlib.Path(os.path.abspath(__file__)).parent
# In a checkout and in Bazel's runfiles alike: bindings/python/tests/.
PACKAGE_README = HERE.parent / "README.md"
ROOT_README = HERE.parent.parent.parent / "README.md"

MARKER = "<!-- python-example -->"
FENCE = re.compile(r"^```(\w*)\s*$")


class Example(NamedTuple):
    readme: str
    line: int
    code: str
    output: Optional[str]


def blocks(text: str) -> List[tuple[int, str, str, str]]:
    """(first line number, language, body, the line before) of each fenced
    block of a Markdown text."""
    found = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        end = index + 1
        while not lines[end].startswith("```"):
            end += 1
        before = lines[index - 1] if index > 0 else ""
        body = "\n".join(lines[index + 1 : end]) + "\n"
        found.append((index + 1, opening.group(1), body, before))
        index = end + 1
    return found


def examples(readme: pathlib.Path, label: str) -> List[Example]:
    found = blocks(readme.read_text())
    result = []
    for position, (line, language, body, before) in enumerate(found):
        if language != "python" or before.strip() != MARKER:
            continue
        output = None
        following = readme.read_text().splitlines()[line:]
        after_code = "\n".join(following).split("```", 1)[1].lstrip("\n")
        if after_code.startswith("Output:") and position + 1 < len(found):
            output = found[position + 1][2]
        result.append(Example(label, line, body, output))
    return result


ALL_EXAMPLES = examples(PACKAGE_README, "bindings/python/README.md") + examples(
    ROOT_README, "README.md"
)


def test_every_python_block_of_the_package_readme_is_run() -> None:
    python_blocks = [b for b in blocks(PACKAGE_README.read_text()) if b[1] == "python"]
    assert python_blocks
    for line, _, _, before in python_blocks:
        assert before.strip() == MARKER, f"README.md:{line} is not marked"


def test_the_root_readme_python_section_is_an_example() -> None:
    assert examples(ROOT_README, "README.md")
    assert "## Python" in ROOT_README.read_text()


@pytest.mark.parametrize(
    "example", ALL_EXAMPLES, ids=[f"{e.readme}:{e.line}" for e in ALL_EXAMPLES]
)
def test_example_runs(example: Example, tmp_path: pathlib.Path) -> None:
    code = example.code.replace("/dev/shm/", f"{tmp_path}/")
    # Not resolved: under Bazel the package's files are symlinks into the
    # source tree, which lacks the built extension that runfiles hold.
    package_parent = pathlib.Path(
        os.path.abspath(mmap_ringbuffer.__file__)
    ).parent.parent
    env = dict(os.environ, PYTHONPATH=str(package_parent))
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert result.stderr == ""
    assert result.returncode == 0
    if example.output is not None:
        assert result.stdout == example.output
    assert list(tmp_path.iterdir()) == []  # the example cleans up
