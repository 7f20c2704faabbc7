// The materialization state of the SQLite registry (sqlite_registry_impl.h): watermarks, runs
// and pushes, in the tables of schema version 2 and later (sqlite_registry.cc).
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <limits>

#include "granary/registry/sqlite_registry_impl.h"

namespace granary::sqlite_registry {

Result<std::map<std::string, Timestamp>> SqliteRegistry::Watermarks() {
  Statement s(db_, "SELECT view, watermark FROM watermarks");
  if (!s.prepared()) return Error("read watermarks");
  std::map<std::string, Timestamp> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    out[Column(s.get(), 0)] = Timestamp::FromMicros(sqlite3_column_int64(s.get(), 1));
  }
  if (rc != SQLITE_DONE) return Error("read watermarks");
  return out;
}

Result<std::map<std::string, WatermarkState>> SqliteRegistry::WatermarkStates() {
  Statement s(db_,
              "SELECT view, watermark, layout, updated_at, newest_event, online_marker FROM "
              "watermarks");
  if (!s.prepared()) return Error("read watermarks");
  std::map<std::string, WatermarkState> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    WatermarkState& state = out[Column(s.get(), 0)];
    state.watermark = Timestamp::FromMicros(sqlite3_column_int64(s.get(), 1));
    state.layout = Column(s.get(), 2);
    state.updated_at = Timestamp::FromMicros(sqlite3_column_int64(s.get(), 3));
    if (sqlite3_column_type(s.get(), 4) != SQLITE_NULL) {
      state.newest_event = Timestamp::FromMicros(sqlite3_column_int64(s.get(), 4));
    }
    state.online_marker = sqlite3_column_int(s.get(), 5) != 0;
  }
  if (rc != SQLITE_DONE) return Error("read watermarks");
  return out;
}

Result<int64_t> SqliteRegistry::StartRun(const MaterializationRun& run) {
  GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
  Result<int64_t> id = InsertRun(run);
  if (!id.ok()) {
    (void)Exec("ROLLBACK");
    return id;
  }
  GRANARY_RETURN_NOT_OK(Exec("COMMIT"));
  return id;
}

Status SqliteRegistry::UpdateRunProgress(int64_t id, int64_t rows_read, int64_t entities_written,
                                         int64_t entities_skipped) {
  Statement s(db_,
              "UPDATE materialization_runs SET rows_read = ?, entities_written = ?, "
              "entities_skipped = ? WHERE id = ? AND status = 'running'");
  bool ok = s.prepared() && sqlite3_bind_int64(s.get(), 1, rows_read) == SQLITE_OK &&
            sqlite3_bind_int64(s.get(), 2, entities_written) == SQLITE_OK &&
            sqlite3_bind_int64(s.get(), 3, entities_skipped) == SQLITE_OK &&
            sqlite3_bind_int64(s.get(), 4, id) == SQLITE_OK && sqlite3_step(s.get()) == SQLITE_DONE;
  if (!ok) return Error("record a run's progress");
  return Status::OK();
}

Result<int64_t> SqliteRegistry::RecordFailedRun(const MaterializationRun& run) {
  GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
  Result<int64_t> id = InsertRun(run);
  if (id.ok()) {
    RunOutcome outcome;
    outcome.status = RunStatus::kFailed;
    outcome.finished_at = run.finished_at.value_or(run.started_at);
    outcome.error = run.error;
    Status st = UpdateRun(*id, outcome);
    if (!st.ok()) id = st;
  }
  if (!id.ok()) {
    (void)Exec("ROLLBACK");
    return id;
  }
  GRANARY_RETURN_NOT_OK(Exec("COMMIT"));
  return id;
}

Status SqliteRegistry::RecordPush(const std::string& view, Timestamp at, int64_t rows) {
  Statement s(db_,
              "INSERT INTO view_pushes (view, last_push_at, rows) VALUES (?1, ?2, ?3) "
              "ON CONFLICT (view) DO UPDATE SET last_push_at = MAX(last_push_at, ?2), "
              "rows = rows + ?3");
  bool ok = s.prepared() &&
            sqlite3_bind_text(s.get(), 1, view.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_int64(s.get(), 2, at.micros) == SQLITE_OK &&
            sqlite3_bind_int64(s.get(), 3, rows) == SQLITE_OK &&
            sqlite3_step(s.get()) == SQLITE_DONE;
  if (!ok) return Error("record a push");
  return Status::OK();
}

Result<std::map<std::string, PushRecord>> SqliteRegistry::Pushes() {
  Statement s(db_, "SELECT view, last_push_at, rows FROM view_pushes");
  if (!s.prepared()) return Error("read pushes");
  std::map<std::string, PushRecord> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    PushRecord& record = out[Column(s.get(), 0)];
    record.last_push_at = Timestamp::FromMicros(sqlite3_column_int64(s.get(), 1));
    record.rows = sqlite3_column_int64(s.get(), 2);
  }
  if (rc != SQLITE_DONE) return Error("read pushes");
  return out;
}

