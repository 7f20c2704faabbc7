// TempDir: a new, private folder under the system's temporary directory, removed with everything
// in it when the object is destroyed. For tests now, and for spill files of the offline engine.
// Move-only; not thread-safe.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "granary/common/result.h"

namespace granary {

class TempDir {
 public:
  // Creates "<tmp>/<prefix>XXXXXX" with mode 0700 ($TMPDIR or /tmp).
  static Result<TempDir> Make(const std::string& prefix) {
    return MakeIn(std::filesystem::temp_directory_path(), prefix);
  }
  // Creates "<parent>/<prefix>XXXXXX" with mode 0700; `parent` must exist.
  static Result<TempDir> MakeIn(const std::filesystem::path& parent, const std::string& prefix) {
    std::string pattern = (parent / (prefix + "XXXXXX")).string();
    if (mkdtemp(pattern.data()) == nullptr) {
      return Status::IOError("cannot create a temporary folder from " + pattern + ": " +
                             std::strerror(errno));
    }
    return TempDir(pattern);
  }

  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&& other) noexcept {
    std::swap(path_, other.path_);
    return *this;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }

  const std::filesystem::path& path() const { return path_; }

 private:
  explicit TempDir(std::filesystem::path path) : path_(std::move(path)) {}
  std::filesystem::path path_;
};

}  // namespace granary
