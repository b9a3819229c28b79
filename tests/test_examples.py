"""The examples notebook runs headless, so it cannot rot (issue 12)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_notebook_runs_and_plots_inline(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o for o in outputs if "text/html" in o.get("data", {})]
    assert any("radius peaks at R" in o["data"]["text/html"] for o in html)
    assert any("data:image/png;base64," in o["data"]["text/html"] for o in html)
    last = nb.cells[-1].outputs
    printed = "".join(o.get("text", "") for o in last if o.output_type == "stream")
    assert printed.startswith("report.html compare.html") and "inline" in printed
    assert any("image/png" in o.get("data", {}) for o in last)  # plt.plot still shows
    assert (tmp_path / "runs" / "notebook" / "vae" / "report.html").is_file()
    json.dumps(nb)  # the executed notebook is still valid JSON
