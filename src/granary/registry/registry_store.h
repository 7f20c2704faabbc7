// RegistryStore: the applied definitions, kept as versions (one per `apply` that changed them).
//
// Later subsystems keep their state here too (materialization watermarks and run history). The
// SQLite implementation is safe when several processes (the CLI, a server, a scheduler) open the
// same file at once: it uses WAL mode, a busy timeout, and one transaction per write.
#pragma once

#include <filesystem>
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
};

enum class OpenMode { kOpenExisting, kCreateIfMissing };

// Opens the SQLite registry at `path`. kOpenExisting on a missing file is FailedPrecondition
// ("run granary apply"); kCreateIfMissing creates the file and its folder.
Result<std::unique_ptr<RegistryStore>> OpenSqliteRegistry(const std::filesystem::path& path,
                                                          OpenMode mode);

}  // namespace granary
