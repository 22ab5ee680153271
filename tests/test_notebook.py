"""notebooks/course_week2.ipynb runs headless from top to bottom, as a learner would run it, on the course's files."""

import re
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "course_week2.ipynb"


def _text(cell) -> str:
    """Everything a code cell showed: its printed lines and its displayed text."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/markdown", "") + output["data"].get("text/html", ""))
    return "".join(parts)


def test_the_notebook_is_stored_without_outputs():
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.slow
@pytest.mark.realdata
def test_the_course_notebook_runs_headless(real_data, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # Run where it lies (it finds images/ beside itself); its runs go to temporary folders.
    NotebookClient(notebook, timeout=600, resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    shown = [_text(cell) for cell in notebook.cells if cell.cell_type == "code"]
    course = next(text for text in shown if "Cost after iteration 0:" in text)
    costs = {int(i): float(c) for i, c in re.findall(r"Cost after iteration (\d+): ([\d.]+)", course)}
    assert costs[0] == pytest.approx(0.693147, abs=2.5e-6) and costs[1900] == pytest.approx(0.140872, abs=2.5e-6)
    assert course.count("\n") < 40  # the 20 cost lines and little else
    assert "kerasreg run" in course and "data:image/png;base64," in course  # the run's card, with its pictures
    assert any("train accuracy: 99.04%   test accuracy: 70%" in text for text in shown)
    assert any("15 of 50 test pictures misclassified" in text for text in shown)
    table = next(text for text in shown if "LogisticRegressionCV" in text)
    assert "| the course's recipe (preset='course') | 99.04% | 70% |" in table
