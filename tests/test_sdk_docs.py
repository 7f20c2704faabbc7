"""docs/PYTHON.md's training flow runs as written: the ```sh block of "## A training flow" (the
copy of examples/parking and its data, made by the commands shown, in a temporary folder instead
of /tmp/parking), then its ```python blocks in order, in one namespace, from inside the copy."""
import contextlib
import io
import os
import re
import subprocess

from sdk_fixtures import GRANARY_BIN, ROOT


def section_code(text: str, heading: str, language: str = "python") -> list:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def run_setup(commands: str, folder) -> None:
    """The shell block's commands from the project's root, with `folder` for /tmp/parking and the
    build under test for build/granary; the last line (cd and start Python) is this process."""
    lines = commands.strip().splitlines()
    assert lines[-1].startswith("cd /tmp/parking && PYTHONPATH=$OLDPWD/build/python "), lines[-1]
    for line in lines[:-1]:
        line = line.replace("/tmp/parking", str(folder)).replace("build/granary", str(GRANARY_BIN))
        proc = subprocess.run(["bash", "-c", line], cwd=ROOT, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, f"{line}\n{proc.stdout}\n{proc.stderr}"


def test_the_training_flow_runs_as_written(tmp_path):
    text = (ROOT / "docs" / "PYTHON.md").read_text()
    setup = section_code(text, "A training flow", "sh")
    assert len(setup) == 1
    blocks = section_code(text, "A training flow")
    assert len(blocks) >= 6
    folder = tmp_path / "parking"
    run_setup(setup[0], folder)
    assert (folder / "granary.yaml").exists() and (folder / "data" / "datagen.json").exists()
    namespace = {"__name__": "python_md"}
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(folder)
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
