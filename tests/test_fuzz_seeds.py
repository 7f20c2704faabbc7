"""The definitions fuzzer's seed of a real repository (scripts/fuzz-seed-definitions, run by
scripts/fuzz) holds exactly the objects of examples/parking: `granary plan` over the one merged
document adds the same objects as over the example's own files."""
import re
import shutil
import subprocess

from conftest import ROOT


def planned_objects(cli_bin, repo):
    proc = subprocess.run([str(cli_bin), "-C", str(repo), "plan"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    objects = sorted(line.strip() for line in proc.stdout.splitlines()
                     if re.match(r"\s+\+ ", line))
    assert objects, proc.stdout
    return objects


def test_the_seed_holds_every_object_of_the_example(granary_bin, tmp_path):
    example = tmp_path / "example"
    example.mkdir()
    for f in (ROOT / "examples" / "parking").glob("*.yaml"):
        shutil.copy(f, example / f.name)
    seeded = tmp_path / "seeded"
    seeded.mkdir()
    shutil.copy(example / "granary.yaml", seeded / "granary.yaml")
    seed = subprocess.run([str(ROOT / "scripts" / "fuzz-seed-definitions"), str(example)],
                          capture_output=True, text=True, timeout=60)
    assert seed.returncode == 0, seed.stderr
    (seeded / "all.yaml").write_text(seed.stdout)
    assert planned_objects(granary_bin, seeded) == planned_objects(granary_bin, example)


def test_a_file_not_in_block_form_is_refused_with_its_line(tmp_path):
    (tmp_path / "granary.yaml").write_text("project: p\n")
    (tmp_path / "defs.yaml").write_text("entities: []\n")
    seed = subprocess.run([str(ROOT / "scripts" / "fuzz-seed-definitions"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert seed.returncode != 0
    assert "defs.yaml:1:" in seed.stderr and "block form" in seed.stderr