Status SqliteRegistry::FinishRun(int64_t id, const RunOutcome& outcome) {
  GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
  Status st = UpdateRun(id, outcome);
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Result<std::vector<MaterializationRun>> SqliteRegistry::Runs(const std::string& view, int limit) {
  Statement s(db_,
              "SELECT id, view, interval_start, interval_end, triggered_by, started_at, "
              "finished_at, status, rows_read, entities_written, entities_skipped, error, pid, "
              "host, lock_token, note, newest_event FROM materialization_runs WHERE (?1 = '' "
              "OR view = ?1) ORDER BY id DESC LIMIT ?2");
  if (!s.prepared() ||
      sqlite3_bind_text(s.get(), 1, view.c_str(), -1, SQLITE_TRANSIENT) != SQLITE_OK ||
      sqlite3_bind_int(s.get(), 2, limit) != SQLITE_OK) {
    return Error("read the run history");
  }
  std::vector<MaterializationRun> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    sqlite3_stmt* r = s.get();
    MaterializationRun run;
    run.id = sqlite3_column_int64(r, 0);
    run.view = Column(r, 1);
    run.interval_start = Timestamp::FromMicros(sqlite3_column_int64(r, 2));
    run.interval_end = Timestamp::FromMicros(sqlite3_column_int64(r, 3));
    run.trigger = Column(r, 4);
    run.started_at = Timestamp::FromMicros(sqlite3_column_int64(r, 5));
    if (sqlite3_column_type(r, 6) != SQLITE_NULL) {
      run.finished_at = Timestamp::FromMicros(sqlite3_column_int64(r, 6));
    }
    const std::string status = Column(r, 7);
    run.status = status == "succeeded" ? RunStatus::kSucceeded
                 : status == "failed"  ? RunStatus::kFailed
                                       : RunStatus::kRunning;
    run.rows_read = sqlite3_column_int64(r, 8);
    run.entities_written = sqlite3_column_int64(r, 9);
    run.entities_skipped = sqlite3_column_int64(r, 10);
    run.error = Column(r, 11);
    run.pid = sqlite3_column_int64(r, 12);
    run.host = Column(r, 13);
    run.lock_token = Column(r, 14);
    run.note = Column(r, 15);
    if (sqlite3_column_type(r, 16) != SQLITE_NULL) {
      run.newest_event = Timestamp::FromMicros(sqlite3_column_int64(r, 16));
    }
    out.push_back(std::move(run));
  }
  if (rc != SQLITE_DONE) return Error("read the run history");
  return out;
}

Status SqliteRegistry::FailInterruptedRuns(const std::string& token, Timestamp now) {
  if (token.empty()) return Status::OK();
  std::vector<int64_t> dead;
  {
    Statement s(db_,
                "SELECT id FROM materialization_runs WHERE status = 'running' AND lock_token "
                "!= ?");
    if (!s.prepared() ||
        sqlite3_bind_text(s.get(), 1, token.c_str(), -1, SQLITE_TRANSIENT) != SQLITE_OK) {
      return Error("read running runs");
    }
    while (sqlite3_step(s.get()) == SQLITE_ROW) dead.push_back(sqlite3_column_int64(s.get(), 0));
  }
  for (int64_t id : dead) {
    RunOutcome outcome;
    outcome.status = RunStatus::kFailed;
    outcome.finished_at = now;
    outcome.error =
        "interrupted: the process running it ended before it finished (a crash, kill -9 or "
        "power loss); the watermark was not advanced, so the next run covers this interval";
    GRANARY_RETURN_NOT_OK(UpdateRun(id, outcome, /*keep_counts=*/true));
  }
  return Status::OK();
}

