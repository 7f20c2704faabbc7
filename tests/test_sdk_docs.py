"""docs/PYTHON.md's training flow runs as written: its ```python blocks of "## A training flow",
in order, in one namespace, from a folder whose examples/parking is a copy of the repository over
the tiny data (as after `make demo`)."""
import contextlib
import io
import os
import re

from sdk_fixtures import ROOT, make_parking_repo, parking_data  # noqa: F401


def section_code(text: str, heading: str) -> list:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_the_training_flow_runs_as_written(parking_data, tmp_path):
    blocks = section_code((ROOT / "docs" / "PYTHON.md").read_text(), "A training flow")
    assert len(blocks) >= 6
    make_parking_repo(tmp_path / "examples" / "parking", parking_data)
    namespace = {"__name__": "python_md"}
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with contextlib.redirect_stdout(out):
            for i, block in enumerate(blocks):
                exec(compile(block, f"PYTHON.md block {i}", "exec"), namespace)
    finally:
        os.chdir(cwd)
        if "store" in namespace:
            namespace["store"].close()
    printed = out.getvalue()
    assert "test AUC" in printed
    # The model learned something (the labels depend on the payment history).
    test_auc = float(re.search(r"test AUC ([0-9.]+)", printed).group(1))
    assert test_auc > 0.6, printed
    report = namespace["report"]
    assert report.ok and report["customer_profile"].entities_written > 0
    frame = namespace["frame"]
    assert frame["risk"].between(0, 1).all() and len(frame) == 5
    assert namespace["status"]["customer_profile"].watermark is not None
