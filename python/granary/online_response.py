"""OnlineResponse: what get_online_features returns."""
from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

import pyarrow as pa

# Feast's suffix of event-time columns in to_dict(include_event_timestamps=True).
TIMESTAMP_POSTFIX = "__ts"
STATUS_POSTFIX = "__status"


class OnlineResponse:
    """The latest feature values of some entities: entity columns first, then one column per
    feature in the requested order; position i of every column belongs to entity row i.

    Each feature value has a status (Feast's names: PRESENT, NULL_VALUE, NOT_FOUND,
    OUTSIDE_MAX_AGE) and the event time of the row it came from (None when NOT_FOUND). Values are
    None unless the status is PRESENT.
    """

    def __init__(self, table: pa.Table, entity_columns: int, feature_columns: int):
        values_end = entity_columns + feature_columns
        self._values = table.select(list(range(values_end)))
        self._statuses = table.select(list(range(values_end, values_end + feature_columns)))
        self._times = table.select(list(range(values_end + feature_columns, table.num_columns)))
        self._entity_columns = entity_columns

    @property
    def feature_names(self) -> List[str]:
        """Every output column: the join keys, then the features (Feast's metadata.feature_names)."""
        return self._values.column_names

    @property
    def statuses(self) -> Dict[str, List[str]]:
        """Feature name -> the status of each entity row's value."""
        return self._statuses.to_pydict()

    @property
    def event_timestamps(self) -> Dict[str, List[Optional[dt.datetime]]]:
        """Feature name -> the event time (UTC) of each entity row's value; None when NOT_FOUND."""
        return self._times.to_pydict()

    def to_arrow(self, include_event_timestamps: bool = False,
                 include_statuses: bool = False) -> pa.Table:
        """Values as a pyarrow Table; with the flags, also a `<feature>__ts` (timestamp[us, UTC])
        and a `<feature>__status` (dictionary of strings) column after each feature."""
        if not include_event_timestamps and not include_statuses:
            return self._values
        names, columns = [], []
        for i, name in enumerate(self._values.column_names):
            names.append(name)
            columns.append(self._values.column(i))
            if i < self._entity_columns:
                continue
            j = i - self._entity_columns
            if include_event_timestamps:
                names.append(name + TIMESTAMP_POSTFIX)
                columns.append(self._times.column(j))
            if include_statuses:
                names.append(name + STATUS_POSTFIX)
                columns.append(self._statuses.column(j))
        return pa.Table.from_arrays(columns, names=names)

    def to_dict(self, include_event_timestamps: bool = False,
                include_statuses: bool = False) -> Dict[str, List[Any]]:
        """Column name -> list of Python values (as Feast's to_dict); see to_arrow for the flags."""
        return self.to_arrow(include_event_timestamps, include_statuses).to_pydict()

    def to_df(self, include_event_timestamps: bool = False, include_statuses: bool = False):
        """A pandas DataFrame of to_arrow(...)."""
        return self.to_arrow(include_event_timestamps, include_statuses).to_pandas()

    def __len__(self) -> int:
        return self._values.num_rows

    def __repr__(self) -> str:
        return f"OnlineResponse({self._values.num_rows} rows, columns={self.feature_names})"
