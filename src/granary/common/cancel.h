// CancelFlag: a request to stop a long job (Ctrl-C in Python, a server shutting down). One thread
// sets it; the job polls it between units of work (batches, partitions, views) and returns
// StatusCode::kCancelled, leaving nothing half-written. Thread-safe.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "granary/common/status.h"

namespace granary {

class CancelFlag {
 public:
  CancelFlag() = default;
  // A flag that also reads as set once `follow` is (not owned; may be null; must outlive the
  // flag): for callers that signal with a bare atomic (a materialization's `cancelled`).
  explicit CancelFlag(const std::atomic<bool>* follow) : follow_(follow) {}
  // A child flag: set by its own Cancel (which leaves `parent` alone), and read as set once
  // `parent` is (not owned; may be null; must outlive the flag). For work that one job starts
  // and stops early on its own error, while the job's caller can still cancel all of it (a
  // training set's match run ahead).
  explicit CancelFlag(const CancelFlag* parent) : parent_(parent) {}

  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const {
    return cancelled_.load(std::memory_order_relaxed) ||
           (follow_ != nullptr && follow_->load(std::memory_order_relaxed)) ||
           (parent_ != nullptr && parent_->cancelled());
  }

 private:
  std::atomic<bool> cancelled_{false};
  const std::atomic<bool>* follow_ = nullptr;
  const CancelFlag* parent_ = nullptr;
};

// Cancelled("<what> was cancelled") when `flag` is set; OK when it is null or not set.
inline Status CheckCancelled(const CancelFlag* flag, std::string_view what) {
  if (flag == nullptr || !flag->cancelled()) return Status::OK();
  return Status::Cancelled(std::string(what) + " was cancelled");
}

}  // namespace granary
