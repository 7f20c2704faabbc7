// A real PostgreSQL server for tests: initdb in a temporary folder, `postgres` on a free port of
// 127.0.0.1 (no Unix socket outside that folder), trust authentication for the superuser
// "granary", stopped (by pid) and the folder removed when the object is destroyed.
//
// PostgreSQL refuses to run as root. When the test runs as root (CI does), initdb and postgres run
// as the "postgres" system user that Debian's postgresql package creates (scripts/setup installs
// it), with the folder given to that user; otherwise as the current user.
//
//   auto pg = PostgresServer::Start().ValueOrDie();
//   pg->Url("granary_test");  //
//   "postgresql://granary@127.0.0.1:41237/postgres?schema=granary_test" pg->Stop(); pg->Restart();
//   // the database down and back (same port, same data)
//
// Binaries are looked up in $GRANARY_PG_BINDIR, then /usr/lib/postgresql/<newest>/bin. Start()
// is NotFound when there are none (tests skip, naming scripts/setup). Not thread-safe.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "granary/common/result.h"
#include "granary/common/temp_dir.h"
#include "granary/testing/child_process.h"

namespace granary::testing {

class PostgresServer {
 public:
  static Result<std::unique_ptr<PostgresServer>> Start();
  ~PostgresServer();  // Stop()
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  int port() const { return port_; }
  bool running() const { return process_.running(); }
  // A `registry:` URL for granary.yaml, tables in `schema`.
  std::string Url(const std::string& schema) const;

  // Fast shutdown (SIGINT: clients are disconnected), waited for; SIGKILL after 20 s.
  void Stop();
  // Starts the stopped server again on the same port and data.
  Status Restart();

 private:
  PostgresServer() = default;
  Status Spawn();
  Status WaitUntilReady();
  ChildProcessOptions RunAs(std::filesystem::path log) const;

  std::unique_ptr<TempDir> dir_;
  std::string bindir_;
  int port_ = 0;
  ChildProcess process_;
  uid_t run_uid_ = 0;  // 0: as the current user
  gid_t run_gid_ = 0;
};

}  // namespace granary::testing
