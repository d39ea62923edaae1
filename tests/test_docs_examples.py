"""The documentation's examples run, and its links lead somewhere (README "The documentation").

Every ```python block of README.md and docs/*.md runs as a script of its own, in a fresh
interpreter, in an empty directory, with its history in a temporary MILEPOST_HOME: it must exit
with status 0. A block that cannot run here says so in the Markdown, on the line before it:
`<!-- not run: needs a Dask scheduler at tcp://scheduler:8786 -->`, shown as a skip with that
reason. So that markers cannot quietly swallow the examples, at least MIN_RUN blocks must run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NOT_RUN = re.compile(r"<!--\s*not run:\s*(?P<reason>.+?)\s*-->")
# The examples that run today number 18 (README.md and docs/index.md share one); fewer than
# this means a marker or a fence swallowed some.
MIN_RUN = 18
TIMEOUT = 180  # seconds a block may take (the LLM batch job is the longest)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def python_blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        fence = lines[i].strip()
        if fence == "```python":
            end = i + 1
            while lines[end].strip() != "```":
                end += 1
            above = i - 1
            while above >= 0 and not lines[above].strip():
                above -= 1
            marker = NOT_RUN.search(lines[above]) if above >= 0 else None
            code = textwrap.dedent("\n".join(lines[i + 1 : end])) + "\n"
            name = str(page.relative_to(ROOT))
            blocks.append(Block(name, i + 1, code, marker.group("reason") if marker else None))
            i = end + 1
        else:
            i += 1
    return blocks


BLOCKS = [block for page in PAGES for block in python_blocks(page)]


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_example_runs(block: Block, tmp_path: Path) -> None:
    if block.not_run:
        pytest.skip(f"not run: {block.not_run}")
    script = tmp_path / "example.py"
    script.write_text(block.code, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = dict(os.environ)
    env.update(
        MILEPOST_HOME=str(tmp_path / "home"),
        MILEPOST_LIVE_DIR=str(tmp_path / "live"),
        MILEPOST_DISPLAY="none",
        PYTHONDONTWRITEBYTECODE="1",
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    output = f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-6000:]}"
    assert done.returncode == 0, f"{block.id} exited with {done.returncode}\n{output}"


def test_enough_examples_run(summary_lines: list) -> None:
    not_run = [block for block in BLOCKS if block.not_run]
    ran = len(BLOCKS) - len(not_run)
    summary_lines.append(f"documentation examples: {ran} run, {len(not_run)} marked not run")
    summary_lines.extend(f"  not run: {block.id}: {block.not_run}" for block in not_run)
    assert ran >= MIN_RUN, f"only {ran} of {len(BLOCKS)} examples run (at least {MIN_RUN} must)"


LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


@pytest.mark.parametrize("page", PAGES, ids=[str(page.relative_to(ROOT)) for page in PAGES])
def test_relative_links_lead_to_files(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.S)  # code is not links
    broken = []
    for match in LINK.finditer(text):
        target = match.group("target")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # another site, or a place in this page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)} links to files that do not exist: {broken}"


def site_home() -> str:
    """The site's home page: README.md with its links made relative to docs/."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    return readme.replace("](docs/", "](").replace(
        "(https://raw.githubusercontent.com/milepost-dev/milepost/main/docs/", "("
    )


def test_the_site_home_is_the_readme() -> None:
    home = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert home == site_home(), "docs/index.md is the README's copy: `python tests/test_docs_examples.py` writes it"


if __name__ == "__main__":
    (ROOT / "docs" / "index.md").write_text(site_home(), encoding="utf-8")
