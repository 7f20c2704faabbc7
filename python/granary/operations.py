"""What materialize(), push() and status() return, and the time arguments they accept.

The native module returns plain dicts with times as microseconds since the epoch (UTC); these
classes give them Python types: timezone-aware datetimes (UTC) and timedeltas.
"""
from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from . import _granary

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICRO = dt.timedelta(microseconds=1)


def to_micros(value: Any, what: str) -> int:
    """A time argument as microseconds since the epoch: a datetime (naive: UTC; aware: converted),
    a pandas Timestamp, a numpy datetime64, a date (its midnight UTC) or ISO 8601 text ('now')."""
    if isinstance(value, str):
        return _granary.parse_timestamp(value, what)
    if value is None or (hasattr(value, "isoformat") and value != value):  # pandas.NaT
        raise _granary.InvalidArgument(f"{what} is missing ({value!r}); give a time")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return (value - _EPOCH) // _MICRO
    if isinstance(value, dt.date):
        return (dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
                - _EPOCH) // _MICRO
    if type(value).__name__ == "datetime64":  # numpy, without importing it
        import numpy as np
        if np.isnat(value):
            raise _granary.InvalidArgument(f"{what} is missing (NaT); give a time")
        return int(value.astype("datetime64[us]").astype(np.int64))
    raise _granary.InvalidArgument(
        f"{what} must be a datetime, a date or ISO 8601 text such as '2026-11-23T02:00:00Z', "
        f"not {type(value).__name__}")


def from_micros(micros: Optional[int]) -> Optional[dt.datetime]:
    return None if micros is None else _EPOCH + micros * _MICRO


class PushMode(str, enum.Enum):
    """Where push() writes (Feast's PushMode; the strings are accepted too)."""
    ONLINE = "online"
    OFFLINE = "offline"
    ONLINE_AND_OFFLINE = "online_and_offline"


# ---------------------------------------------------------------------------- materialize


@dataclass(frozen=True)
class ViewMaterialization:
    """One view of a materialize() run.

    status: "succeeded", "up_to_date" (incremental: nothing after the watermark; nothing read),
    "failed" or "cancelled" (then `error` says why; the watermark did not move).
    """
    view: str
    status: str
    error: str
    start: Optional[dt.datetime]  # None: from the first row (incremental, no watermark)
    end: dt.datetime
    run_id: int  # 0: no run recorded (up to date)
    rows_scanned: int
    rows_in_range: int
    entities: int
    entities_written: int
    entities_skipped: int  # the online store held a newer row
    null_key_rows: int
    files_total: int
    files_pruned: int
    row_groups_total: int
    row_groups_pruned: int
    partitions: int
    bytes_spilled: int
    seconds: float
    watermark_before: Optional[dt.datetime]
    watermark_after: Optional[dt.datetime]
    watermark_note: str  # why the watermark did not move, when it did not
    started_over: bool  # incremental: the view's schema changed since the watermark

    @classmethod
    def _from_native(cls, d: Dict[str, Any]) -> "ViewMaterialization":
        if d["code"] == "OK":
            status = "up_to_date" if d["up_to_date"] else "succeeded"
        else:
            status = "cancelled" if d["code"] == _granary.Cancelled.code else "failed"
        return cls(
            view=d["view"], status=status, error=d["error"], start=from_micros(d["start"]),
            end=from_micros(d["end"]), run_id=d["run_id"], rows_scanned=d["rows_scanned"],
            rows_in_range=d["rows_in_range"], entities=d["entities"],
            entities_written=d["entities_written"], entities_skipped=d["entities_skipped"],
            null_key_rows=d["null_key_rows"], files_total=d["files_total"],
            files_pruned=d["files_pruned"], row_groups_total=d["row_groups_total"],
            row_groups_pruned=d["row_groups_pruned"], partitions=d["partitions"],
            bytes_spilled=d["bytes_spilled"], seconds=d["seconds"],
            watermark_before=from_micros(d["watermark_before"]),
            watermark_after=from_micros(d["watermark_after"]),
            watermark_note=d["watermark_note"], started_over=d["started_over"])


@dataclass(frozen=True)
class MaterializeReport:
    """What a materialize() or materialize_incremental() call did, view by view."""
    views: List[ViewMaterialization]

    @property
    def ok(self) -> bool:
        return all(v.status in ("succeeded", "up_to_date") for v in self.views)

    def __getitem__(self, view: str) -> ViewMaterialization:
        for v in self.views:
            if v.view == view:
                return v
        raise KeyError(view)

    def to_df(self):
        """One row per view (pandas)."""
        import pandas as pd
        return pd.DataFrame([v.__dict__ for v in self.views])


_ERRORS = {cls.code: cls for cls in _granary.GranaryError.__subclasses__()}


def report_or_raise(views: List[Dict[str, Any]], code: str, message: str) -> MaterializeReport:
    """The report, or the exception of `code` (with the report as its `report`) on failure."""
    report = MaterializeReport([ViewMaterialization._from_native(v) for v in views])
    if code == "OK":
        return report
    error = _ERRORS.get(code, _granary.GranaryError)(message)
    error.report = report
    raise error


