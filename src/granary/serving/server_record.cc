#include "granary/serving/server_record.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace granary {
namespace {

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  off_t at = 0;
  for (;;) {
    const ssize_t n = pread(fd, buf, sizeof(buf), at);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    at += n;
  }
  return out;
}

Result<RunningServer> ParseRecord(const std::string& text, const std::filesystem::path& path) {
  RunningServer server;
  size_t start = 0;
  int line_number = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos) {
      return Status::Corruption(fmt::format(
          "{}:{}: '{}' is not key=value; the file is written by granary serve, which holds it "
          "locked while it runs: stop that server or remove the file",
          path.string(), line_number, line));
    }
    const std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "url") {
      server.url = value;
    } else if (key == "pid") {
      std::from_chars(value.data(), value.data() + value.size(), server.pid);
    } else if (key == "host") {
      server.host = value;
    } else if (key == "token") {
      server.token_required = value == "required";
    } else if (key == "store") {
      server.store = value;
    } else if (key == "started") {
      server.started = value;
    }  // other keys: written by a newer Granary; ignored
  }
  if (!server.url.starts_with("http://")) {
    return Status::Corruption(
        fmt::format("{}: no url=http://... line; the file is written by granary serve, which "
                    "holds it locked while it runs: stop that server or remove the file",
                    path.string()));
  }
  return server;
}

}  // namespace

std::filesystem::path ServerRecord::PathFor(const std::filesystem::path& registry_path) {
  return registry_path.string() + ".server";
}

std::string LocalUrlFor(const std::string& listen_host, uint16_t port) {
  std::string host = listen_host;
  if (host.empty() || host == "0.0.0.0") {
    host = "127.0.0.1";
  } else if (host == "::") {
    host = "[::1]";
  } else if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return fmt::format("http://{}:{}", host, port);
}

Result<std::unique_ptr<ServerRecord>> ServerRecord::Publish(
    const std::filesystem::path& registry_path, const RunningServer& server) {
  const std::filesystem::path path = PathFor(registry_path);
  GRANARY_ASSIGN_OR_RAISE(std::optional<RunningServer> other, FindRunningServer(registry_path));
  if (other) {
    return Status::AlreadyExists(
        fmt::format("{} says another server of this repository runs at {} (pid {} on {}); this "
                    "one is not recorded there, so CLI runs are handed to that one",
                    path.string(), other->url, other->pid, other->host));
  }
  // Written and locked under a temporary name, then renamed into place: a reader who opens the
  // record finds it complete and locked, never half-written.
  const std::filesystem::path temp = fmt::format("{}.{}.tmp", path.string(), getpid());
  const int fd = open(temp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status::IOError(
        fmt::format("cannot write the server record {}: {}", temp.string(), strerror(errno)));
  }
  auto fail = [&](std::string_view what) {
    const int err = errno;
    close(fd);
    unlink(temp.c_str());
    return Status::IOError(
        fmt::format("cannot {} the server record {}: {}", what, path.string(), strerror(err)));
  };
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return fail("lock");
  const std::string text = fmt::format(
      "# granary serve of this repository; locked while it runs, removed when it stops\n"
      "url={}\npid={}\nhost={}\ntoken={}\nstore={}\nstarted={}\n",
      server.url, server.pid, server.host, server.token_required ? "required" : "none",
      server.store, server.started);
  if (pwrite(fd, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
    return fail("write");
  }
  if (rename(temp.c_str(), path.c_str()) != 0) return fail("rename into place");
  return std::unique_ptr<ServerRecord>(new ServerRecord(path, fd));
}

ServerRecord::~ServerRecord() {
  // Only our own file: never one that replaced it (the lock keeps that from happening, but a
  // person may have removed ours by hand).
  struct stat mine, named;
  if (fstat(fd_, &mine) == 0 && stat(path_.c_str(), &named) == 0 && mine.st_dev == named.st_dev &&
      mine.st_ino == named.st_ino) {
    unlink(path_.c_str());
  }
  close(fd_);  // releases the lock
}

Result<std::optional<RunningServer>> FindRunningServer(const std::filesystem::path& registry_path) {
  const std::filesystem::path path = ServerRecord::PathFor(registry_path);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<RunningServer>();
    return Status::IOError(
        fmt::format("cannot read the server record {}: {}", path.string(), strerror(errno)));
  }
  if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
    close(fd);  // nobody holds it: left by a server that did not stop cleanly
    return std::optional<RunningServer>();
  }
  const int err = errno;
  if (err != EWOULDBLOCK) {
    close(fd);
    return Status::IOError(
        fmt::format("cannot check the server record {}: {}", path.string(), strerror(err)));
  }
  const std::string text = ReadAll(fd);
  close(fd);
  GRANARY_ASSIGN_OR_RAISE(RunningServer server, ParseRecord(text, path));
  return std::optional<RunningServer>(std::move(server));
}

}  // namespace granary
