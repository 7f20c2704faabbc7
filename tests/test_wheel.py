"""`make wheel` (scripts/wheel): the SDK that `make build` built, packed as a wheel without compiling
again; pip installs it and the installed package serves a repository."""
import os
import pathlib
import subprocess
import sys
import zipfile

from conftest import ROOT

BUILD = pathlib.Path(os.environ.get("GRANARY_PYTHONPATH", ROOT / "build" / "python")).parent


def test_the_wheel_of_the_build_installs_and_imports(granary_bin, tmp_path):
    made = subprocess.run([sys.executable, str(ROOT / "scripts" / "wheel"), str(BUILD),
                           str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stdout + made.stderr
    wheels = list((tmp_path / "dist").glob("granary-0.1.0-cp311-cp311-*.whl"))
    assert len(wheels) == 1, made.stdout
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "granary/__init__.py" in names and "granary/feature_store.py" in names
    assert any(n.startswith("granary/_granary") and n.endswith(".so") for n in names)
    assert "granary-0.1.0.dist-info/RECORD" in names

    # pip accepts it (hashes, tags, metadata); --target keeps the .venv as it is.
    site = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                                "--target", str(site), str(wheels[0])],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The installed module's run path is the installed layout's, not the build's.
    module = next((site / "granary").glob("_granary*.so"))
    dynamic = subprocess.run(["readelf", "-d", str(module)], capture_output=True, text=True)
    assert "$ORIGIN/../pyarrow" in dynamic.stdout and str(BUILD) not in dynamic.stdout

    # The installed package, and not the build's, opens a repository and reads it.
    subprocess.run([str(granary_bin), "init", "w"], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run([str(granary_bin), "-C", "w", "apply"], cwd=tmp_path, check=True,
                   capture_output=True)
    script = ("import granary, sys\n"
              "assert granary.__file__.startswith(sys.argv[1]), granary.__file__\n"
              "store = granary.FeatureStore(sys.argv[2])\n"
              "print(sorted(v.name for v in store.list_feature_views()))\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run([sys.executable, "-c", script, str(site), str(tmp_path / "w")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.strip() == "['customer_stats']"
