#include "granary/registry/postgres_registry.h"

#include <fmt/format.h>
#include <poll.h>

#include <algorithm>

#include "granary/registry/postgres_connection.h"
#include "granary/registry/serialize.h"

namespace granary {
namespace {

// The schema version this code writes (schema_version.version).
constexpr int kPgSchemaVersion = 1;

// The channel commits notify; the payload is the schema, so one LISTEN serves many registries.
constexpr const char* kChannel = "granary_registry";

constexpr const char* kPgSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS registry_versions (
  version      BIGINT PRIMARY KEY,
  applied_at   BIGINT NOT NULL,   -- microseconds since the epoch, UTC
  fingerprint  TEXT   NOT NULL,
  project      TEXT   NOT NULL,
  definitions  TEXT   NOT NULL    -- canonical YAML (serialize.h)
);
CREATE TABLE IF NOT EXISTS watermarks (
  view           TEXT    PRIMARY KEY,
  watermark      BIGINT  NOT NULL,
  updated_at     BIGINT  NOT NULL,
  layout         TEXT    NOT NULL DEFAULT '',
  newest_event   BIGINT,
  online_marker  BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE IF NOT EXISTS materialization_runs (
  id                BIGSERIAL PRIMARY KEY,
  view              TEXT   NOT NULL,
  interval_start    BIGINT NOT NULL,
  interval_end      BIGINT NOT NULL,
  triggered_by      TEXT   NOT NULL,
  started_at        BIGINT NOT NULL,
  finished_at       BIGINT,          -- NULL while running
  status            TEXT   NOT NULL, -- running | succeeded | failed
  rows_read         BIGINT NOT NULL DEFAULT 0,
  entities_written  BIGINT NOT NULL DEFAULT 0,
  entities_skipped  BIGINT NOT NULL DEFAULT 0,
  error             TEXT   NOT NULL DEFAULT '',
  pid               BIGINT NOT NULL,
  host              TEXT   NOT NULL,
  lock_token        TEXT   NOT NULL DEFAULT '',
  note              TEXT   NOT NULL DEFAULT '',
  newest_event      BIGINT
);
CREATE INDEX IF NOT EXISTS materialization_runs_by_view ON materialization_runs (view, id);
CREATE TABLE IF NOT EXISTS view_pushes (
  view          TEXT   PRIMARY KEY,
  last_push_at  BIGINT NOT NULL,
  rows          BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS materialization_lock (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  token        TEXT    NOT NULL,
  note         TEXT    NOT NULL,
  backend_pid  INTEGER NOT NULL   -- the holder's connection (pg_locks.pid)
);
)sql";

constexpr const char* kRunColumns =
    "id, view, interval_start, interval_end, triggered_by, started_at, finished_at, status, "
    "rows_read, entities_written, entities_skipped, error, pid, host, lock_token, note, "
    "newest_event";

RunStatus ParseRunStatus(const std::string& s) {
  return s == "succeeded" ? RunStatus::kSucceeded
         : s == "failed"  ? RunStatus::kFailed
                          : RunStatus::kRunning;
}

// Runs `body` in a transaction: COMMIT when it succeeds, ROLLBACK otherwise.
template <typename Body>
auto InTransaction(PgConnection& c, Body&& body) -> decltype(body()) {
  GRANARY_RETURN_NOT_OK(c.Run("begin a transaction", "BEGIN"));
  auto result = body();
  if (!result.ok()) {
    c.Rollback();
    return result;
  }
  Status committed = c.Run("commit", "COMMIT");
  if (!committed.ok()) {
    c.Rollback();
    return committed;
  }
  return result;
}

class PostgresChangeFeed final : public RegistryChangeFeed {
 public:
  PostgresChangeFeed(std::unique_ptr<PgConnection> conn, std::string schema)
      : conn_(std::move(conn)), schema_(std::move(schema)) {}

  Result<bool> Wait(int timeout_ms) override {
    PGconn* c = conn_->raw();
    if (Pq().status(c) != CONNECTION_OK) return Lost();
    if (Drain()) return true;
    pollfd fd{Pq().socket(c), POLLIN, 0};
    if (fd.fd < 0) return Lost();
    const int n = poll(&fd, 1, timeout_ms);
    if (n <= 0) return false;
    if (Pq().consumeInput(c) == 0) return Lost();
    return Drain();
  }

 private:
  bool Drain() {
    bool heard = false;
    Pq().consumeInput(conn_->raw());
    while (PGnotify* n = Pq().notifies(conn_->raw())) {
      if (n->extra != nullptr && schema_ == n->extra) heard = true;
      Pq().freemem(n);
    }
    return heard;
  }
  Status Lost() {
    return Status::Unavailable(fmt::format("registry {}: the change feed lost its connection",
                                           conn_->location().Describe()));
  }

  std::unique_ptr<PgConnection> conn_;
  std::string schema_;
};

class PostgresRegistry final : public RegistryStore {
 public:
  explicit PostgresRegistry(std::unique_ptr<PgConnection> conn) : c_(std::move(conn)) {}

  // Creates or migrates the schema (kCreateIfMissing), or checks it exists (kOpenExisting).
  Status Init(OpenMode mode) {
    const RegistryLocation& loc = c_->location();
    GRANARY_ASSIGN_OR_RAISE(
        PgResult exists, c_->Exec("read the schema version", "SELECT to_regclass($1) IS NOT NULL",
                                  {Param(QuoteIdentifier(loc.schema) + ".schema_version")}));
    if (!exists.Bool(0, 0) && mode == OpenMode::kOpenExisting) {
      return NoDefinitionsApplied(Describe());
    }
    if (exists.Bool(0, 0)) {
      GRANARY_ASSIGN_OR_RAISE(int version, ReadSchemaVersion());
      GRANARY_RETURN_NOT_OK(CheckNotNewer(version));
      if (version == kPgSchemaVersion) return Status::OK();
    }
    return InTransaction(*c_, [&]() -> Status {
      // Two hosts opening a new registry at once: one creates, the other waits and sees it.
      GRANARY_RETURN_NOT_OK(c_->Exec("lock the schema for migration",
                                     "SELECT pg_advisory_xact_lock(hashtext($1))",
                                     {Param("granary-migrate:" + loc.schema)})
                                .status());
      GRANARY_RETURN_NOT_OK(c_->Run(
          "create the registry schema",
          fmt::format("CREATE SCHEMA IF NOT EXISTS {}; CREATE TABLE IF NOT EXISTS "
                      "schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER "
                      "NOT NULL); INSERT INTO schema_version VALUES (1, 0) ON CONFLICT DO "
                      "NOTHING",
                      QuoteIdentifier(loc.schema))));
      GRANARY_ASSIGN_OR_RAISE(int version, ReadSchemaVersion());
      GRANARY_RETURN_NOT_OK(CheckNotNewer(version));
      if (version < 1) GRANARY_RETURN_NOT_OK(c_->Run("create the registry tables", kPgSchemaV1));
      return c_
          ->Exec("record the schema version", "UPDATE schema_version SET version = $1",
                 {Param(int64_t{kPgSchemaVersion})})
          .status();
    });
  }

  std::string Describe() const override { return c_->location().Describe(); }

  Result<std::optional<RegistryVersion>> Latest() override {
    return ReadVersion("read the latest version",
                       "SELECT version, applied_at, fingerprint, project, definitions FROM "
                       "registry_versions ORDER BY version DESC LIMIT 1",
                       {});
  }

  Result<std::optional<RegistryVersion>> Version(int64_t version) override {
    return ReadVersion(fmt::format("read version {}", version),
                       "SELECT version, applied_at, fingerprint, project, definitions FROM "
                       "registry_versions WHERE version = $1",
                       {Param(version)});
  }

  // One row of registry_versions (version, applied_at, fingerprint, project, definitions) as a
  // version, or std::nullopt when the statement selects none.
  Result<std::optional<RegistryVersion>> ReadVersion(const std::string& what,
                                                     const std::string& sql,
                                                     const std::vector<PgParam>& params) {
    GRANARY_ASSIGN_OR_RAISE(PgResult r, c_->Exec(what, sql, params));
    if (r.rows() == 0) return std::optional<RegistryVersion>();
    RegistryVersion v;
    v.info = InfoFromRow(r, 0);
    GRANARY_ASSIGN_OR_RAISE(
        v.definitions, DefinitionsFromYaml(r.Text(0, 4), fmt::format("{} (version {})", Describe(),
                                                                     v.info.version)));
    v.definitions.project = v.info.project;
    return std::optional<RegistryVersion>(std::move(v));
  }

  Result<RegistryVersionInfo> CommitVersion(const Definitions& defs, Timestamp applied_at,
                                            std::optional<int64_t> expected_latest) override {
    RegistryVersionInfo info;
    info.applied_at = applied_at;
    info.fingerprint = DefinitionsFingerprint(defs);
    info.project = defs.project;
    const std::string yaml = DefinitionsToYaml(defs);
    // Without an expected version, a lost race is retried: the caller wants any next number.
    for (int attempt = 0;; ++attempt) {
      Result<int64_t> stored = InTransaction(*c_, [&]() -> Result<int64_t> {
        GRANARY_ASSIGN_OR_RAISE(
            PgResult newest, c_->Exec("read the versions",
                                      "SELECT COALESCE(MAX(version), 0) FROM registry_versions"));
        const int64_t latest = newest.Int(0, 0);
        if (expected_latest && latest != *expected_latest) {
          return ConcurrentApply(latest, *expected_latest);
        }
        auto inserted = c_->Exec("store a new version",
                                 "INSERT INTO registry_versions (version, applied_at, "
                                 "fingerprint, project, definitions) VALUES ($1, $2, $3, $4, $5)",
                                 {Param(latest + 1), Param(applied_at.micros),
                                  Param(info.fingerprint), Param(info.project), Param(yaml)});
        if (!inserted.ok()) {
          if (c_->last_sqlstate() == kPgUniqueViolation) {
            return Status::AlreadyExists(
                fmt::format("version {} was stored meanwhile", latest + 1));
          }
          return inserted.status();
        }
        GRANARY_RETURN_NOT_OK(c_->Exec("announce the new version", "SELECT pg_notify($1, $2)",
                                       {Param(kChannel), Param(c_->location().schema)})
                                  .status());
        return latest + 1;
      });
      if (stored.ok()) {
        info.version = *stored;
        return info;
      }
      if (stored.status().code() != StatusCode::kAlreadyExists) return stored.status();
      if (expected_latest) {
        // Another apply inserted the next version under our feet (the primary key said so).
        if (stored.status().message().find("meanwhile") != std::string::npos) {
          return ConcurrentApply(*expected_latest + 1, *expected_latest);
        }
        return stored.status();
      }
      if (attempt >= 5) return stored.status();
    }
  }

  Result<std::vector<RegistryVersionInfo>> History(int limit) override {
    GRANARY_ASSIGN_OR_RAISE(PgResult r, c_->Exec("read the version history",
                                                 "SELECT version, applied_at, fingerprint, "
                                                 "project FROM registry_versions ORDER BY "
                                                 "version DESC LIMIT $1",
                                                 {Param(int64_t{limit})}));
    std::vector<RegistryVersionInfo> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(InfoFromRow(r, i));
    return out;
  }

  Result<std::unique_ptr<RegistryChangeFeed>> WatchChanges() override {
    GRANARY_ASSIGN_OR_RAISE(auto conn, PgConnection::Connect(c_->location()));
    GRANARY_RETURN_NOT_OK(conn->Run("listen for new versions", fmt::format("LISTEN {}", kChannel)));
    std::string schema = c_->location().schema;
    return std::unique_ptr<RegistryChangeFeed>(
        new PostgresChangeFeed(std::move(conn), std::move(schema)));
  }

  Result<std::map<std::string, Timestamp>> Watermarks() override {
    GRANARY_ASSIGN_OR_RAISE(auto states, WatermarkStates());
    std::map<std::string, Timestamp> out;
    for (const auto& [view, s] : states) out[view] = s.watermark;
    return out;
  }

  Result<std::map<std::string, WatermarkState>> WatermarkStates() override {
    GRANARY_ASSIGN_OR_RAISE(PgResult r,
                            c_->Exec("read watermarks",
                                     "SELECT view, watermark, layout, updated_at, newest_event, "
                                     "online_marker FROM watermarks"));
    std::map<std::string, WatermarkState> out;
    for (int i = 0; i < r.rows(); ++i) {
      WatermarkState& s = out[r.Text(i, 0)];
      s.watermark = Timestamp::FromMicros(r.Int(i, 1));
      s.layout = r.Text(i, 2);
      s.updated_at = Timestamp::FromMicros(r.Int(i, 3));
      if (auto e = r.OptionalInt(i, 4)) s.newest_event = Timestamp::FromMicros(*e);
      s.online_marker = r.Bool(i, 5);
    }
    return out;
  }

  Result<int64_t> StartRun(const MaterializationRun& run) override {
    return InTransaction(*c_, [&]() -> Result<int64_t> { return InsertRun(run); });
  }

  Status UpdateRunProgress(int64_t id, int64_t rows_read, int64_t entities_written,
                           int64_t entities_skipped) override {
    return c_
        ->Exec("record a run's progress",
               "UPDATE materialization_runs SET rows_read = $1, entities_written = $2, "
               "entities_skipped = $3 WHERE id = $4 AND status = 'running'",
               {Param(rows_read), Param(entities_written), Param(entities_skipped), Param(id)})
        .status();
  }

  Result<int64_t> RecordFailedRun(const MaterializationRun& run) override {
    return InTransaction(*c_, [&]() -> Result<int64_t> {
      GRANARY_ASSIGN_OR_RAISE(int64_t id, InsertRun(run));
      RunOutcome outcome;
      outcome.status = RunStatus::kFailed;
      outcome.finished_at = run.finished_at.value_or(run.started_at);
      outcome.error = run.error;
      GRANARY_RETURN_NOT_OK(UpdateRun(id, outcome));
      return id;
    });
  }

  Status FinishRun(int64_t id, const RunOutcome& outcome) override {
    return InTransaction(*c_, [&]() -> Status { return UpdateRun(id, outcome); });
  }

  Result<std::vector<MaterializationRun>> Runs(const std::string& view, int limit) override {
    GRANARY_ASSIGN_OR_RAISE(
        PgResult r, c_->Exec("read the run history",
                             fmt::format("SELECT {} FROM materialization_runs WHERE ($1 = '' OR "
                                         "view = $1) ORDER BY id DESC LIMIT $2",
                                         kRunColumns),
                             {Param(view), Param(int64_t{limit})}));
    std::vector<MaterializationRun> out;
    for (int i = 0; i < r.rows(); ++i) out.push_back(RunFromRow(r, i));
    return out;
  }

  Status RecordPush(const std::string& view, Timestamp at, int64_t rows) override {
    return c_
        ->Exec("record a push",
               "INSERT INTO view_pushes AS p (view, last_push_at, rows) VALUES ($1, $2, $3) "
               "ON CONFLICT (view) DO UPDATE SET last_push_at = GREATEST(p.last_push_at, "
               "EXCLUDED.last_push_at), rows = p.rows + EXCLUDED.rows",
               {Param(view), Param(at.micros), Param(rows)})
        .status();
  }

  Result<std::map<std::string, PushRecord>> Pushes() override {
    GRANARY_ASSIGN_OR_RAISE(
        PgResult r, c_->Exec("read pushes", "SELECT view, last_push_at, rows FROM view_pushes"));
    std::map<std::string, PushRecord> out;
    for (int i = 0; i < r.rows(); ++i) {
      PushRecord& p = out[r.Text(i, 0)];
      p.last_push_at = Timestamp::FromMicros(r.Int(i, 1));
      p.rows = r.Int(i, 2);
    }
    return out;
  }

  Result<RegistryContents> Export() override {
    // One REPEATABLE READ transaction: every table read at the same instant.
    GRANARY_RETURN_NOT_OK(
        c_->Run("begin a read transaction", "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    Result<RegistryContents> out = ReadContents();
    c_->Rollback();
    return out;
  }

  Status Import(const RegistryContents& contents) override {
    return InTransaction(*c_, [&]() -> Status { return WriteContents(contents); });
  }

 private:
  Result<int> ReadSchemaVersion() {
    GRANARY_ASSIGN_OR_RAISE(
        PgResult r, c_->Exec("read the schema version", "SELECT version FROM schema_version"));
    return r.rows() == 0 ? 0 : static_cast<int>(r.Int(0, 0));
  }

  Status CheckNotNewer(int version) {
    if (version <= kPgSchemaVersion) return Status::OK();
    return Status::FailedPrecondition(fmt::format(
        "registry {} was written by a newer Granary (schema {}, this build knows {}); upgrade "
        "granary on this host",
        Describe(), version, kPgSchemaVersion));
  }

  Status ConcurrentApply(int64_t newest, int64_t expected) {
    return Status::AlreadyExists(fmt::format(
        "registry {}: another apply stored version {} while this one was planned against "
        "version {}; nothing was written: run 'granary plan' to see the changes against the new "
        "version, then apply again",
        Describe(), newest, expected));
  }

  Result<int64_t> InsertRun(const MaterializationRun& run) {
    if (!run.lock_token.empty()) {
      GRANARY_RETURN_NOT_OK(
          c_->Exec("mark interrupted runs failed",
                   "UPDATE materialization_runs SET status = 'failed', finished_at = $2, error = "
                   "$3 WHERE status = 'running' AND lock_token <> $1",
                   {Param(run.lock_token), Param(run.started_at.micros),
                    Param("interrupted: the process running it ended before it finished (a "
                          "crash, kill -9 or power loss); the watermark was not advanced, so the "
                          "next run covers this interval")})
              .status());
    }
    GRANARY_ASSIGN_OR_RAISE(
        PgResult r,
        c_->Exec("record a materialization run",
                 "INSERT INTO materialization_runs (view, interval_start, interval_end, "
                 "triggered_by, started_at, status, pid, host, lock_token, note) VALUES ($1, $2, "
                 "$3, $4, $5, 'running', $6, $7, $8, $9) RETURNING id",
                 {Param(run.view), Param(run.interval_start.micros), Param(run.interval_end.micros),
                  Param(run.trigger), Param(run.started_at.micros), Param(run.pid), Param(run.host),
                  Param(run.lock_token), Param(run.note)}));
    return r.Int(0, 0);
  }

  Status UpdateRun(int64_t id, const RunOutcome& outcome) {
    GRANARY_ASSIGN_OR_RAISE(PgResult found,
                            c_->Exec("read a materialization run",
                                     "SELECT view, status FROM materialization_runs WHERE id = $1 "
                                     "FOR UPDATE",
                                     {Param(id)}));
    if (found.rows() == 0) {
      return Status::NotFound(
          fmt::format("registry {}: no materialization run {}", Describe(), id));
    }
    const std::string view = found.Text(0, 0);
    if (found.Text(0, 1) != "running") {
      return Status::FailedPrecondition(
          fmt::format("registry {}: materialization run {} already finished", Describe(), id));
    }
    auto newest = [](const std::optional<Timestamp>& t) {
      return t ? Param(t->micros) : PgParam();
    };
    GRANARY_RETURN_NOT_OK(
        c_->Exec("record how a run ended",
                 "UPDATE materialization_runs SET status = $1, finished_at = $2, error = $3, "
                 "rows_read = $4, entities_written = $5, entities_skipped = $6, newest_event = "
                 "$7 WHERE id = $8",
                 {Param(outcome.status == RunStatus::kSucceeded ? "succeeded" : "failed"),
                  Param(outcome.finished_at.micros), Param(outcome.error), Param(outcome.rows_read),
                  Param(outcome.entities_written), Param(outcome.entities_skipped),
                  newest(outcome.newest_event), Param(id)})
            .status());
    if (outcome.status != RunStatus::kSucceeded || !outcome.advance_watermark_to) {
      return Status::OK();
    }
    // As in SQLite: same layout, the watermark and newest event only move forward; another
    // layout replaces them.
    return c_
        ->Exec("advance a watermark",
               "INSERT INTO watermarks AS w (view, watermark, updated_at, layout, newest_event, "
               "online_marker) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (view) DO UPDATE SET "
               "newest_event = CASE WHEN w.layout = EXCLUDED.layout AND w.newest_event IS NOT "
               "NULL AND (EXCLUDED.newest_event IS NULL OR w.newest_event > "
               "EXCLUDED.newest_event) THEN w.newest_event ELSE EXCLUDED.newest_event END, "
               "watermark = CASE WHEN w.layout = EXCLUDED.layout THEN GREATEST(w.watermark, "
               "EXCLUDED.watermark) ELSE EXCLUDED.watermark END, updated_at = "
               "EXCLUDED.updated_at, layout = EXCLUDED.layout, online_marker = "
               "EXCLUDED.online_marker",
               {Param(view), Param(outcome.advance_watermark_to->micros),
                Param(outcome.finished_at.micros), Param(outcome.watermark_layout),
                newest(outcome.newest_event), Param(outcome.wrote_online_marker)})
        .status();
  }

  Result<RegistryContents> ReadContents() {
    RegistryContents out;
    GRANARY_ASSIGN_OR_RAISE(PgResult v, c_->Exec("read the versions",
                                                 "SELECT version, applied_at, fingerprint, "
                                                 "project, definitions FROM registry_versions "
                                                 "ORDER BY version"));
    for (int i = 0; i < v.rows(); ++i) out.versions.push_back({InfoFromRow(v, i), v.Text(i, 4)});
    GRANARY_ASSIGN_OR_RAISE(out.watermarks, WatermarkStates());
    GRANARY_ASSIGN_OR_RAISE(
        PgResult r,
        c_->Exec("read the run history",
                 fmt::format("SELECT {} FROM materialization_runs ORDER BY id", kRunColumns)));
    for (int i = 0; i < r.rows(); ++i) out.runs.push_back(RunFromRow(r, i));
    GRANARY_ASSIGN_OR_RAISE(out.pushes, Pushes());
    return out;
  }

  Status WriteContents(const RegistryContents& c) {
    GRANARY_ASSIGN_OR_RAISE(
        PgResult n, c_->Exec("read the registry",
                             "SELECT (SELECT COUNT(*) FROM registry_versions) + (SELECT COUNT(*) "
                             "FROM materialization_runs) + (SELECT COUNT(*) FROM watermarks)"));
    if (n.Int(0, 0) != 0) {
      return Status::FailedPrecondition(fmt::format(
          "registry {} is not empty; import only into a new registry (point granary.yaml's "
          "'registry' at a new schema or database)",
          Describe()));
    }
    for (const StoredVersion& v : c.versions) {
      GRANARY_RETURN_NOT_OK(
          c_->Exec("import a version",
                   "INSERT INTO registry_versions (version, applied_at, "
                   "fingerprint, project, definitions) VALUES ($1, $2, $3, $4, "
                   "$5)",
                   {Param(v.info.version), Param(v.info.applied_at.micros),
                    Param(v.info.fingerprint), Param(v.info.project), Param(v.definitions_yaml)})
              .status());
    }
    for (const auto& [view, w] : c.watermarks) {
      GRANARY_RETURN_NOT_OK(
          c_->Exec("import a watermark",
                   "INSERT INTO watermarks (view, watermark, updated_at, layout, newest_event, "
                   "online_marker) VALUES ($1, $2, $3, $4, $5, $6)",
                   {Param(view), Param(w.watermark.micros), Param(w.updated_at.micros),
                    Param(w.layout), w.newest_event ? Param(w.newest_event->micros) : PgParam(),
                    Param(w.online_marker)})
              .status());
    }
    for (const MaterializationRun& r : c.runs) {
      GRANARY_RETURN_NOT_OK(
          c_->Exec("import a materialization run",
                   fmt::format("INSERT INTO materialization_runs ({}) VALUES ($1, $2, $3, $4, "
                               "$5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
                               kRunColumns),
                   {Param(r.id), Param(r.view), Param(r.interval_start.micros),
                    Param(r.interval_end.micros), Param(r.trigger), Param(r.started_at.micros),
                    r.finished_at ? Param(r.finished_at->micros) : PgParam(),
                    Param(std::string(RunStatusName(r.status))), Param(r.rows_read),
                    Param(r.entities_written), Param(r.entities_skipped), Param(r.error),
                    Param(r.pid), Param(r.host), Param(r.lock_token), Param(r.note),
                    r.newest_event ? Param(r.newest_event->micros) : PgParam()})
              .status());
    }
    // Runs inserted with their ids: new runs continue after the largest.
    GRANARY_RETURN_NOT_OK(
        c_->Run("advance the run id sequence",
                "SELECT setval(pg_get_serial_sequence('materialization_runs', 'id'), "
                "GREATEST((SELECT MAX(id) FROM materialization_runs), 1), (SELECT COUNT(*) > 0 "
                "FROM materialization_runs))"));
    for (const auto& [view, p] : c.pushes) {
      GRANARY_RETURN_NOT_OK(c_->Exec("import a push record",
                                     "INSERT INTO view_pushes (view, last_push_at, rows) VALUES "
                                     "($1, $2, $3)",
                                     {Param(view), Param(p.last_push_at.micros), Param(p.rows)})
                                .status());
    }
    if (!c.versions.empty()) {
      GRANARY_RETURN_NOT_OK(c_->Exec("announce the imported versions", "SELECT pg_notify($1, $2)",
                                     {Param(kChannel), Param(c_->location().schema)})
                                .status());
    }
    return Status::OK();
  }

  static RegistryVersionInfo InfoFromRow(const PgResult& r, int i) {
    RegistryVersionInfo info;
    info.version = r.Int(i, 0);
    info.applied_at = Timestamp::FromMicros(r.Int(i, 1));
    info.fingerprint = r.Text(i, 2);
    info.project = r.Text(i, 3);
    return info;
  }

  static MaterializationRun RunFromRow(const PgResult& r, int i) {
    MaterializationRun run;
    run.id = r.Int(i, 0);
    run.view = r.Text(i, 1);
    run.interval_start = Timestamp::FromMicros(r.Int(i, 2));
    run.interval_end = Timestamp::FromMicros(r.Int(i, 3));
    run.trigger = r.Text(i, 4);
    run.started_at = Timestamp::FromMicros(r.Int(i, 5));
    if (auto f = r.OptionalInt(i, 6)) run.finished_at = Timestamp::FromMicros(*f);
    run.status = ParseRunStatus(r.Text(i, 7));
    run.rows_read = r.Int(i, 8);
    run.entities_written = r.Int(i, 9);
    run.entities_skipped = r.Int(i, 10);
    run.error = r.Text(i, 11);
    run.pid = r.Int(i, 12);
    run.host = r.Text(i, 13);
    run.lock_token = r.Text(i, 14);
    run.note = r.Text(i, 15);
    if (auto e = r.OptionalInt(i, 16)) run.newest_event = Timestamp::FromMicros(*e);
    return run;
  }

  std::unique_ptr<PgConnection> c_;
};

}  // namespace

Result<std::unique_ptr<RegistryStore>> OpenPostgresRegistry(const RegistryLocation& location,
                                                            OpenMode mode) {
  GRANARY_ASSIGN_OR_RAISE(auto conn, PgConnection::Connect(location));
  auto store = std::make_unique<PostgresRegistry>(std::move(conn));
  GRANARY_RETURN_NOT_OK(store->Init(mode));
  return std::unique_ptr<RegistryStore>(std::move(store));
}

Result<bool> DropPostgresRegistry(const RegistryLocation& location) {
  GRANARY_ASSIGN_OR_RAISE(auto conn, PgConnection::Connect(location));
  GRANARY_ASSIGN_OR_RAISE(PgResult exists, conn->Exec("look up the registry schema",
                                                      "SELECT to_regnamespace($1) IS NOT NULL",
                                                      {Param(QuoteIdentifier(location.schema))}));
  if (!exists.Bool(0, 0)) return false;
  GRANARY_RETURN_NOT_OK(
      conn->Run("drop the registry schema",
                fmt::format("DROP SCHEMA {} CASCADE", QuoteIdentifier(location.schema))));
  return true;
}

}  // namespace granary
