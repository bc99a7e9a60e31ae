"""Every notebook in notebooks/ runs top to bottom (small variant) and shows its figures."""

import glob
import os

import nbclient
import nbformat
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(REPO, "notebooks", "*.ipynb")))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_runs_and_shows_figures(path, data_dir, monkeypatch, tmp_path):
  monkeypatch.setenv("AIGC_JAX_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("AIGC_JAX_NOTEBOOK_DIR", str(tmp_path))  # a fresh run, never a finished one
  monkeypatch.setenv("AIGC_JAX_DATA", data_dir)
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  # The kernel is a fresh process (one CPU device, not the session's 8); it compiles without
  # LLVM's optimisations like the rest of the tests (conftest.py): its runs are small.
  monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0")
  nb = nbformat.read(path, as_version=4)
  nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": REPO}}).execute()
  images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
  assert len(images) >= 2, "the notebook should show its plots"
  errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
  assert not errors
