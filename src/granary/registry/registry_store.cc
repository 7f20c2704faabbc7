#include "granary/registry/registry_store.h"

namespace granary {

std::string_view RunStatusName(RunStatus status) {
  switch (status) {
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kSucceeded:
      return "succeeded";
    case RunStatus::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace granary
