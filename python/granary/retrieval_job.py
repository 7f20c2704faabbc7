"""RetrievalJob: the training set that get_historical_features returns; TrainingSetStream: the
same training set read batch by batch (stream_historical_features)."""
from __future__ import annotations

from typing import Iterator, List, Optional

import pyarrow as pa


class RetrievalJob:
    """A finished training set: the entity rows' columns, then the features, one row per entity row
    in the entity rows' order (duplicates kept). The join has already run (Granary computes it in
    get_historical_features, where Ctrl-C stops it); to_arrow() hands the table over without a copy.
    """

    def __init__(self, table: pa.Table, full_feature_names: bool, feature_columns: List[str]):
        self._table = table
        self._full_feature_names = full_feature_names
        self._feature_columns = feature_columns

    @property
    def full_feature_names(self) -> bool:
        return self._full_feature_names

    @property
    def features(self) -> List[str]:
        """The feature columns' names, in order (after the entity rows' columns)."""
        return list(self._feature_columns)

    def to_arrow(self) -> pa.Table:
        """The training set as a pyarrow Table; its buffers are the ones the C++ engine wrote."""
        return self._table

    def to_df(self):
        """The training set as a pandas DataFrame (pyarrow's conversion; times are UTC-aware)."""
        return self._table.to_pandas()

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return (f"RetrievalJob({self._table.num_rows} rows x {self._table.num_columns} columns, "
                f"features={self._feature_columns})")


class TrainingSetStream:
    """A training set read batch by batch as the offline engine produces it: the same columns,
    rows and order as get_historical_features, without holding the whole table. On Spark the
    client holds the entity rows and one batch; the embedded engine computes the whole join in
    memory (within its memory budget), holds the finished training set, and hands it out batch
    by batch.

    An iterator of pyarrow.RecordBatch (never empty ones); to_reader() gives a
    pyarrow.RecordBatchReader over the same batches. Use it in a `with` block or call close():
    closing stops the engine's work (on Spark, the cluster's job is interrupted). A stream is
    read once, by one thread at a time. Each read releases the GIL and stops on Ctrl-C
    (KeyboardInterrupt), after which the stream is closed.
    """

    def __init__(self, native):
        self._native = native
        self._schema = pa.table(native.schema()).schema
        self._features = self._schema.names[native.entity_columns:]

    @property
    def schema(self) -> pa.Schema:
        """The schema of every batch: the entity rows' columns, then the features."""
        return self._schema

    @property
    def features(self) -> List[str]:
        """The feature columns' names, in order (after the entity rows' columns)."""
        return list(self._features)

    @property
    def rows(self) -> int:
        """Rows read so far."""
        return self._native.rows

    def read_next_batch(self) -> Optional[pa.RecordBatch]:
        """The next batch, or None at the end (the stream is then closed)."""
        exported = self._native.read_next()
        if exported is None:
            return None
        batches = pa.table(exported).to_batches()
        return batches[0]

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self

    def __next__(self) -> pa.RecordBatch:
        batch = self.read_next_batch()
        if batch is None:
            raise StopIteration
        return batch

    def to_reader(self) -> pa.RecordBatchReader:
        """A pyarrow.RecordBatchReader over the batches not read yet."""
        return pa.RecordBatchReader.from_batches(self._schema, self)

    def close(self) -> None:
        """Stops the engine's work and releases it; further reads return None. Idempotent."""
        self._native.close()

    def __enter__(self) -> "TrainingSetStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"TrainingSetStream({len(self._schema)} columns, {self.rows} rows read, "
                f"features={self._features})")
