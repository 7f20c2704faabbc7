"""One Python SDK client of bench/spark/bench.py --sdk, run in a process of its own so that its
peak RSS is its own (/usr/bin/time): FeatureStore.stream_historical_features over bench/pit_join's
entity rows (read with pyarrow, handed over as a pyarrow Table) and every feature of its K views,
each batch written to a Parquet file as it arrives (what a user with a training set larger than
memory does), the stream never held whole.

Argument: one JSON object {"repo", "entities", "k", "f", "out", "memory_budget" (bytes),
"threads"}. Prints the rows and batches read and the largest batch, as JSON.
"""
import json
import sys

import pyarrow.parquet as pq

import granary


def main():
    p = json.loads(sys.argv[1])
    store = granary.FeatureStore(p["repo"])
    features = [f"view{v}:f{j}" for v in range(p["k"]) for j in range(p["f"])]
    entities = pq.read_table(p["entities"])
    rows = batches = largest = 0
    with store.stream_historical_features(entities, features, full_feature_names=True,
                                          memory_budget=p["memory_budget"],
                                          threads=p["threads"]) as stream:
        with pq.ParquetWriter(p["out"], stream.schema) as writer:
            for batch in stream:
                writer.write_batch(batch)
                rows += batch.num_rows
                batches += 1
                largest = max(largest, batch.num_rows)
    print(json.dumps({"rows": rows, "batches": batches, "largest_batch": largest}))


if __name__ == "__main__":
    main()
