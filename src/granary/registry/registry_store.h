// RegistryStore: the applied definitions, kept as versions (one per `apply` that changed them).
//
// Materialization keeps its state here too: watermarks and run history. The
// SQLite implementation is safe when several processes (the CLI, a server, a scheduler) open the
// same file at once: it uses WAL mode, a busy timeout, and one transaction per write.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/time.h"
#include "granary/registry/definitions.h"

namespace granary {

struct RegistryVersionInfo {
  int64_t version = 0;  // 1, 2, ... in order of apply
  Timestamp applied_at;
  std::string fingerprint;  // DefinitionsFingerprint of the definitions
  std::string project;
};

struct RegistryVersion {
  RegistryVersionInfo info;
  Definitions definitions;
};

enum class RunStatus { kRunning, kSucceeded, kFailed };
// "running", "succeeded", "failed".
std::string_view RunStatusName(RunStatus status);

// One materialization of one feature view over [interval_start, interval_end] (both inclusive).
struct MaterializationRun {
  int64_t id = 0;  // assigned by StartRun
  std::string view;
  Timestamp interval_start;
  Timestamp interval_end;
  std::string
      trigger;  // what started it: "materialize", "materialize-incremental", "schedule", ...
  Timestamp started_at;
  std::optional<Timestamp> finished_at;  // unset while running
  RunStatus status = RunStatus::kRunning;
  int64_t rows_read = 0;
  int64_t entities_written = 0;
  int64_t entities_skipped = 0;  // not rewritten: the online value was as new or newer
  std::string error;             // set when failed
  int64_t pid = 0;               // the process that ran it (for people; liveness is lock_token's)
  std::string host;
  // The token of the repository lock (materialize/repository_lock.h) its process held. A run
  // marked running is alive only while the lock is held under this token: a process that is
  // killed, even one not yet reaped, or whose pid is reused, no longer holds it.
  std::string lock_token;
  // Why the run read what it read, when it is not the plain interval ("reload: the online data
  // of this view is lost on 127.0.0.1:7001 ..."); empty otherwise.
  std::string note;
  // The newest event time among the rows it wrote; unset when it wrote none.
  std::optional<Timestamp> newest_event;
};

// How a finished run ends.
struct RunOutcome {
  RunStatus status = RunStatus::kSucceeded;  // kSucceeded or kFailed
  Timestamp finished_at;
  int64_t rows_read = 0;
  int64_t entities_written = 0;
  int64_t entities_skipped = 0;
  std::string error;
  std::optional<Timestamp> newest_event;  // MaterializationRun::newest_event
  // On success, the view's watermark becomes this (if later than the current one), in the same
  // transaction as the run's record: a watermark never moves without a succeeded run.
  std::optional<Timestamp> advance_watermark_to;
  // The online layout (schema fingerprint) the run wrote, kept with the watermark. When the
  // stored watermark has another layout, it is replaced (even by an earlier time) rather than
  // advanced: the data it stood for is no longer readable online.
  std::string watermark_layout;
  // The run wrote the view's marker into the online store (OnlineStore::PutViewMarker) before
  // it finished: the watermark can then be checked against the store.
  bool wrote_online_marker = false;
};

// A view's watermark with the online layout it was reached under.
struct WatermarkState {
  Timestamp watermark;
  std::string layout;  // RunOutcome::watermark_layout of the run that set it; "" when unknown
  Timestamp updated_at;
  // The newest event time written online by the succeeded runs under this layout (the age of
  // the data the store holds); unset when they wrote no row or were recorded before it was kept.
  std::optional<Timestamp> newest_event;
  // The run that set it wrote an online marker (RunOutcome::wrote_online_marker): the store can
  // be checked for the data this watermark promises. False for watermarks of older versions.
  bool online_marker = false;
};

// The pushes of one view (rows written online by the feature server's POST /push or the SDK's
// push): a push view may have no watermark, so status shows its last push.
struct PushRecord {
  Timestamp last_push_at;
  int64_t rows = 0;  // rows pushed online since pushes were first recorded
};

// Thread-compatible: one instance per thread; processes may share the underlying store.
class RegistryStore {
 public:
  virtual ~RegistryStore() = default;

  // The newest version, or std::nullopt when nothing was applied yet.
  virtual Result<std::optional<RegistryVersion>> Latest() = 0;
  // Stores `defs` as a new version atomically and returns its info.
  virtual Result<RegistryVersionInfo> Commit(const Definitions& defs, Timestamp applied_at) = 0;
  // Versions, newest first, at most `limit`.
  virtual Result<std::vector<RegistryVersionInfo>> History(int limit) = 0;
  // Where the store lives, for messages.
  virtual std::string Describe() const = 0;

  // Materialization state (materialize/ keeps it here so every process sees the same).

  // view -> watermark: the end of the newest interval materialized without a gap.
  virtual Result<std::map<std::string, Timestamp>> Watermarks() = 0;
  // view -> watermark with its layout and when it last moved.
  virtual Result<std::map<std::string, WatermarkState>> WatermarkStates() = 0;
  // Records a run as running and returns its id. The caller holds the repository lock under
  // `run.lock_token`: every other run still marked running was cut off (a crash, kill -9) and is
  // first marked failed, keeping the counts it recorded, with an error that says so. With an
  // empty token nothing else is marked.
  virtual Result<int64_t> StartRun(const MaterializationRun& run) = 0;
  // Records the counts of running run `id` so far, so that a run cut off keeps what it wrote.
  virtual Status UpdateRunProgress(int64_t id, int64_t rows_read, int64_t entities_written,
                                   int64_t entities_skipped) = 0;
  // Records an attempt that failed before it started (the store down, the lock held by another
  // run): `run` with status kFailed, finished_at and error set. Returns its id.
  virtual Result<int64_t> RecordFailedRun(const MaterializationRun& run) = 0;
  // Records how run `id` ended and, on success, advances its view's watermark atomically.
  virtual Status FinishRun(int64_t id, const RunOutcome& outcome) = 0;
  // The newest runs first, of one view or (view empty) of all, at most `limit`.
  virtual Result<std::vector<MaterializationRun>> Runs(const std::string& view, int limit) = 0;

  // Adds `rows` rows pushed online to `view`, the last at `at` (writers batch their pushes:
  // push/push_log.h).
  virtual Status RecordPush(const std::string& view, Timestamp at, int64_t rows) = 0;
  // view -> its pushes, for the views pushed to.
  virtual Result<std::map<std::string, PushRecord>> Pushes() = 0;
};

enum class OpenMode { kOpenExisting, kCreateIfMissing };

// Opens the SQLite registry at `path`. kOpenExisting on a missing file is FailedPrecondition
// ("run granary apply"); kCreateIfMissing creates the file and its folder.
Result<std::unique_ptr<RegistryStore>> OpenSqliteRegistry(const std::filesystem::path& path,
                                                          OpenMode mode);

}  // namespace granary
