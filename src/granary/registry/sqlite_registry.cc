// The SQLite registry store (OpenSqliteRegistry, registry_store.h): the file, its schema and
// migrations, and the definitions' versions; the materialization state is in
// sqlite_materialization_state.cc (sqlite_registry_impl.h).
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <limits>

#include "granary/registry/registry_store.h"
#include "granary/registry/serialize.h"
#include "granary/registry/sqlite_registry_impl.h"

namespace granary::sqlite_registry {
namespace {

// The schema version this code writes (PRAGMA user_version). Older files are migrated on open.
constexpr int kSchemaVersion = 4;

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS registry_versions (
  version      INTEGER PRIMARY KEY,
  applied_at   INTEGER NOT NULL,   -- microseconds since the epoch, UTC
  fingerprint  TEXT    NOT NULL,
  project      TEXT    NOT NULL,
  definitions  TEXT    NOT NULL    -- canonical YAML (serialize.h)
);
)sql";

// Version 2: materialization state.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE IF NOT EXISTS watermarks (
  view         TEXT    PRIMARY KEY,
  watermark    INTEGER NOT NULL,   -- microseconds since the epoch, UTC
  updated_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS materialization_runs (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  view              TEXT    NOT NULL,
  interval_start    INTEGER NOT NULL,
  interval_end      INTEGER NOT NULL,
  triggered_by      TEXT    NOT NULL,
  started_at        INTEGER NOT NULL,
  finished_at       INTEGER,          -- NULL while running
  status            TEXT    NOT NULL, -- running | succeeded | failed
  rows_read         INTEGER NOT NULL DEFAULT 0,
  entities_written  INTEGER NOT NULL DEFAULT 0,
  entities_skipped  INTEGER NOT NULL DEFAULT 0,
  error             TEXT    NOT NULL DEFAULT '',
  pid               INTEGER NOT NULL,
  host              TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS materialization_runs_by_view ON materialization_runs (view, id);
)sql";

// Version 3: the online layout (schema fingerprint) a watermark was reached under; '' for
// watermarks of version 2 files (unknown: materialization starts such a view over).
constexpr const char* kSchemaV3 = R"sql(
ALTER TABLE watermarks ADD COLUMN layout TEXT NOT NULL DEFAULT '';
)sql";

// Version 4: run liveness by the repository lock's token, why a run read what it read, the
// newest event time written online, whether a watermark's run left an online marker, and pushes.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE materialization_runs ADD COLUMN lock_token TEXT NOT NULL DEFAULT '';
ALTER TABLE materialization_runs ADD COLUMN note TEXT NOT NULL DEFAULT '';
ALTER TABLE materialization_runs ADD COLUMN newest_event INTEGER;  -- NULL: no row written
ALTER TABLE watermarks ADD COLUMN newest_event INTEGER;
ALTER TABLE watermarks ADD COLUMN online_marker INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS view_pushes (
  view          TEXT    PRIMARY KEY,
  last_push_at  INTEGER NOT NULL,   -- microseconds since the epoch, UTC
  rows          INTEGER NOT NULL
);
)sql";

}  // namespace

