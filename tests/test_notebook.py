"""Jupyter, as users meet it: notebooks executed by nbclient in a real kernel, on a base install
(rich hidden from the kernel) and with the extras; the saved outputs are what is checked."""

from __future__ import annotations

from typing import List

import nbformat
import pytest
from nbclient import NotebookClient

JOB = """\
import time, milepost
with milepost.Run("nb-job", history=False{display}) as run:
    with run.phase("map", total=40) as ph:
        for i in range(40):
            with ph.item(f"doc-{{i}}"):
                time.sleep(0.01)
        ph.fail("doc-<b>bad</b>", "Boom <script>")
    run.log("finished <i>all</i>")
run
"""


def _execute(first: str, job: str) -> nbformat.NotebookNode:
    """Runs the two cells in a fresh kernel of this Python (the installed milepost)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(first), nbformat.v4.new_code_cell(job)]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    return nb


def _html(nb: nbformat.NotebookNode) -> List[str]:
    return [o["data"]["text/html"] for o in nb.cells[1]["outputs"] if "text/html" in o.get("data", {})]


@pytest.mark.parametrize(
    "first",
    [
        'import sys; sys.modules["rich"] = None  # a base install: no rich',
        "import rich  # the extras",
    ],
)
def test_a_run_in_a_notebook_leaves_its_final_frame_as_an_output(first: str) -> None:
    nb = _execute(first, JOB.format(display=""))
    outputs = nb.cells[1]["outputs"]
    assert not [o for o in outputs if o["output_type"] == "error"], outputs
    shown = _html(nb)
    assert len(shown) == 2, "one output updated in place, then the run as the cell's value"
    final = shown[0]
    assert "✓ nb-job" in final and "41/40" in final and "completed" in final, final
    assert final.count("Boom") == 1, "the newest failure once, on the frame"
    assert "finished &lt;i&gt;all&lt;/i&gt;" in final and "&lt;script&gt;" in final, "text, escaped"
    assert "<script>" not in final and "\x1b[" not in final
    assert shown[1].startswith('<pre class="milepost"') and "completed" in shown[1]


def test_asking_for_rich_without_ipywidgets_still_shows_the_run() -> None:
    nb = _execute("import rich", JOB.format(display=', display="rich"'))
    final = _html(nb)[0]
    assert "✓ nb-job" in final and "completed" in final, final
