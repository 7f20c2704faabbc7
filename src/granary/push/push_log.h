// PushLog: records pushes in the registry (RegistryStore::RecordPush), so that `granary status`
// shows a push view's last push. A push can come many times a second; the log adds them up in
// memory and writes the registry at the first push and then at most once a second (from the
// pushing thread), and at destruction. A registry that cannot be written keeps the pushes pending
// for the next write; a push never fails because of its record.
//
// Thread-safe.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/mutex.h"
#include "granary/registry/registry_location.h"
#include "granary/registry/registry_store.h"

namespace granary {

class PushLog {
 public:
  // `clock` must outlive the log.
  PushLog(RegistryLocation registry, const Clock* clock);
  ~PushLog();  // Flush()
  PushLog(const PushLog&) = delete;
  PushLog& operator=(const PushLog&) = delete;

  // `rows` rows were pushed online to each of `views` now.
  void Record(const std::vector<std::string>& views, int64_t rows);
  // Writes what is pending.
  Status Flush();

 private:
  Status FlushLocked() REQUIRES(mu_);

  const RegistryLocation registry_location_;
  const Clock* clock_;
  Mutex mu_;
  std::map<std::string, PushRecord> pending_ GUARDED_BY(mu_);
  std::optional<std::chrono::steady_clock::time_point> last_flush_ GUARDED_BY(mu_);
  std::unique_ptr<RegistryStore> registry_ GUARDED_BY(mu_);
};

}  // namespace granary
