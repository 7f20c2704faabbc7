"""FeatureStore: a feature repository (the folder with granary.yaml), as in Feast.

Differences from Feast are listed in docs/PYTHON.md.
"""
from __future__ import annotations

import datetime
import difflib
import json
import os
import sys
import warnings
from collections.abc import Mapping
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import pyarrow as pa

from . import _granary
from .definitions import (Catalog, DataSource, Entity, FeatureService, FeatureView, Plan,
                          make_plan)
from .online_response import OnlineResponse
from .operations import (MaterializeReport, PushMode, PushResult, StoreStatus, ViewStatus,
                         from_micros, report_or_raise, to_micros)
from .retrieval_job import RetrievalJob, TrainingSetStream


class GranaryWarning(UserWarning):
    """A warning from the definitions (e.g. a source whose data does not exist yet)."""


class FeatureStore:
    """A feature repository: its definitions, registry, offline sources and online store.

    Thread-safe: one FeatureStore may serve several threads; long calls release the GIL. The
    online store is opened by the first get_online_features call and kept open until close() (or
    the end of a `with` block). The embedded RocksDB store has one writing process: lookups open
    it read-only beside it (a running `granary serve`, whose writes they see), materialize calls
    hand their runs to that server, and only push(to="online") keeps it open for writing until
    close().
    """

    def __init__(self, repo_path: Union[str, os.PathLike] = "."):
        self.repo_path = os.path.abspath(os.fspath(repo_path))
        self._core = _granary.FeatureStoreCore.open(self.repo_path)

    # ------------------------------------------------------------------ repository and registry

    @property
    def project(self) -> str:
        return self._core.project

    @property
    def registry_path(self) -> str:
        return self._core.registry_path

    def plan(self) -> Plan:
        """What apply() would change in the registry; writes nothing."""
        return self._with_warnings(make_plan(self._core.plan()))

    def apply(self, objects: Any = None, objects_to_delete: Any = None,
              partial: bool = True) -> Plan:
        """Validates the repository's *.yaml definitions (sources checked against their data)
        and stores them as a new registry version, unless they are unchanged. Raises
        InvalidArgument listing every error; warnings become GranaryWarning.

        Unlike Feast, Granary's definitions live in YAML files, not in Python objects:
        `objects` and `objects_to_delete` must be None.
        """
        if objects is not None or objects_to_delete is not None:
            raise _granary.InvalidArgument(
                "apply() takes no objects: Granary's definitions live in the repository's "
                f"*.yaml files ({self.repo_path}); edit them and call apply()")
        return self._with_warnings(make_plan(self._core.apply()))

    def refresh_registry(self) -> None:
        """Reads the registry's latest version now (e.g. after `granary apply` elsewhere)."""
        self._core.definitions(True)

    def _catalog(self, allow_cache: bool = False) -> Catalog:
        return Catalog(self._core.definitions(not allow_cache))

    @staticmethod
    def _sweep_spill_folders(spill_dir: str) -> None:
        """Removes the spill folders that killed granary processes left in spill_dir (as the
        CLI's commands that spill do before they start), each with a GranaryWarning."""
        for folder in _granary.remove_stale_spill_folders(spill_dir):
            warnings.warn(f"removed {folder}: a spill folder of a granary process that is gone",
                          GranaryWarning, stacklevel=3)

    @staticmethod
    def _with_warnings(plan: Plan) -> Plan:
        for w in plan.warnings:
            warnings.warn(w, GranaryWarning, stacklevel=3)
        return plan

    @staticmethod
    def _filter(objects: Iterable, tags: Optional[Dict[str, str]]) -> list:
        if not tags:
            return list(objects)
        return [o for o in objects if all(o.tags.get(k) == v for k, v in tags.items())]

    def list_entities(self, allow_cache: bool = False,
                      tags: Optional[Dict[str, str]] = None) -> List[Entity]:
        return self._filter(self._catalog(allow_cache).entities.values(), tags)

    def list_data_sources(self, allow_cache: bool = False,
                          tags: Optional[Dict[str, str]] = None) -> List[DataSource]:
        return self._filter(self._catalog(allow_cache).data_sources.values(), tags)

    def list_feature_views(self, allow_cache: bool = False,
                           tags: Optional[Dict[str, str]] = None) -> List[FeatureView]:
        return self._filter(self._catalog(allow_cache).feature_views.values(), tags)

    def list_feature_services(self, allow_cache: bool = False,
                              tags: Optional[Dict[str, str]] = None) -> List[FeatureService]:
        return self._filter(self._catalog(allow_cache).feature_services.values(), tags)

    @staticmethod
    def _get(kind: str, objects: Dict[str, Any], name: str):
        found = objects.get(name)
        if found is not None:
            return found
        close = difflib.get_close_matches(name, list(objects), n=1)
        hint = f", did you mean '{close[0]}'?" if close else ""
        known = ", ".join(sorted(objects)) or "none"
        raise _granary.NotFound(f"unknown {kind} '{name}'{hint} ({kind}s: {known})")

    def get_entity(self, name: str, allow_cache: bool = False) -> Entity:
        return self._get("entity", self._catalog(allow_cache).entities, name)

    def get_data_source(self, name: str, allow_cache: bool = False) -> DataSource:
        return self._get("data source", self._catalog(allow_cache).data_sources, name)

    def get_feature_view(self, name: str, allow_cache: bool = False) -> FeatureView:
        return self._get("feature view", self._catalog(allow_cache).feature_views, name)

    def get_feature_service(self, name: str, allow_cache: bool = False) -> FeatureService:
        return self._get("feature service", self._catalog(allow_cache).feature_services, name)

    # ------------------------------------------------------------------ training sets

    def get_historical_features(
        self,
        entity_df: Any = None,
        features: Union[Sequence[str], FeatureService, None] = None,
        full_feature_names: bool = False,
        *,
        entity_table: Optional[str] = None,
        feature_service: Union[str, FeatureService, None] = None,
        created_timestamp_cutoff: bool = False,
        memory_budget: Optional[int] = None,
        threads: int = 0,
        spill_dir: Optional[Union[str, os.PathLike]] = None,
        progress: bool = False,
    ) -> RetrievalJob:
        """The point-in-time-correct training set of `entity_df` (docs/POINT_IN_TIME.md).

        entity_df: a pandas DataFrame, a pyarrow Table or RecordBatch, or any object with
        `__arrow_c_stream__` (polars, ...), holding the join keys of every requested view and the
        entity time: `event_timestamp`, or else the only timestamp column. Naive times are UTC;
        time-zone-aware ones are converted. Other columns pass through unchanged.
        Or, with a Spark offline store, entity rows that stay in the cluster (as Feast's Spark
        store takes them): entity_df a SQL query string, or entity_table= a table name (leave
        entity_df out). Their order is the query's; the training set comes back here.
        features: ["view:feature", ...] or a FeatureService; or feature_service= a name.
        Granary only: created_timestamp_cutoff ignores rows created after the entity time;
        memory_budget (bytes, default 2 GiB) bounds the join, which spills past it to spill_dir;
        threads (0: every core); progress shows a progress line on stderr for large views.

        The join runs here, without the GIL; Ctrl-C stops it (KeyboardInterrupt).
        """
        args = _historical_args(entity_df, features, full_feature_names, entity_table,
                                feature_service, created_timestamp_cutoff, memory_budget,
                                threads, spill_dir, progress,
                                self._core.DEFAULT_MEMORY_BUDGET_BYTES)
        self._sweep_spill_folders(args[7])
        result, entity_columns = self._core.get_historical_features(*args)
        training = pa.table(result)
        return RetrievalJob(training, bool(full_feature_names),
                            training.column_names[entity_columns:])

    def stream_historical_features(
        self,
        entity_df: Any = None,
        features: Union[Sequence[str], FeatureService, None] = None,
        full_feature_names: bool = False,
        *,
        entity_table: Optional[str] = None,
        feature_service: Union[str, FeatureService, None] = None,
        created_timestamp_cutoff: bool = False,
        memory_budget: Optional[int] = None,
        threads: int = 0,
        spill_dir: Optional[Union[str, os.PathLike]] = None,
        progress: bool = False,
    ) -> TrainingSetStream:
        """The training set of get_historical_features (same arguments, same rows, same
        order), as a stream of pyarrow RecordBatches read one at a time as the offline engine
        produces them, instead of one table held whole: on Spark the client holds the entity
        rows and one batch, however long the training set (docs/PYTHON.md, "Training sets
        larger than memory").

        Iterate over it (`for batch in stream:`), or `stream.to_reader()` for a
        pyarrow.RecordBatchReader (e.g. pyarrow.parquet.ParquetWriter, pyarrow.dataset.
        write_dataset, polars, DuckDB). Use it in a `with` block or call close(): closing early
        stops the engine's work (on Spark, the cluster's job is interrupted). Errors in the
        request (unknown features, missing entity columns) are raised here; errors while
        reading (a lost cluster), by the read. Each read releases the GIL; Ctrl-C stops it.
        """
        args = _historical_args(entity_df, features, full_feature_names, entity_table,
                                feature_service, created_timestamp_cutoff, memory_budget,
                                threads, spill_dir, progress,
                                self._core.DEFAULT_MEMORY_BUDGET_BYTES)
        self._sweep_spill_folders(args[7])
        return TrainingSetStream(self._core.historical_features_stream(*args))

    def write_historical_features(
        self,
        entity_df: Any = None,
        features: Union[Sequence[str], FeatureService, None] = None,
        path: Union[str, os.PathLike, None] = None,
        full_feature_names: bool = False,
        *,
        entity_table: Optional[str] = None,
        feature_service: Union[str, FeatureService, None] = None,
        created_timestamp_cutoff: bool = False,
        memory_budget: Optional[int] = None,
        threads: int = 0,
        spill_dir: Optional[Union[str, os.PathLike]] = None,
        progress: bool = False,
    ) -> int:
        """Writes the training set of get_historical_features (same arguments) to `path`, a
        .parquet or .csv file, batch by batch as the engine produces it, without holding it
        (`granary get-historical-features -o`): the batches go to a temporary file beside
        `path`, renamed over it once the last batch is written; an error or Ctrl-C midway
        leaves `path` untouched. Returns the number of rows written. Runs without the GIL.
        """
        if path is None:
            raise TypeError("write_historical_features needs path= (a .parquet or .csv file)")
        args = _historical_args(entity_df, features, full_feature_names, entity_table,
                                feature_service, created_timestamp_cutoff, memory_budget,
                                threads, spill_dir, progress,
                                self._core.DEFAULT_MEMORY_BUDGET_BYTES)
        self._sweep_spill_folders(args[7])
        rows, _ = self._core.write_historical_features(*args, os.fspath(path))
        return rows

    # ------------------------------------------------------------------ online features

    def get_online_features(
        self,
        features: Union[Sequence[str], FeatureService, None] = None,
        entity_rows: Optional[Iterable[Mapping]] = None,
        full_feature_names: bool = False,
        *,
        feature_service: Union[str, FeatureService, None] = None,
        entities: Optional[Mapping[str, Any]] = None,
    ) -> OnlineResponse:
        """The latest values of `features` for some entities, from the online store.

        features: ["view:feature", ...] or a FeatureService; or feature_service= a name.
        entity_rows: [{"customer_id": 1001}, ...] (Feast's form), or entities={"customer_id":
        [1001, ...]} (the feature server's form; lists, numpy arrays, pandas Series or Arrow
        arrays). Checked as the CLI and the feature server check a request.
        """
        feature_refs, service = _feature_request(features, feature_service)
        columns = _entity_columns(entity_rows, entities)
        table, entity_count, feature_count = self._core.get_online_features(
            feature_refs, service, columns, bool(full_feature_names))
        return OnlineResponse(pa.table(table), entity_count, feature_count)

    # ------------------------------------------------------------------ operations

    def materialize(
        self,
        start_date: Any,
        end_date: Any,
        feature_views: Optional[Sequence[str]] = None,
        *,
        views: Optional[Sequence[str]] = None,
        memory_budget: Optional[int] = None,
        write_threads: int = 0,
        write_batch_rows: int = 4096,
        spill_dir: Optional[Union[str, os.PathLike]] = None,
        progress: bool = False,
    ) -> MaterializeReport:
        """Writes each entity's latest feature values with event times in [start_date, end_date]
        to the online store (`granary materialize`; docs/OPERATIONS.md), view by view; each view's
        run is recorded in the registry and moves its watermark on success.

        start_date, end_date: datetimes (naive: UTC; aware: converted), dates, or ISO 8601 text
        ('now' too); end_date must not be in the future. feature_views (or views=): names;
        default every online view. memory_budget (bytes, default 1 GiB) bounds picking the
        latest rows, which spills past it to spill_dir; write_threads (0: two per core).

        While a `granary serve` of this repository holds the embedded store, the run is handed
        to that server and its report returned, as `granary materialize` does (the server's
        settings apply; $GRANARY_SERVE_TOKEN when it requires a token; docs/OPERATIONS.md).

        Runs without the GIL; Ctrl-C stops it (KeyboardInterrupt): the view in progress is
        recorded failed and keeps its watermark (a run handed to a server goes on there). A failed view raises the exception of its error
        with the MaterializeReport as its `report`; otherwise returns the report.
        """
        start = to_micros(start_date, "start_date")
        end = to_micros(end_date, "end_date")
        return self._materialize(False, start, end, feature_views, views, memory_budget,
                                 write_threads, write_batch_rows, spill_dir, progress)

    def materialize_incremental(
        self,
        end_date: Any,
        feature_views: Optional[Sequence[str]] = None,
        *,
        views: Optional[Sequence[str]] = None,
        memory_budget: Optional[int] = None,
        write_threads: int = 0,
        write_batch_rows: int = 4096,
        spill_dir: Optional[Union[str, os.PathLike]] = None,
        progress: bool = False,
    ) -> MaterializeReport:
        """As materialize(), for the event times in (watermark, end_date] of each view
        (`granary materialize-incremental`); without a watermark [end_date - ttl, end_date], or
        every row up to end_date when the ttl is 0. A view with nothing new is "up_to_date"."""
        end = to_micros(end_date, "end_date")
        return self._materialize(True, None, end, feature_views, views, memory_budget,
                                 write_threads, write_batch_rows, spill_dir, progress)

    def _materialize(self, incremental, start, end, feature_views, views, memory_budget,
                     write_threads, write_batch_rows, spill_dir, progress) -> MaterializeReport:
        if feature_views is not None and views is not None:
            raise _granary.InvalidArgument("give either feature_views or views, not both")
        names = _view_names(feature_views if feature_views is not None else views)
        budget = (1 << 30) if memory_budget is None else _positive_int("memory_budget",
                                                                       memory_budget)
        spill = _spill_folder(spill_dir)
        self._sweep_spill_folders(spill)
        outcome = self._core.materialize(
            incremental, start, end, names, budget,
            _non_negative_int("write_threads", write_threads),
            _positive_int("write_batch_rows", write_batch_rows), spill, bool(progress))
        return report_or_raise(*outcome)

    def push(self, push_source_name: str, df: Any, allow_registry_cache: bool = True,
             to: Union[PushMode, str] = PushMode.ONLINE,
             max_clock_skew: datetime.timedelta = datetime.timedelta(minutes=5)) -> PushResult:
        """Writes rows of a push source (the feature server's POST /push, docs/SERVING.md):
        online to every view reading it (write-if-newer), offline appended to its batch source
        (one atomic file or Delta commit), or both (offline first).

        df: a pandas DataFrame, a pyarrow Table or RecordBatch, or any `__arrow_c_stream__`
        object, with columns named as the batch source's columns: every join key, feature and
        the timestamp field (naive times: UTC). to: PushMode or "online", "offline",
        "online_and_offline". allow_registry_cache is accepted for Feast's sake; the registry is
        always checked for a newer version (one SQLite query). max_clock_skew: how far ahead of
        this machine's clock an event (or created) time may be; a later row raises
        InvalidArgument naming it and nothing is written (a row from the future would shadow
        every real value of its entity until then).
        """
        if not isinstance(push_source_name, str):
            raise _granary.InvalidArgument(
                f"push_source_name must be a str, not {type(push_source_name).__name__}")
        target = to.value if isinstance(to, PushMode) else to
        if not isinstance(target, str):
            raise _granary.InvalidArgument(
                f'to must be a PushMode or "online", "offline" or "online_and_offline", not '
                f"{to!r}")
        if not isinstance(max_clock_skew, datetime.timedelta) or \
                max_clock_skew < datetime.timedelta(0):
            raise _granary.InvalidArgument(
                f"max_clock_skew must be a datetime.timedelta of 0 or more, not {max_clock_skew!r}")
        table = _arrow_input("df", df)
        d = self._core.push(push_source_name, table, target,
                            max_clock_skew // datetime.timedelta(microseconds=1))
        return PushResult(push_source_name=push_source_name, to=target, rows=d["rows"],
                          views=list(d["views"]), written=d["written"],
                          skipped_older=d["skipped_older"], files=list(d["files"]),
                          delta_version=None if d["delta_version"] < 0 else d["delta_version"])

    def status(self, recent_runs: int = 10) -> StoreStatus:
        """Each online view's watermark, staleness, last run and success rate over its last
        `recent_runs` finished runs: the data of `granary status --json`, from the registry."""
        now, views = self._core.status(_positive_int("recent_runs", recent_runs))
        return StoreStatus(now=from_micros(now), views=[ViewStatus._from_native(v) for v in views])

    def feature_stats(self, feature_view: str, features: Optional[Sequence[str]] = None,
                      start_date: Any = None, end_date: Any = None, bins: int = 20,
                      top: int = 10, sample: int = 5) -> Dict[str, Any]:
        """Statistics of a feature view's offline data between start_date and end_date (both
        inclusive; None: unbounded): per feature its count, nulls, null_rate, min, max, mean,
        distinct_estimate, histogram (numbers) or top_values (strings, bools), and the current
        online values of the `sample` entities with the newest rows (`online_sample`, Feast's
        get-online-features response). The dict of `granary stats --json` (docs/CONSOLE.md)."""
        start = None if start_date is None else to_micros(start_date, "start_date")
        end = None if end_date is None else to_micros(end_date, "end_date")
        names = [features] if isinstance(features, str) else list(features or [])
        text = self._core.feature_stats(feature_view, names, start, end,
                                        _positive_int("bins", bins), _non_negative_int("top", top),
                                        _non_negative_int("sample", sample))
        return json.loads(text)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Closes the online store and the registry; a later call opens them again."""
        self._core.close()

    def __enter__(self) -> "FeatureStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FeatureStore(repo_path={self.repo_path!r}, project={self.project!r})"


# ---------------------------------------------------------------------- argument checks


def _historical_args(entity_df, features, full_feature_names, entity_table, feature_service,
                     created_timestamp_cutoff, memory_budget, threads, spill_dir, progress,
                     default_budget):
    """The native core's arguments of a training set, checked (get_historical_features and its
    streaming and file forms)."""
    feature_refs, service = _feature_request(features, feature_service)
    entity_sql = ""
    if entity_table is not None:
        if entity_df is not None:
            raise ValueError("give entity_df or entity_table, not both")
        if not isinstance(entity_table, str) or not entity_table:
            raise TypeError("entity_table must be a table name (a non-empty string)")
        table = None
    elif isinstance(entity_df, str):
        if not entity_df.strip():
            raise ValueError("entity_df is an empty SQL query")
        entity_sql, table = entity_df, None
    elif entity_df is None:
        raise TypeError("get_historical_features needs entity_df (a DataFrame, a pyarrow "
                        "Table or a SQL query string) or entity_table=")
    else:
        table = _entity_table(entity_df)
    budget = (default_budget if memory_budget is None
              else _positive_int("memory_budget", memory_budget))
    return (table, feature_refs, service, bool(full_feature_names),
            bool(created_timestamp_cutoff), budget, _non_negative_int("threads", threads),
            _spill_folder(spill_dir), bool(progress), entity_sql,
            entity_table or "")


def _spill_folder(spill_dir) -> str:
    """spill_dir as the core takes it ("": $TMPDIR or /tmp), refused at once when it is not a
    folder this process can write: a run that spills late would otherwise fail only then."""
    if spill_dir is None:
        return ""
    path = os.fspath(spill_dir)
    if not os.path.exists(path):
        raise FileNotFoundError(f"spill_dir {path}: no such folder; create it (os.makedirs) or "
                                "leave spill_dir out to spill under $TMPDIR or /tmp")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"spill_dir {path}: not a folder; name a folder with room for "
                                 "the spilled data")
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"spill_dir {path}: this user cannot create files in it; name a "
                              "folder it can write")
    return path


def _feature_request(features, feature_service) -> Tuple[List[str], str]:
    if isinstance(features, FeatureService):
        if feature_service is not None:
            raise _granary.InvalidArgument(
                "give either features or feature_service, not both")
        features, feature_service = None, features
    if isinstance(feature_service, FeatureService):
        feature_service = feature_service.name
    if features is not None and feature_service is not None:
        raise _granary.InvalidArgument("give either features or feature_service, not both")
    if features is None and feature_service is None:
        raise _granary.InvalidArgument(
            'give features=["view:feature", ...] or feature_service="name"')
    if feature_service is not None:
        if not isinstance(feature_service, str):
            raise _granary.InvalidArgument(
                f"feature_service must be a name or a FeatureService, not "
                f"{type(feature_service).__name__}")
        return [], feature_service
    if isinstance(features, str) or not isinstance(features, Iterable):
        raise _granary.InvalidArgument(
            f'features must be a list of "view:feature" strings, not {features!r}')
    refs = list(features)
    for i, ref in enumerate(refs):
        if not isinstance(ref, str):
            raise _granary.InvalidArgument(
                f'features[{i}] must be a "view:feature" string, not {type(ref).__name__}')
    return refs, ""


def _entity_table(entity_df):
    # (A string is a SQL query, handled by get_historical_features before this.)
    return _arrow_input("entity_df", entity_df)


def _arrow_input(name: str, data):
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        try:
            return pa.Table.from_pandas(data, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as e:
            raise _granary.InvalidArgument(
                f"{name}: a column cannot be converted to Arrow: {e}") from e
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    return data  # a pa.Table or another __arrow_c_stream__ object; checked natively


def _view_names(views) -> List[str]:
    if views is None:
        return []
    if isinstance(views, str) or not isinstance(views, Iterable):
        raise _granary.InvalidArgument(
            f'feature_views must be a list of view names such as ["customer_profile"], not '
            f"{views!r}")
    names = []
    for i, v in enumerate(views):
        name = v.name if isinstance(v, FeatureView) else v
        if not isinstance(name, str):
            raise _granary.InvalidArgument(
                f"feature_views[{i}] must be a view name or a FeatureView, not "
                f"{type(v).__name__}")
        names.append(name)
    if not names:
        raise _granary.InvalidArgument(
            "feature_views is empty; give view names, or None for every online view")
    return names


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise _granary.InvalidArgument(f"{name} must be a positive int, not {value!r}")
    return value


def _non_negative_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _granary.InvalidArgument(f"{name} must be an int >= 0, not {value!r}")
    return value


_NATIVE = (int, float, str, bytes, bool, type(None))


def _values(name: str, values) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise _granary.InvalidArgument(
            f"entities['{name}'] must be a list of values, not {type(values).__name__}")
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values.to_pylist()
    if hasattr(values, "tolist"):  # numpy arrays, pandas Series
        return values.tolist()
    out = list(values)
    for i, v in enumerate(out):
        if not isinstance(v, _NATIVE) and hasattr(v, "item") and not hasattr(v, "isoformat"):
            out[i] = v.item()  # numpy scalars
    return out


def _entity_columns(entity_rows, entities) -> List[Tuple[str, list]]:
    if (entity_rows is None) == (entities is None):
        raise _granary.InvalidArgument(
            'give entity_rows=[{"customer_id": 1001}, ...] or entities={"customer_id": [1001, '
            '...]}, one of the two')
    if entities is not None:
        if not isinstance(entities, Mapping):
            raise _granary.InvalidArgument(
                f"entities must be a dict of join key to values, not {type(entities).__name__}")
        return [(str(k), _values(str(k), v)) for k, v in entities.items()]
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(entity_rows, pandas.DataFrame):
        return [(str(k), entity_rows[k].tolist()) for k in entity_rows.columns]
    rows = list(entity_rows)
    if not rows:
        raise _granary.InvalidArgument(
            'entity_rows is empty; give at least one row such as {"customer_id": 1001}')
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise _granary.InvalidArgument(
                f"entity_rows[{i}] must be a dict of join key to value, not {type(row).__name__}")
    keys = list(rows[0].keys())
    for i, row in enumerate(rows):
        if row.keys() != rows[0].keys():
            raise _granary.InvalidArgument(
                f"entity_rows[{i}] has the keys {sorted(row.keys())} but entity_rows[0] has "
                f"{sorted(keys)}; give every row the same join keys")
    return [(str(k), _values(str(k), [row[k] for row in rows])) for k in keys]
