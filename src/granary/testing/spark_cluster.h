// A real Spark standalone cluster for tests (scripts/spark-cluster: a master, two workers and a
// Spark Connect server with Delta Lake, on 127.0.0.1). Header-only; test code only.
//
// When $GRANARY_SPARK_REMOTE is set (`make test` starts one cluster for every suite and sets it),
// that cluster is used and left running. Otherwise Start() starts one on a free port with its
// state in a temporary folder and the destructor stops it (by the pids the script recorded).
// Starting takes 30-60 s, so a test binary starts at most one (a global test environment) and is
// registered with ctest as one entry. StartOwn() always starts one, for tests that kill its
// processes (Kill). Not thread-safe.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "granary/common/result.h"
#include "granary/common/temp_dir.h"

namespace granary::testing {

class SparkCluster {
 public:
  static Result<std::unique_ptr<SparkCluster>> Start() {
    const char* remote = std::getenv("GRANARY_SPARK_REMOTE");
    if (remote != nullptr && *remote != '\0') {
      return std::unique_ptr<SparkCluster>(new SparkCluster(remote, std::nullopt));
    }
    return StartOwn();
  }

  // Always a cluster of the caller's own (for tests that kill its processes).
  static Result<std::unique_ptr<SparkCluster>> StartOwn() {
    GRANARY_ASSIGN_OR_RAISE(TempDir state, TempDir::Make("granary-spark-"));
    int port = FreePort();
    std::string command = Script() + " start --port " + std::to_string(port) + " --state " +
                          state.path().string() + " > " + (state.path() / "start.out").string() +
                          " 2>&1";
    if (std::system(command.c_str()) != 0) {
      std::string log = (state.path() / "start.out").string();
      (void)std::system(
          (Script() + " stop --state " + state.path().string() + " >/dev/null 2>&1").c_str());
      return Status::Unavailable("scripts/spark-cluster start failed; see " + log +
                                 " and the logs beside it (run scripts/setup first)");
    }
    return std::unique_ptr<SparkCluster>(
        new SparkCluster("sc://127.0.0.1:" + std::to_string(port), std::move(state)));
  }

  ~SparkCluster() {
    if (state_) {
      (void)std::system(
          (Script() + " stop --state " + state_->path().string() + " >/dev/null 2>&1").c_str());
    }
  }

  const std::string& url() const { return url_; }

  // Kills one process of an own cluster with SIGKILL, its process group included (a worker's
  // executors): "connect", "master", "worker1", "worker2".
  Status Kill(const std::string& name) {
    if (!state_) return Status::FailedPrecondition("not an own cluster");
    std::ifstream in(state_->path() / "pids" / (name + ".pid"));
    pid_t pid = 0;
    if (!(in >> pid) || pid <= 0) return Status::NotFound("no pid file for " + name);
    if (killpg(pid, SIGKILL) != 0) return Status::IOError("cannot kill " + name);
    return Status::OK();
  }

 private:
  SparkCluster(std::string url, std::optional<TempDir> state)
      : url_(std::move(url)), state_(std::move(state)) {}

  static std::string Script() { return std::string(GRANARY_SOURCE_DIR) + "/scripts/spark-cluster"; }

  static int FreePort() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    close(fd);
    return ntohs(addr.sin_port);
  }

  std::string url_;
  std::optional<TempDir> state_;
};

}  // namespace granary::testing
