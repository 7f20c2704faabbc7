"""RetrievalJob: the training set that get_historical_features returns."""
from __future__ import annotations

from typing import List

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
