// The SQLite registry store (OpenSqliteRegistry, registry_store.h), shared by its two source
// files: sqlite_registry.cc holds the file, its schema and migrations, and the definitions'
// versions; sqlite_materialization_state.cc holds the materialization state beside them
// (watermarks, runs, pushes). Internal to those files: everything else opens the store through
// OpenSqliteRegistry.
//
// Thread safety: as RegistryStore; the connection is opened with SQLITE_OPEN_FULLMUTEX.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "granary/registry/registry_store.h"

namespace granary::sqlite_registry {

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

inline std::string Column(sqlite3_stmt* s, int i) {
  const unsigned char* text = sqlite3_column_text(s, i);
  return text ? reinterpret_cast<const char*>(text) : "";
}

class SqliteRegistry final : public RegistryStore {
 public:
  SqliteRegistry(sqlite3* db, std::filesystem::path path) : db_(db), path_(std::move(path)) {}
  ~SqliteRegistry() override { sqlite3_close_v2(db_); }
  Status Init();
  Result<std::optional<RegistryVersion>> Latest() override;
  Result<std::optional<RegistryVersion>> Version(int64_t version) override;
  Result<RegistryVersionInfo> CommitVersion(const Definitions& defs, Timestamp applied_at,
                                            std::optional<int64_t> expected_latest) override;
  Result<RegistryContents> Export() override;
  Status Import(const RegistryContents& contents) override;
  Result<std::vector<RegistryVersionInfo>> History(int limit) override;
  std::string Describe() const override { return path_.string(); }
  Result<std::map<std::string, Timestamp>> Watermarks() override;
  Result<std::map<std::string, WatermarkState>> WatermarkStates() override;
  Result<int64_t> StartRun(const MaterializationRun& run) override;
  Status UpdateRunProgress(int64_t id, int64_t rows_read, int64_t entities_written,
                           int64_t entities_skipped) override;
  Result<int64_t> RecordFailedRun(const MaterializationRun& run) override;
  Status RecordPush(const std::string& view, Timestamp at, int64_t rows) override;
  Result<std::map<std::string, PushRecord>> Pushes() override;
  Status FinishRun(int64_t id, const RunOutcome& outcome) override;
  Result<std::vector<MaterializationRun>> Runs(const std::string& view, int limit) override;

 private:
  // One row of registry_versions as a version (the statement selects version, applied_at,
  // fingerprint, project, definitions; `bind` fills its one parameter when set).
  Result<std::optional<RegistryVersion>> ReadVersion(const char* sql, std::optional<int64_t> bind,
                                                     const std::string& what);
  Result<int64_t> NewestVersion();
  Status ConcurrentApply(int64_t newest, int64_t expected);
  // Inserts a version; `version` < 0 takes the next number. Inside a transaction.
  Result<int64_t> InsertVersion(int64_t version, Timestamp applied_at,
                                const std::string& fingerprint, const std::string& project,
                                const std::string& yaml);
  Result<RegistryContents> ReadContents();
  Status WriteContents(const RegistryContents& c);
  // Marks the runs still recorded running under another lock token than `token` (which the
  // caller holds) as failed: their process lost the lock, so it is gone. Inside a transaction.
  Status FailInterruptedRuns(const std::string& token, Timestamp now);
  Result<int64_t> InsertRun(const MaterializationRun& run);
  Status UpdateRun(int64_t id, const RunOutcome& outcome, bool keep_counts = false);
  static RegistryVersionInfo InfoFromRow(sqlite3_stmt* s);
  Status Migrate();
  Status Exec(const std::string& sql);
  Status Error(std::string_view what);

  sqlite3* db_;
  std::filesystem::path path_;
};

}  // namespace granary::sqlite_registry