# ---------------------------------------------------------------------------- push


@dataclass(frozen=True)
class PushResult:
    """What push() wrote: online (the views written, rows written or skipped because the stored
    row was newer) and offline (the files appended, the new Delta version or None)."""
    push_source_name: str
    to: str
    rows: int
    views: List[str]
    written: int
    skipped_older: int
    files: List[str] = field(default_factory=list)
    delta_version: Optional[int] = None


# ---------------------------------------------------------------------------- status


@dataclass(frozen=True)
class MaterializationRun:
    """A run recorded in the registry (status: "running", "succeeded" or "failed")."""
    id: int
    status: str
    trigger: str
    interval_start: Optional[dt.datetime]  # None: from the first row
    interval_end: dt.datetime
    started_at: dt.datetime
    finished_at: Optional[dt.datetime]
    rows_read: int
    entities_written: int
    entities_skipped: int
    error: str
    pid: int
    host: str
    note: str = ""  # why it read what it read (e.g. a reload of lost online data)
    newest_event: Optional[dt.datetime] = None  # the newest event time among the rows chosen

    @classmethod
    def _from_native(cls, d: Optional[Dict[str, Any]]) -> Optional["MaterializationRun"]:
        if d is None:
            return None
        times = ("interval_start", "interval_end", "started_at", "finished_at", "newest_event")
        return cls(**{k: (from_micros(v) if k in times else v) for k, v in d.items()})


@dataclass(frozen=True)
class ViewStatus:
    """An online view's materialization state (`granary status`): watermark, staleness (None:
    never materialized under the current schema, i.e. infinitely stale), the newest event time
    materialized online and its age, last run, success rate over the recent runs and the failed
    runs in a row."""
    view: str
    watermark: Optional[dt.datetime]
    staleness: Optional[dt.timedelta]
    schema_changed: bool  # materialized under an older schema; stale until the next run
    running: bool
    last_run: Optional[MaterializationRun]
    last_success: Optional[MaterializationRun]
    recent_runs: int
    recent_succeeded: int
    consecutive_failures: int = 0
    newest_event: Optional[dt.datetime] = None
    data_age: Optional[dt.timedelta] = None
    push_view: bool = False  # reads a push source; staleness counts the last push
    last_push_at: Optional[dt.datetime] = None
    rows_pushed: int = 0

    @property
    def success_rate(self) -> Optional[float]:
        """Succeeded / finished among the recent runs; None without any."""
        return self.recent_succeeded / self.recent_runs if self.recent_runs else None

    @classmethod
    def _from_native(cls, d: Dict[str, Any]) -> "ViewStatus":
        staleness = d["staleness_micros"]
        return cls(
            view=d["view"], watermark=from_micros(d["watermark"]),
            staleness=None if staleness is None else staleness * _MICRO,
            schema_changed=d["schema_changed"], running=d["running"],
            last_run=MaterializationRun._from_native(d["last_run"]),
            last_success=MaterializationRun._from_native(d["last_success"]),
            recent_runs=d["recent_runs"], recent_succeeded=d["recent_succeeded"],
            consecutive_failures=d["consecutive_failures"],
            newest_event=from_micros(d["newest_event"]),
            data_age=None if d["data_age_micros"] is None else d["data_age_micros"] * _MICRO,
            push_view=d["push_view"], last_push_at=from_micros(d["last_push_at"]),
            rows_pushed=d["rows_pushed"])


@dataclass(frozen=True)
class StoreStatus:
    """status(): every online view's ViewStatus at `now`."""
    now: dt.datetime
    views: List[ViewStatus]

    def __getitem__(self, view: str) -> ViewStatus:
        for v in self.views:
            if v.view == view:
                return v
        raise KeyError(view)

    def stale(self, max_staleness: dt.timedelta) -> List[str]:
        """The views older than max_staleness (or never materialized), as `granary status
        --max-staleness` names them."""
        return [v.view for v in self.views
                if v.staleness is None or v.staleness > max_staleness]

    def failing(self, max_failures: int) -> List[str]:
        """The views whose newest runs failed more than max_failures times in a row, as `granary
        status --max-failures` names them."""
        return [v.view for v in self.views if v.consecutive_failures > max_failures]

    def to_df(self):
        """One row per view (pandas), with the last run's status, time and error."""
        import pandas as pd
        rows = []
        for v in self.views:
            run = v.last_run
            rows.append({
                "view": v.view, "watermark": v.watermark, "staleness": v.staleness,
                "schema_changed": v.schema_changed, "running": v.running,
                "last_run_status": run.status if run else None,
                "last_run_finished_at": run.finished_at if run else None,
                "last_run_error": run.error if run else None,
                "recent_runs": v.recent_runs, "recent_succeeded": v.recent_succeeded,
                "success_rate": v.success_rate,
                "consecutive_failures": v.consecutive_failures,
                "newest_event": v.newest_event, "data_age": v.data_age})
        return pd.DataFrame(rows)