Status SqliteRegistry::Init() {
  sqlite3_busy_timeout(db_, 10'000);
  GRANARY_RETURN_NOT_OK(Exec("PRAGMA journal_mode=WAL"));
  GRANARY_RETURN_NOT_OK(Exec("PRAGMA synchronous=NORMAL"));
  // A registry already at this schema is opened without a write transaction: a read-only command
  // (status, the console) must not wait behind a materialization's open write. A migration
  // re-reads the version inside its own transaction, so two processes cannot both apply it.
  {
    Statement s(db_, "PRAGMA user_version");
    if (s.prepared() && sqlite3_step(s.get()) == SQLITE_ROW &&
        sqlite3_column_int(s.get(), 0) == kSchemaVersion) {
      return Status::OK();
    }
  }
  GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
  Status st = Migrate();
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Result<std::optional<RegistryVersion>> SqliteRegistry::Latest() {
  return ReadVersion(
      "SELECT version, applied_at, fingerprint, project, definitions "
      "FROM registry_versions ORDER BY version DESC LIMIT 1",
      std::nullopt, "read the latest version");
}

Result<std::optional<RegistryVersion>> SqliteRegistry::Version(int64_t version) {
  return ReadVersion(
      "SELECT version, applied_at, fingerprint, project, definitions "
      "FROM registry_versions WHERE version = ?",
      version, fmt::format("read version {}", version));
}

Result<RegistryVersionInfo> SqliteRegistry::CommitVersion(const Definitions& defs,
                                                          Timestamp applied_at,
                                                          std::optional<int64_t> expected_latest) {
  GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
  if (expected_latest) {
    Result<int64_t> newest = NewestVersion();
    Status st = newest.status();
    if (st.ok() && *newest != *expected_latest) st = ConcurrentApply(*newest, *expected_latest);
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
  }
  RegistryVersionInfo info;
  info.applied_at = applied_at;
  info.fingerprint = DefinitionsFingerprint(defs);
  info.project = defs.project;
  Result<int64_t> version =
      InsertVersion(-1, applied_at, info.fingerprint, info.project, DefinitionsToYaml(defs));
  if (!version.ok()) {
    (void)Exec("ROLLBACK");
    return version.status();
  }
  info.version = *version;
  GRANARY_RETURN_NOT_OK(Exec("COMMIT"));
  return info;
}

Result<RegistryContents> SqliteRegistry::Export() {
  // One read transaction: a consistent snapshot even while others write (WAL).
  GRANARY_RETURN_NOT_OK(Exec("BEGIN"));
  Result<RegistryContents> out = ReadContents();
  (void)Exec(out.ok() ? "COMMIT" : "ROLLBACK");
  return out;
}

Status SqliteRegistry::Import(const RegistryContents& contents) {
  GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
  Status st = WriteContents(contents);
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

Result<std::vector<RegistryVersionInfo>> SqliteRegistry::History(int limit) {
  Statement s(db_,
              "SELECT version, applied_at, fingerprint, project FROM registry_versions "
              "ORDER BY version DESC LIMIT ?");
  if (!s.prepared() || sqlite3_bind_int(s.get(), 1, limit) != SQLITE_OK) {
    return Error("read the version history");
  }
  std::vector<RegistryVersionInfo> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) out.push_back(InfoFromRow(s.get()));
  if (rc != SQLITE_DONE) return Error("read the version history");
  return out;
}

Result<std::optional<RegistryVersion>> SqliteRegistry::ReadVersion(const char* sql,
                                                                   std::optional<int64_t> bind,
                                                                   const std::string& what) {
  Statement s(db_, sql);
  if (!s.prepared()) return Error(what);
  if (bind && sqlite3_bind_int64(s.get(), 1, *bind) != SQLITE_OK) return Error(what);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return std::optional<RegistryVersion>();
  if (rc != SQLITE_ROW) return Error(what);
  RegistryVersion v;
  v.info = InfoFromRow(s.get());
  GRANARY_ASSIGN_OR_RAISE(
      v.definitions,
      DefinitionsFromYaml(Column(s.get(), 4),
                          fmt::format("{} (version {})", path_.string(), v.info.version)));
  v.definitions.project = v.info.project;
  return std::optional<RegistryVersion>(std::move(v));
}

Result<int64_t> SqliteRegistry::NewestVersion() {
  Statement s(db_, "SELECT COALESCE(MAX(version), 0) FROM registry_versions");
  if (!s.prepared() || sqlite3_step(s.get()) != SQLITE_ROW) return Error("read the versions");
  return static_cast<int64_t>(sqlite3_column_int64(s.get(), 0));
}

Status SqliteRegistry::ConcurrentApply(int64_t newest, int64_t expected) {
  return Status::AlreadyExists(fmt::format(
      "registry {}: another apply stored version {} while this one was planned against "
      "version {}; nothing was written: run 'granary plan' to see the changes against the new "
      "version, then apply again",
      path_.string(), newest, expected));
}

Result<int64_t> SqliteRegistry::InsertVersion(int64_t version, Timestamp applied_at,
                                              const std::string& fingerprint,
                                              const std::string& project, const std::string& yaml) {
  Statement s(db_,
              "INSERT INTO registry_versions (version, applied_at, fingerprint, project, "
              "definitions) VALUES (CASE WHEN ?1 < 0 THEN (SELECT COALESCE(MAX(version), 0) + 1 "
              "FROM registry_versions) ELSE ?1 END, ?2, ?3, ?4, ?5) RETURNING version");
  bool ok = s.prepared() && sqlite3_bind_int64(s.get(), 1, version) == SQLITE_OK &&
            sqlite3_bind_int64(s.get(), 2, applied_at.micros) == SQLITE_OK &&
            sqlite3_bind_text(s.get(), 3, fingerprint.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_text(s.get(), 4, project.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_bind_text(s.get(), 5, yaml.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
            sqlite3_step(s.get()) == SQLITE_ROW;
  if (!ok) return Error("store a new version");
  const int64_t stored = sqlite3_column_int64(s.get(), 0);
  sqlite3_reset(s.get());
  return stored;
}

Result<RegistryContents> SqliteRegistry::ReadContents() {
  RegistryContents out;
  {
    Statement s(db_,
                "SELECT version, applied_at, fingerprint, project, definitions FROM "
                "registry_versions ORDER BY version");
    if (!s.prepared()) return Error("read the versions");
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      out.versions.push_back({InfoFromRow(s.get()), Column(s.get(), 4)});
    }
    if (rc != SQLITE_DONE) return Error("read the versions");
  }
  GRANARY_ASSIGN_OR_RAISE(out.watermarks, WatermarkStates());
  GRANARY_ASSIGN_OR_RAISE(out.runs, Runs("", std::numeric_limits<int>::max()));
  std::reverse(out.runs.begin(), out.runs.end());
  GRANARY_ASSIGN_OR_RAISE(out.pushes, Pushes());
  return out;
}

Status SqliteRegistry::WriteContents(const RegistryContents& c) {
  {
    Statement s(db_,
                "SELECT (SELECT COUNT(*) FROM registry_versions) + (SELECT COUNT(*) FROM "
                "materialization_runs) + (SELECT COUNT(*) FROM watermarks)");
    if (!s.prepared() || sqlite3_step(s.get()) != SQLITE_ROW) return Error("read the registry");
    if (sqlite3_column_int64(s.get(), 0) != 0) {
      return Status::FailedPrecondition(fmt::format(
          "registry {} is not empty; import only into a new registry (point granary.yaml's "
          "'registry' at a new file or schema)",
          path_.string()));
    }
  }
  for (const StoredVersion& v : c.versions) {
    GRANARY_RETURN_NOT_OK(InsertVersion(v.info.version, v.info.applied_at, v.info.fingerprint,
                                        v.info.project, v.definitions_yaml)
                              .status());
  }
  for (const auto& [view, w] : c.watermarks) {
    Statement s(db_,
                "INSERT INTO watermarks (view, watermark, updated_at, layout, newest_event, "
                "online_marker) VALUES (?, ?, ?, ?, ?, ?)");
    bool ok = s.prepared() &&
              sqlite3_bind_text(s.get(), 1, view.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_int64(s.get(), 2, w.watermark.micros) == SQLITE_OK &&
              sqlite3_bind_int64(s.get(), 3, w.updated_at.micros) == SQLITE_OK &&
              sqlite3_bind_text(s.get(), 4, w.layout.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              (w.newest_event ? sqlite3_bind_int64(s.get(), 5, w.newest_event->micros)
                              : sqlite3_bind_null(s.get(), 5)) == SQLITE_OK &&
              sqlite3_bind_int(s.get(), 6, w.online_marker ? 1 : 0) == SQLITE_OK &&
              sqlite3_step(s.get()) == SQLITE_DONE;
    if (!ok) return Error("import a watermark");
  }
  for (const MaterializationRun& r : c.runs) {
    Statement s(db_,
                "INSERT INTO materialization_runs (id, view, interval_start, interval_end, "
                "triggered_by, started_at, finished_at, status, rows_read, entities_written, "
                "entities_skipped, error, pid, host, lock_token, note, newest_event) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_stmt* st = s.get();
    const std::string status(RunStatusName(r.status));
    bool ok = s.prepared() && sqlite3_bind_int64(st, 1, r.id) == SQLITE_OK &&
              sqlite3_bind_text(st, 2, r.view.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_int64(st, 3, r.interval_start.micros) == SQLITE_OK &&
              sqlite3_bind_int64(st, 4, r.interval_end.micros) == SQLITE_OK &&
              sqlite3_bind_text(st, 5, r.trigger.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_int64(st, 6, r.started_at.micros) == SQLITE_OK &&
              (r.finished_at ? sqlite3_bind_int64(st, 7, r.finished_at->micros)
                             : sqlite3_bind_null(st, 7)) == SQLITE_OK &&
              sqlite3_bind_text(st, 8, status.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_int64(st, 9, r.rows_read) == SQLITE_OK &&
              sqlite3_bind_int64(st, 10, r.entities_written) == SQLITE_OK &&
              sqlite3_bind_int64(st, 11, r.entities_skipped) == SQLITE_OK &&
              sqlite3_bind_text(st, 12, r.error.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_int64(st, 13, r.pid) == SQLITE_OK &&
              sqlite3_bind_text(st, 14, r.host.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_text(st, 15, r.lock_token.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_text(st, 16, r.note.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              (r.newest_event ? sqlite3_bind_int64(st, 17, r.newest_event->micros)
                              : sqlite3_bind_null(st, 17)) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_DONE;
    if (!ok) return Error("import a materialization run");
  }
  for (const auto& [view, p] : c.pushes) {
    Statement s(db_, "INSERT INTO view_pushes (view, last_push_at, rows) VALUES (?, ?, ?)");
    bool ok = s.prepared() &&
              sqlite3_bind_text(s.get(), 1, view.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_int64(s.get(), 2, p.last_push_at.micros) == SQLITE_OK &&
              sqlite3_bind_int64(s.get(), 3, p.rows) == SQLITE_OK &&
              sqlite3_step(s.get()) == SQLITE_DONE;
    if (!ok) return Error("import a push record");
  }
  return Status::OK();
}

RegistryVersionInfo SqliteRegistry::InfoFromRow(sqlite3_stmt* s) {
  RegistryVersionInfo info;
  info.version = sqlite3_column_int64(s, 0);
  info.applied_at = Timestamp::FromMicros(sqlite3_column_int64(s, 1));
  info.fingerprint = Column(s, 2);
  info.project = Column(s, 3);
  return info;
}

Status SqliteRegistry::Migrate() {
  int version = 0;
  {
    Statement s(db_, "PRAGMA user_version");
    if (!s.prepared() || sqlite3_step(s.get()) != SQLITE_ROW)
      return Error("read the schema version");
    version = sqlite3_column_int(s.get(), 0);
  }
  if (version > kSchemaVersion) {
    return Status::FailedPrecondition(fmt::format(
        "registry {} was written by a newer Granary (schema {}, this build knows {}); upgrade "
        "granary",
        path_.string(), version, kSchemaVersion));
  }
  if (version < 1) GRANARY_RETURN_NOT_OK(Exec(kSchemaV1));
  if (version < 2) GRANARY_RETURN_NOT_OK(Exec(kSchemaV2));
  if (version < 3) GRANARY_RETURN_NOT_OK(Exec(kSchemaV3));
  if (version < 4) GRANARY_RETURN_NOT_OK(Exec(kSchemaV4));
  return Exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
}

Status SqliteRegistry::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    int code = sqlite3_errcode(db_);
    return Status(code == SQLITE_BUSY || code == SQLITE_LOCKED ? StatusCode::kUnavailable
                                                               : StatusCode::kIOError,
                  fmt::format("registry {}: {}", path_.string(), msg));
  }
  return Status::OK();
}

Status SqliteRegistry::Error(std::string_view what) {
  int code = sqlite3_errcode(db_);
  if (code == SQLITE_CORRUPT || code == SQLITE_NOTADB) {
    return Status::Corruption(
        fmt::format("registry {} is not a readable registry ({}); restore "
                    "it from a backup or remove it and apply again",
                    path_.string(), sqlite3_errmsg(db_)));
  }
  return Status(
      code == SQLITE_BUSY ? StatusCode::kUnavailable : StatusCode::kIOError,
      fmt::format("registry {}: cannot {}: {}", path_.string(), what, sqlite3_errmsg(db_)));
}

}  // namespace granary::sqlite_registry

namespace granary {

Result<std::unique_ptr<RegistryStore>> OpenSqliteRegistry(const std::filesystem::path& path,
                                                          OpenMode mode) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (mode == OpenMode::kOpenExisting) {
      return NoDefinitionsApplied(path.string());
    }
    if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return Status::IOError(
          fmt::format("cannot create {}: {}", path.parent_path().string(), ec.message()));
    }
  }
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX |
              (mode == OpenMode::kCreateIfMissing ? SQLITE_OPEN_CREATE : 0);
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Status::IOError(fmt::format("cannot open registry {}: {}", path.string(), msg));
  }
  auto store = std::make_unique<sqlite_registry::SqliteRegistry>(db, path);
  Status st = store->Init();
  if (!st.ok()) {
    if (st.code() == StatusCode::kIOError &&
        st.message().find("not a database") != std::string::npos) {
      return Status::Corruption(
          fmt::format("{} is not a Granary registry (not a SQLite database); "
                      "point 'registry' in granary.yaml elsewhere or remove it",
                      path.string()));
    }
    return st;
  }
  return std::unique_ptr<RegistryStore>(std::move(store));
}

}  // namespace granary
