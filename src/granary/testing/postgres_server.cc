#include "granary/testing/postgres_server.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace granary::testing {
namespace {

using Clock = std::chrono::steady_clock;

Result<int> FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::IOError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Status::IOError("cannot bind a free port on 127.0.0.1");
  }
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

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

std::string Tail(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
}

// Forks and execs `args` as uid/gid (when set), stdout and stderr to `log`. Returns the pid.
Result<pid_t> SpawnAs(std::vector<std::string> args, uid_t uid, gid_t gid,
                      const std::filesystem::path& log, bool die_with_parent) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::IOError("fork() failed");
  if (pid == 0) {
    if (die_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
    }
    if (uid != 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
    }
    FILE* out = std::fopen(log.c_str(), "a");
    if (out != nullptr) {
      ::dup2(fileno(out), STDOUT_FILENO);
      ::dup2(fileno(out), STDERR_FILENO);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
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
  GRANARY_ASSIGN_OR_RAISE(server->port_, FreePort());
  const auto data = server->dir_->path() / "data";
  const auto log = server->dir_->path() / "initdb.log";
  GRANARY_ASSIGN_OR_RAISE(
      pid_t initdb, SpawnAs({server->bindir_ + "/initdb", "-D", data.string(), "-U", "granary",
                             "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"},
                            server->run_uid_, server->run_gid_, log, /*die_with_parent=*/true));
  int wstatus = 0;
  ::waitpid(initdb, &wstatus, 0);
  if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
    return Status::IOError(fmt::format("initdb failed: {}", Tail(log)));
  }
  GRANARY_RETURN_NOT_OK(server->Spawn());
  GRANARY_RETURN_NOT_OK(server->WaitUntilReady());
  return server;
}

Status PostgresServer::Spawn() {
  GRANARY_ASSIGN_OR_RAISE(
      pid_, SpawnAs({bindir_ + "/postgres", "-D", (dir_->path() / "data").string(), "-p",
                     std::to_string(port_), "-c", "listen_addresses=127.0.0.1", "-c",
                     "unix_socket_directories=" + dir_->path().string(), "-c", "fsync=off", "-c",
                     "synchronous_commit=off", "-c", "full_page_writes=off", "-c",
                     "max_connections=200", "-c", "shared_buffers=32MB"},
                    run_uid_, run_gid_, dir_->path() / "postgres.log", /*die_with_parent=*/true));
  return Status::OK();
}

Status PostgresServer::WaitUntilReady() {
  const std::string conninfo =
      fmt::format("host=127.0.0.1 port={} user=granary dbname=postgres connect_timeout=2", port_);
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < deadline) {
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      return Status::Unavailable(fmt::format("postgres on port {} exited at start: {}", port_,
                                             Tail(dir_->path() / "postgres.log")));
    }
    if (PQping(conninfo.c_str()) == PQPING_OK) return Status::OK();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  Stop();
  return Status::Unavailable(fmt::format("postgres on port {} did not answer in 30 s: {}", port_,
                                         Tail(dir_->path() / "postgres.log")));
}

std::string PostgresServer::Url(const std::string& schema) const {
  return fmt::format("postgresql://granary@127.0.0.1:{}/postgres?schema={}", port_, schema);
}

void PostgresServer::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGINT);  // fast shutdown
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (Clock::now() < deadline) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

Status PostgresServer::Restart() {
  if (pid_ > 0) return Status::OK();
  GRANARY_RETURN_NOT_OK(Spawn());
  return WaitUntilReady();
}

PostgresServer::~PostgresServer() { Stop(); }

}  // namespace granary::testing
