#include <fmt/format.h>
#include <sqlite3.h>

#include "granary/registry/registry_store.h"
#include "granary/registry/serialize.h"

namespace granary {
namespace {

// The schema version this code writes (PRAGMA user_version). Older files are migrated on open.
constexpr int kSchemaVersion = 1;

constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS registry_versions (
  version      INTEGER PRIMARY KEY,
  applied_at   INTEGER NOT NULL,   -- microseconds since the epoch, UTC
  fingerprint  TEXT    NOT NULL,
  project      TEXT    NOT NULL,
  definitions  TEXT    NOT NULL    -- canonical YAML (serialize.h)
);
)sql";

// Owns a prepared statement.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool prepared() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

std::string Column(sqlite3_stmt* s, int i) {
  const unsigned char* text = sqlite3_column_text(s, i);
  return text ? reinterpret_cast<const char*>(text) : "";
}

class SqliteRegistry final : public RegistryStore {
 public:
  SqliteRegistry(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  ~SqliteRegistry() override { sqlite3_close_v2(db_); }

  Status Init() {
    sqlite3_busy_timeout(db_, 10'000);
    GRANARY_RETURN_NOT_OK(Exec("PRAGMA journal_mode=WAL"));
    GRANARY_RETURN_NOT_OK(Exec("PRAGMA synchronous=NORMAL"));
    GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
    Status st = Migrate();
    if (!st.ok()) {
      (void)Exec("ROLLBACK");
      return st;
    }
    return Exec("COMMIT");
  }

  Result<std::optional<RegistryVersion>> Latest() override {
    Statement s(db_,
                "SELECT version, applied_at, fingerprint, project, definitions "
                "FROM registry_versions ORDER BY version DESC LIMIT 1");
    if (!s.prepared()) return Error("read the latest version");
    int rc = sqlite3_step(s.get());
    if (rc == SQLITE_DONE) return std::optional<RegistryVersion>();
    if (rc != SQLITE_ROW) return Error("read the latest version");
    RegistryVersion v;
    v.info = InfoFromRow(s.get());
    GRANARY_ASSIGN_OR_RAISE(
        v.definitions,
        DefinitionsFromYaml(Column(s.get(), 4),
                            fmt::format("{} (version {})", path_.string(), v.info.version)));
    v.definitions.project = v.info.project;
    return std::optional<RegistryVersion>(std::move(v));
  }

  Result<RegistryVersionInfo> Commit(const Definitions& defs, Timestamp applied_at) override {
    GRANARY_RETURN_NOT_OK(Exec("BEGIN IMMEDIATE"));
    RegistryVersionInfo info;
    info.applied_at = applied_at;
    info.fingerprint = DefinitionsFingerprint(defs);
    info.project = defs.project;
    const std::string text = DefinitionsToYaml(defs);
    Statement s(db_,
                "INSERT INTO registry_versions (version, applied_at, fingerprint, project, "
                "definitions) VALUES ((SELECT COALESCE(MAX(version), 0) + 1 FROM "
                "registry_versions), ?, ?, ?, ?) RETURNING version");
    bool ok =
        s.prepared() && sqlite3_bind_int64(s.get(), 1, applied_at.micros) == SQLITE_OK &&
        sqlite3_bind_text(s.get(), 2, info.fingerprint.c_str(), -1, SQLITE_TRANSIENT) ==
            SQLITE_OK &&
        sqlite3_bind_text(s.get(), 3, info.project.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_bind_text(s.get(), 4, text.c_str(), -1, SQLITE_TRANSIENT) == SQLITE_OK &&
        sqlite3_step(s.get()) == SQLITE_ROW;
    if (!ok) {
      Status st = Error("store a new version");
      (void)Exec("ROLLBACK");
      return st;
    }
    info.version = sqlite3_column_int64(s.get(), 0);
    sqlite3_reset(s.get());
    GRANARY_RETURN_NOT_OK(Exec("COMMIT"));
    return info;
  }

  Result<std::vector<RegistryVersionInfo>> History(int limit) override {
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

  std::string Describe() const override { return path_.string(); }

 private:
  static RegistryVersionInfo InfoFromRow(sqlite3_stmt* s) {
    RegistryVersionInfo info;
    info.version = sqlite3_column_int64(s, 0);
    info.applied_at = Timestamp::FromMicros(sqlite3_column_int64(s, 1));
    info.fingerprint = Column(s, 2);
    info.project = Column(s, 3);
    return info;
  }

  Status Migrate() {
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
    return Exec(fmt::format("PRAGMA user_version = {}", kSchemaVersion));
  }

  Status Exec(const std::string& sql) {
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

  Status Error(std::string_view what) {
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

  sqlite3* db_;
  std::filesystem::path path_;
};

}  // namespace

Result<std::unique_ptr<RegistryStore>> OpenSqliteRegistry(const std::filesystem::path& path,
                                                          OpenMode mode) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    if (mode == OpenMode::kOpenExisting) {
      return Status::FailedPrecondition(fmt::format(
          "no registry at {}: run 'granary apply' in the repository first", path.string()));
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
  auto store = std::make_unique<SqliteRegistry>(db, path);
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
