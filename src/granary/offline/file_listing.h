// Resolving a source path (file, folder or glob) to the data files it names.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "granary/common/result.h"

namespace granary {

// The data files a path names, sorted byte-wise by their path strings: the file itself; every file
// under a folder (recursively, skipping hidden ones and names starting with '_', as Spark and Hive
// write them) whose name ends with `extension`; or every match of a glob (*, ?, [..] and ** for any
// folders). An empty list when nothing matches.
Result<std::vector<std::filesystem::path>> ListDataFiles(const std::filesystem::path& path,
                                                         const std::string& extension);

}  // namespace granary
