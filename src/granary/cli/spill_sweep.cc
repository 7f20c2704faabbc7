// --spill-dir, and the removal of spill folders left by killed runs before a command that
// spills starts.
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "granary/cli/cli.h"
#include "granary/common/progress.h"
#include "granary/offline/spill_folder.h"

namespace granary::cli {

CLI::Option* AddSpillDirOption(CLI::App* cmd, std::string* spill_dir) {
  const CLI::Validator usable(
      [](std::string& dir) -> std::string {
        std::error_code ec;
        const auto status = std::filesystem::status(dir, ec);
        if (!std::filesystem::exists(status)) {
          return fmt::format(
              "{}: no such folder; create it (mkdir -p {}) or leave --spill-dir "
              "out to spill under $TMPDIR or /tmp",
              dir, dir);
        }
        if (!std::filesystem::is_directory(status)) {
          return fmt::format("{}: not a folder; name a folder with room for the spilled data", dir);
        }
        if (::access(dir.c_str(), W_OK | X_OK) != 0) {
          return fmt::format("{}: this user cannot create files in it; name a folder it can write",
                             dir);
        }
        return {};
      },
      "FOLDER");
  return cmd
      ->add_option("--spill-dir", *spill_dir,
                   "Folder for spill files (default: $TMPDIR or /tmp); must exist")
      ->check(usable);
}

void RemoveStaleSpillFolders(const std::string& spill_dir) {
  for (const auto& folder : granary::RemoveStaleSpillFolders(spill_dir)) {
    fmt::print(stderr, "{}removed {}: a spill folder of a granary process that is gone\n",
               LogTimePrefix(stderr), folder.string());
  }
}

}  // namespace granary::cli
