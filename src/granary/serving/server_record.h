// ServerRecord: how other processes on this machine find the `granary serve` of a repository.
//
// While a server runs it keeps "<registry>.server" beside the registry: a few "key=value" lines
// (below), and an exclusive flock(2) on that file for as long as the process lives. Whether a
// server is running is judged by the lock, not by the pid in the file: the kernel drops the lock
// when the process ends however it ends (kill -9 included), so a file left behind by a crash
// reads as "no server", and a reused pid cannot fool it. The server removes the file when it
// stops. The file holds no secret: whether a bearer token is required, never the token.
//
//   url=http://127.0.0.1:6566      where to reach it from this machine (loopback when it listens
//                                  on every interface)
//   pid=4242
//   host=build-01
//   token=required                 or "none"
//   store=rocksdb at /repo/data/online
//   started=2026-12-05T06:40:00.000000Z
//
// The CLI and the SDK read it to hand a materialization to the server that holds the embedded
// online store (materialize_handoff.h). Thread-compatible.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "granary/common/result.h"
#include "granary/common/time.h"

namespace granary {

struct RunningServer {
  std::string url;  // "http://127.0.0.1:6566"
  int64_t pid = 0;
  std::string host;
  bool token_required = false;
  std::string store;  // the server's OnlineStore::Describe()
  std::string started;
};

class ServerRecord {
 public:
  // "<registry>.server".
  static std::filesystem::path PathFor(const std::filesystem::path& registry_path);

  // Writes the record and takes its lock. kAlreadyExists (naming the holder) when another live
  // server of this repository holds it; IOError when the folder is not writable.
  static Result<std::unique_ptr<ServerRecord>> Publish(const std::filesystem::path& registry_path,
                                                       const RunningServer& server);
  // Removes the file, then releases the lock.
  ~ServerRecord();
  ServerRecord(const ServerRecord&) = delete;
  ServerRecord& operator=(const ServerRecord&) = delete;

 private:
  ServerRecord(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_;
};

// The live server of the repository whose registry is at `registry_path`, or nullopt when none
// holds the record (no file, or a file whose lock nobody holds). IOError/Corruption when the file
// cannot be read or makes no sense.
Result<std::optional<RunningServer>> FindRunningServer(const std::filesystem::path& registry_path);

// The URL another process of this machine uses for a server listening on host:port.
std::string LocalUrlFor(const std::string& listen_host, uint16_t port);

}  // namespace granary