Result<int64_t> SqliteRegistry::InsertRun(const MaterializationRun& run) {
  GRANARY_RETURN_NOT_OK(FailInterruptedRuns(run.lock_token, run.started_at));
  Statement s(db_,
              "INSERT INTO materialization_runs (view, interval_start, interval_end, "
              "triggered_by, started_at, status, pid, host, lock_token, note) VALUES (?, ?, ?, "
              "?, ?, 'running', ?, ?, ?, ?)");
  bool ok =
      s.prepared() &&
      sqlite3_bind_text(s.get(), 1, run.view.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
      sqlite3_bind_int64(s.get(), 2, run.interval_start.micros) == SQLITE_OK &&
      sqlite3_bind_int64(s.get(), 3, run.interval_end.micros) == SQLITE_OK &&
      sqlite3_bind_text(s.get(), 4, run.trigger.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
      sqlite3_bind_int64(s.get(), 5, run.started_at.micros) == SQLITE_OK &&
      sqlite3_bind_int64(s.get(), 6, run.pid) == SQLITE_OK &&
      sqlite3_bind_text(s.get(), 7, run.host.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
      sqlite3_bind_text(s.get(), 8, run.lock_token.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
      sqlite3_bind_text(s.get(), 9, run.note.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
      sqlite3_step(s.get()) == SQLITE_DONE;
  if (!ok) return Error("record a materialization run");
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

Status SqliteRegistry::UpdateRun(int64_t id, const RunOutcome& outcome, bool keep_counts) {
  std::string view;
  {
    Statement s(db_, "SELECT view, status FROM materialization_runs WHERE id = ?");
    if (!s.prepared() || sqlite3_bind_int64(s.get(), 1, id) != SQLITE_OK) {
      return Error("read a materialization run");
    }
    if (sqlite3_step(s.get()) != SQLITE_ROW) {
      return Status::NotFound(
          fmt::format("registry {}: no materialization run {}", path_.string(), id));
    }
    view = Column(s.get(), 0);
    if (Column(s.get(), 1) != "running") {
      return Status::FailedPrecondition(
          fmt::format("registry {}: materialization run {} already finished", path_.string(), id));
    }
  }
  Statement s(db_, keep_counts
                       ? "UPDATE materialization_runs SET status = ?, finished_at = ?, "
                         "error = ? WHERE id = ?"
                       : "UPDATE materialization_runs SET status = ?, finished_at = ?, "
                         "error = ?, rows_read = ?, entities_written = ?, entities_skipped = ?, "
                         "newest_event = ? WHERE id = ?");
  const char* status = outcome.status == RunStatus::kSucceeded ? "succeeded" : "failed";
  bool ok = s.prepared() && sqlite3_bind_text(s.get(), 1, status, -1, SQLITE_STATIC) == SQLITE_OK &&
            sqlite3_bind_int64(s.get(), 2, outcome.finished_at.micros) == SQLITE_OK &&
            sqlite3_bind_text(s.get(), 3, outcome.error.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK;
  if (ok && keep_counts) {
    ok = sqlite3_bind_int64(s.get(), 4, id) == SQLITE_OK;
  } else if (ok) {
    ok = sqlite3_bind_int64(s.get(), 4, outcome.rows_read) == SQLITE_OK &&
         sqlite3_bind_int64(s.get(), 5, outcome.entities_written) == SQLITE_OK &&
         sqlite3_bind_int64(s.get(), 6, outcome.entities_skipped) == SQLITE_OK &&
         (outcome.newest_event ? sqlite3_bind_int64(s.get(), 7, outcome.newest_event->micros)
                               : sqlite3_bind_null(s.get(), 7)) == SQLITE_OK &&
         sqlite3_bind_int64(s.get(), 8, id) == SQLITE_OK;
  }
  if (!ok || sqlite3_step(s.get()) != SQLITE_DONE) return Error("record how a run ended");
  if (outcome.status != RunStatus::kSucceeded || !outcome.advance_watermark_to) {
    return Status::OK();
  }
  // Same layout: the watermark and the newest event time only move forward. Another layout:
  // the old watermark stood for data the online store no longer reads, so this run's end
  // replaces it. The online marker flag is the newest run's.
  Statement w(db_,
              "INSERT INTO watermarks (view, watermark, updated_at, layout, newest_event, "
              "online_marker) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (view) DO UPDATE SET "
              "newest_event = CASE WHEN layout = ?4 AND newest_event IS NOT NULL AND "
              "(?5 IS NULL OR newest_event > ?5) THEN newest_event ELSE ?5 END, "
              "watermark = CASE WHEN layout = ?4 THEN MAX(watermark, ?2) ELSE ?2 END, "
              "updated_at = ?3, layout = ?4, online_marker = ?6");
  ok = w.prepared() &&
       sqlite3_bind_text(w.get(), 1, view.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
       sqlite3_bind_int64(w.get(), 2, outcome.advance_watermark_to->micros) == SQLITE_OK &&
       sqlite3_bind_int64(w.get(), 3, outcome.finished_at.micros) == SQLITE_OK &&
       sqlite3_bind_text(w.get(), 4, outcome.watermark_layout.c_str(), -1, SQLITE_TRANSIENT) ==
           SQLITE_OK &&
       (outcome.newest_event ? sqlite3_bind_int64(w.get(), 5, outcome.newest_event->micros)
                             : sqlite3_bind_null(w.get(), 5)) == SQLITE_OK &&
       sqlite3_bind_int(w.get(), 6, outcome.wrote_online_marker ? 1 : 0) == SQLITE_OK &&
       sqlite3_step(w.get()) == SQLITE_DONE;
  if (!ok) return Error("advance a watermark");
  return Status::OK();
}

}  // namespace granary::sqlite_registry
