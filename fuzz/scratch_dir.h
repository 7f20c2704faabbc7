// A temporary folder for fuzz targets that hand their input to code reading files: made once per
// process and reused by every input, in memory (/dev/shm) where there is one, so that each input
// costs no disk I/O (on a busy disk, creating and removing a folder per input took ~20 ms).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "granary/common/temp_dir.h"

namespace granary::fuzz {

inline const TempDir& ScratchDir(const std::string& prefix) {
  static const TempDir dir = [&] {
    std::error_code ec;
    const std::filesystem::path shm = "/dev/shm";
    auto made = std::filesystem::is_directory(shm, ec) ? TempDir::MakeIn(shm, prefix)
                                                       : TempDir::Make(prefix);
    if (!made.ok()) {
      std::fprintf(stderr, "cannot make a scratch folder: %s\n", made.status().ToString().c_str());
      std::abort();
    }
    return std::move(*made);
  }();
  return dir;
}

// Writes a fuzz input as the file `name` of `folder` (replacing it); returns its path.
inline std::filesystem::path WriteInputFile(const std::filesystem::path& folder, const char* name,
                                            const uint8_t* data, size_t size) {
  const std::filesystem::path file = folder / name;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  return file;
}

// Removes the files of `folder` (not the folder itself: removing and making folders is slow).
inline void RemoveFilesIn(const std::filesystem::path& folder) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(folder, ec)) {
    std::filesystem::remove_all(entry.path(), ec);
  }
}

}  // namespace granary::fuzz
