// The removal of spill folders left by killed runs, before a command that spills starts.
#include <fmt/format.h>

#include "granary/cli/cli.h"
#include "granary/common/progress.h"
#include "granary/offline/spill_folder.h"

namespace granary::cli {

void RemoveStaleSpillFolders(const std::string& spill_dir) {
  for (const auto& folder : granary::RemoveStaleSpillFolders(spill_dir)) {
    fmt::print(stderr, "{}removed {}: a spill folder of a granary process that is gone\n",
               LogTimePrefix(stderr), folder.string());
  }
}

}  // namespace granary::cli
