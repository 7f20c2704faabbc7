#include "granary/push/push_log.h"

#include "granary/registry/registry_factory.h"

namespace granary {

PushLog::PushLog(RegistryLocation registry, const Clock* clock)
    : registry_location_(std::move(registry)), clock_(clock) {}

PushLog::~PushLog() { (void)Flush(); }

void PushLog::Record(const std::vector<std::string>& views, int64_t rows) {
  const Timestamp now = clock_->Now();
  MutexLock lock(&mu_);
  for (const std::string& view : views) {
    PushRecord& record = pending_[view];
    record.last_push_at = std::max(record.last_push_at, now);
    record.rows += rows;
  }
  const auto steady = std::chrono::steady_clock::now();
  if (last_flush_ && steady - *last_flush_ < std::chrono::seconds(1)) return;
  last_flush_ = steady;
  (void)FlushLocked();  // kept pending on failure
}

Status PushLog::Flush() {
  MutexLock lock(&mu_);
  return FlushLocked();
}

Status PushLog::FlushLocked() {
  if (pending_.empty()) return Status::OK();
  if (registry_ == nullptr) {
    GRANARY_ASSIGN_OR_RAISE(registry_, OpenRegistry(registry_location_, OpenMode::kOpenExisting));
  }
  for (auto it = pending_.begin(); it != pending_.end();) {
    Status st = registry_->RecordPush(it->first, it->second.last_push_at, it->second.rows);
    if (!st.ok()) {
      registry_.reset();  // reopen next time
      return st;
    }
    it = pending_.erase(it);
  }
  return Status::OK();
}

}  // namespace granary
