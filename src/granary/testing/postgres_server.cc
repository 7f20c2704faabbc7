#include "granary/testing/postgres_server.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

namespace granary::testing {
namespace {

using Clock = std::chrono::steady_clock;

Result<std::string> FindBinDir() {
  if (const char* env = std::getenv("GRANARY_PG_BINDIR"); env != nullptr && *env != '\0') {
    return std::string(env);
  }
  std::error_code ec;
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    if (std::filesystem::exists(entry.path() / "bin" / "postgres", ec)) {
      found.push_back((entry.path() / "bin").string());
    }
  }
  if (found.empty()) {
    return Status::NotFound(
        "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/postgres): run scripts/setup, "
        "which installs Debian's postgresql, or set GRANARY_PG_BINDIR");
  }
  std::sort(found.begin(), found.end(), [](const std::string& a, const std::string& b) {
    return std::atoi(std::filesystem::path(a).parent_path().filename().c_str()) <
           std::atoi(std::filesystem::path(b).parent_path().filename().c_str());
  });
  return found.back();
}

}  // namespace

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  GRANARY_ASSIGN_OR_RAISE(server->bindir_, FindBinDir());
  GRANARY_ASSIGN_OR_RAISE(TempDir dir, TempDir::Make("granary-pg-"));
  server->dir_ = std::make_unique<TempDir>(std::move(dir));
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      return Status::NotFound(
          "running as root, and there is no 'postgres' user to run PostgreSQL as (it refuses "
          "root): install Debian's postgresql (scripts/setup)");
    }
    server->run_uid_ = pw->pw_uid;
    server->run_gid_ = pw->pw_gid;
    if (::chown(server->dir_->path().c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      return Status::IOError("cannot give the test database folder to the postgres user");
    }
  }
  GRANARY_ASSIGN_OR_RAISE(server->port_, FreeLoopbackPort());
  const auto data = server->dir_->path() / "data";
  const auto log = server->dir_->path() / "initdb.log";
  GRANARY_ASSIGN_OR_RAISE(
      ChildProcess initdb,
      ChildProcess::Spawn({server->bindir_ + "/initdb", "-D", data.string(), "-U", "granary",
                           "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"},
                          server->RunAs(log)));
  const int wstatus = initdb.Wait();
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Status::IOError(fmt::format("initdb failed: {}", FileTail(log)));
  }
  GRANARY_RETURN_NOT_OK(server->Spawn());
  GRANARY_RETURN_NOT_OK(server->WaitUntilReady());
  return server;
}

Status PostgresServer::Spawn() {
  GRANARY_ASSIGN_OR_RAISE(
      process_,
      ChildProcess::Spawn({bindir_ + "/postgres", "-D", (dir_->path() / "data").string(), "-p",
                           std::to_string(port_), "-c", "listen_addresses=127.0.0.1", "-c",
                           "unix_socket_directories=" + dir_->path().string(), "-c", "fsync=off",
                           "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                           "max_connections=200", "-c", "shared_buffers=32MB"},
                          RunAs(dir_->path() / "postgres.log")));
  return Status::OK();
}

Status PostgresServer::WaitUntilReady() {
  const std::string conninfo =
      fmt::format("host=127.0.0.1 port={} user=granary dbname=postgres connect_timeout=2", port_);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    if (process_.Exited()) {
      return Status::Unavailable(fmt::format("postgres on port {} exited at start: {}", port_,
                                             FileTail(dir_->path() / "postgres.log")));
    }
    if (PQping(conninfo.c_str()) == PQPING_OK) return Status::OK();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Stop();
  return Status::Unavailable(fmt::format("postgres on port {} did not answer in 30 s: {}", port_,
                                         FileTail(dir_->path() / "postgres.log")));
}

std::string PostgresServer::Url(const std::string& schema) const {
  return fmt::format("postgresql://granary@127.0.0.1:{}/postgres?schema={}", port_, schema);
}

void PostgresServer::Stop() {
  process_.Stop(SIGINT, std::chrono::seconds(20));  // fast shutdown
}

ChildProcessOptions PostgresServer::RunAs(std::filesystem::path log) const {
  return {.uid = run_uid_, .gid = run_gid_, .log = std::move(log)};
}

Status PostgresServer::Restart() {
  if (process_.running()) return Status::OK();
  GRANARY_RETURN_NOT_OK(Spawn());
  return WaitUntilReady();
}

PostgresServer::~PostgresServer() { Stop(); }

}  // namespace granary::testing
