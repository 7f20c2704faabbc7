#include "granary/online/rocksdb/writer_folders.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "granary/common/unique_fd.h"

namespace granary {
namespace {

// A RocksDB write-ahead log's name: digits, then ".log".
bool IsWriteAheadLogName(const std::string& name) {
  constexpr std::string_view kSuffix = ".log";
  if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return false;
  return std::all_of(name.begin(), name.end() - kSuffix.size(),
                     [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

Result<FolderId> FolderIdOf(const std::filesystem::path& folder) {
  struct stat st;
  if (::stat(folder.c_str(), &st) != 0) {
    return Status::IOError(fmt::format("cannot open the online store folder {}: {}",
                                       folder.string(), std::strerror(errno)));
  }
  return FolderId(st.st_dev, st.st_ino);
}

WriterFolders& WriterFolders::Get() {
  static WriterFolders* folders = new WriterFolders();
  return *folders;
}

int DeleteEmptyWriteAheadLogs(const std::filesystem::path& folder) {
  const UniqueFd fd(::open((folder / "LOCK").c_str(), O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) return 0;  // no store yet
  struct flock lock = {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd.get(), F_OFD_SETLK, &lock) != 0) return 0;  // held
  int deleted = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(folder, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!IsWriteAheadLogName(it->path().filename().string())) continue;
    std::error_code file_ec;
    if (it->file_size(file_ec) == 0 && !file_ec && std::filesystem::remove(it->path(), file_ec)) {
      ++deleted;
    }
  }
  return deleted;  // the lock goes with the descriptor
}

}  // namespace granary
