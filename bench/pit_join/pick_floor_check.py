#!/usr/bin/env python3
"""Checks pick_floor's page-level pick on small files of every page shape it claims to read.

pick_floor checks the pick against Arrow's reader on whatever files it is given; bench/pit_join's
view0 has V1 pages only, dictionary-encoded then PLAIN, and no nulls. This writes small files
with pyarrow that have the other shapes (V2 data pages, nulls, many small pages, a dictionary
kept for the whole chunk and one that falls back to PLAIN, a non-nullable column, four physical
types, and a BYTE_STREAM_SPLIT column the picker does not read, which must fall back), and runs
pick_floor on each. Exits non-zero when a run does.

    .venv/bin/python bench/pit_join/pick_floor_check.py [--bin build/bench/pick_floor] [--seed N]

With --write-nulled OUT it instead writes a copy of bench/pit_join's view0 features (f0..f9,
same files and row groups) with 52 % of the values null at random into OUT, for timing
pick_floor on pages with nulls (`pick_floor --dir OUT`; the views themselves have none).
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def table(rows, seed):
    rng = np.random.default_rng(seed)

    def nullable(values, null_fraction):
        return pa.array(values, mask=rng.random(rows) < null_fraction)

    return pa.table({
        # Few distinct values: the dictionary holds for the whole chunk.
        "low": nullable(rng.integers(0, 50, rows).astype(np.float64), 0.5),
        # Every value distinct: the dictionary outgrows its limit and the writer falls back to PLAIN.
        "high": nullable(rng.random(rows), 0.3),
        "i64": nullable(rng.integers(-2**62, 2**62, rows), 0.9),
        "i32": nullable(rng.integers(-2**31, 2**31 - 1, rows).astype(np.int32), 0.05),
        "f32": nullable(rng.random(rows).astype(np.float32), 0.5),
        "dense": pa.array(rng.random(rows)),  # no nulls written (nullable)
        "required": pa.array(rng.integers(0, 1000, rows).astype(np.float64)),
        "split": nullable(rng.random(rows), 0.5),
    }).cast(pa.schema([
        pa.field("low", pa.float64()), pa.field("high", pa.float64()),
        pa.field("i64", pa.int64()), pa.field("i32", pa.int32()),
        pa.field("f32", pa.float32()), pa.field("dense", pa.float64()),
        pa.field("required", pa.float64(), nullable=False), pa.field("split", pa.float64()),
    ]))


def write_nulled(view, out, seed):
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    files = sorted(view.glob("*.parquet"))
    if not files:
        print(f"no .parquet files in {view}: run bench/pit_join/run once first", file=sys.stderr)
        return 1
    for path in files:
        features = pq.read_table(path, columns=[f"f{i}" for i in range(10)])
        nulled = {name: pa.array(features.column(name).to_numpy(),
                                 mask=rng.random(features.num_rows) < 0.52)
                  for name in features.column_names}
        pq.write_table(pa.table(nulled), out / path.name,
                       row_group_size=pq.ParquetFile(path).metadata.row_group(0).num_rows,
                       compression="snappy")
    print(f"wrote {len(files)} files to {out}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", default="build/bench/pick_floor")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--write-nulled", type=pathlib.Path, metavar="OUT")
    parser.add_argument("--view", type=pathlib.Path,
                        default=pathlib.Path("build/bench-data/pit_join/view0"))
    args = parser.parse_args()
    if args.write_nulled:
        return write_nulled(args.view, args.write_nulled, args.seed)
    print(f"seed {args.seed}")
    columns = "low,high,i64,i32,f32,dense,required,split"
    with tempfile.TemporaryDirectory() as tmp:
        for version in ("1.0", "2.0"):
            folder = pathlib.Path(tmp) / f"v{version}"
            folder.mkdir()
            for part in range(2):
                pq.write_table(
                    table(150_000, args.seed + part), folder / f"part-{part}.parquet",
                    row_group_size=60_000, data_page_version=version, compression="snappy",
                    use_dictionary=["low", "high", "i64", "i32", "f32", "dense", "required"],
                    column_encoding={"split": "BYTE_STREAM_SPLIT"},
                    data_page_size=16 * 1024, dictionary_pagesize_limit=64 * 1024)
            print(f"data page version {version}:", flush=True)
            run = subprocess.run([args.bin, "--dir", str(folder), "--columns", columns,
                                  "--densities", "0.001,0.05,0.5,1", "--repeat", "1",
                                  "--seed", str(args.seed)])
            if run.returncode != 0:
                print(f"pick_floor failed on the data page version {version} files",
                      file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
