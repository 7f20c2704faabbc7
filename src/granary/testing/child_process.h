// What the test fixtures that run a real server (redis_server.h, postgres_server.h) share: a child
// process started by fork and exec that dies with the test process and is stopped by its pid, a
// free port on 127.0.0.1, and the tail of a log file for error messages.
//
//   GRANARY_ASSIGN_OR_RAISE(ChildProcess server, ChildProcess::Spawn({"redis-server", conf}));
//   if (server.Exited()) ...        // reaped: it stopped by itself
//   server.Stop(SIGTERM, std::chrono::seconds(5));   // the signal, then SIGKILL after 5 s
//
// Not thread-safe: one thread owns a ChildProcess. Test support only (see CMakeLists.txt).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "granary/common/result.h"

namespace granary::testing {

struct ChildProcessOptions {
  // Run as this user and group (a fixture running as root starts PostgreSQL as "postgres");
  // 0: as the current user.
  uid_t uid = 0;
  gid_t gid = 0;
  // Where its stdout and stderr go (appended); empty: the test's own.
  std::filesystem::path log;
};

class ChildProcess {
 public:
  // Forks and execs `args` (args[0] looked up in PATH unless it holds a '/'). The child gets
  // SIGKILL when the test process dies, even by a crash, and runs in a process group of its own
  // (no signal sent to the test's group reaches it: a paused server stays paused).
  static Result<ChildProcess> Spawn(std::vector<std::string> args,
                                    const ChildProcessOptions& options = {});

  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();  // Kill()

  pid_t pid() const { return pid_; }
  // Started and not yet known to have ended.
  bool running() const { return pid_ > 0; }
  // True when the process has ended (it is reaped then); does not block.
  bool Exited();
  // Blocks until the process ends; its wait status (see waitpid), or -1 when none was running.
  int Wait();
  // Sends `signal` and waits up to `grace` for the process to end, then SIGKILL.
  void Stop(int signal, std::chrono::milliseconds grace);
  // SIGKILL and reap (a crash).
  void Kill();
  // Sends `signal` without waiting (SIGSTOP, SIGCONT).
  void Signal(int signal);

 private:
  pid_t pid_ = -1;
};

// A port nobody listens on right now on 127.0.0.1 (the kernel's choice of an ephemeral port).
Result<int> FreeLoopbackPort();

// The last `bytes` of a file (a server's log, for an error message); empty when unreadable.
std::string FileTail(const std::filesystem::path& file, size_t bytes = 2000);

}  // namespace granary::testing
