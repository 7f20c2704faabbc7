#include "granary/offline/file_listing.h"

#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>

namespace granary {
namespace {

bool HasGlob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

// Byte-wise order of the whole path string, as docs/POINT_IN_TIME.md promises ("region=us-east/"
// before "region=us/", since '-' < '/'); std::filesystem::path compares component by component.
void SortByteWise(std::vector<std::filesystem::path>* paths) {
  std::sort(paths->begin(), paths->end(),
            [](const std::filesystem::path& a, const std::filesystem::path& b) {
              return a.native() < b.native();
            });
}

bool Skipped(const std::filesystem::path& p) {
  std::string name = p.filename().string();
  return name.starts_with(".") || name.starts_with("_");
}

}  // namespace

Result<std::vector<std::filesystem::path>> ListDataFiles(const std::filesystem::path& path,
                                                         const std::string& extension) {
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  const std::string text = path.string();
  if (!HasGlob(text)) {
    if (std::filesystem::is_regular_file(path, ec)) return std::vector{path};
    if (!std::filesystem::is_directory(path, ec)) return out;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      std::error_code type_ec;  // an entry that cannot be stat'ed is no data file
      if (Skipped(it->path())) {
        if (it->is_directory(type_ec)) it.disable_recursion_pending();
        continue;
      }
      if (it->is_regular_file(type_ec) && it->path().string().ends_with(extension))
        out.push_back(it->path());
    }
    if (ec) return Status::IOError(fmt::format("cannot list {}: {}", text, ec.message()));
    SortByteWise(&out);
    return out;
  }
  // A glob: walk from the longest prefix without wildcards, match the rest with fnmatch where
  // '**/' may stand for any number of folders.
  size_t first = text.find_first_of("*?[");
  size_t slash = text.rfind('/', first);
  std::filesystem::path base =
      slash == std::string::npos ? "." : text.substr(0, slash == 0 ? 1 : slash);
  std::string pattern = text;
  std::string collapsed = pattern;
  for (size_t p; (p = collapsed.find("**/")) != std::string::npos;) collapsed.erase(p, 3);
  if (!std::filesystem::is_directory(base, ec)) return out;
  for (auto it = std::filesystem::recursive_directory_iterator(base, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code type_ec;
    // Hidden and '_' entries (_delta_log, _SUCCESS, .crc) are no data, as in a folder listing.
    if (Skipped(it->path())) {
      if (it->is_directory(type_ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(type_ec)) continue;
    std::string candidate =
        slash == std::string::npos ? it->path().lexically_normal().string() : it->path().string();
    if (fnmatch(pattern.c_str(), candidate.c_str(), FNM_PATHNAME) == 0 ||
        fnmatch(collapsed.c_str(), candidate.c_str(), FNM_PATHNAME) == 0 ||
        (pattern.find("**") != std::string::npos &&
         fnmatch(pattern.c_str(), candidate.c_str(), 0) == 0)) {
      out.push_back(it->path());
    }
  }
  if (ec) return Status::IOError(fmt::format("cannot list {}: {}", base.string(), ec.message()));
  SortByteWise(&out);
  return out;
}

}  // namespace granary
