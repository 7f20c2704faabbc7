// Real redis-server processes for tests: a standalone server, or a Redis Cluster of masters and
// replicas, on free ports of 127.0.0.1, each in its own temporary folder, stopped (and the folder
// removed) when the object is destroyed.
//
// The fixture talks to the servers with hiredis, independently of Granary's own Redis client, so
// a bug in that client cannot hide itself. Any subsystem's tests may use it: link
// `granary_testing` (docs/ARCHITECTURE.md, "Test fixtures").
//
//   auto redis = RedisServer::Start({.password = "pw"}).ValueOrDie();
//   redis->address();                      // "127.0.0.1:41237"
//   redis->Command({"SET", "k", "v"});
//   auto cluster = RedisCluster::Start().ValueOrDie();   // 3 masters, 3 replicas
//   cluster->SeedNodes();                  // every node's address
//   cluster->KillMaster(0);                // crash a master...
//   cluster->WaitForFailover(0);           // ...and wait for its replica to take over
//   cluster->RestartMasterEmpty(1);        // a master without persistence back empty
//
// Not thread-safe: use one object from one thread (the servers themselves serve any client).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/result.h"
#include "granary/common/temp_dir.h"
#include "granary/testing/child_process.h"

namespace granary::testing {

// A reply as hiredis parsed it.
struct RedisReply {
  enum class Type { kString, kArray, kInteger, kNil, kStatus, kError } type = Type::kNil;
  std::string str;  // kString, kStatus, kError
  long long integer = 0;
  std::vector<RedisReply> elements;
};

struct RedisServerOptions {
  std::string password;  // requirepass (the "default" user's password)
  // Extra ACL users as ACL SETUSER rules, e.g. {"alice", "on >secret ~* &* +@all"}.
  std::vector<std::pair<std::string, std::string>> acl_users;
  bool cluster = false;                 // cluster-enabled, with a 500 ms node timeout
  std::vector<std::string> extra_args;  // more "--name value" arguments
};

class RedisServer {
 public:
  // Starts redis-server on a free port and waits until it answers PING (at most 10 s).
  static Result<std::unique_ptr<RedisServer>> Start(const RedisServerOptions& options = {});
  ~RedisServer();  // Stop()
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  int bus_port() const { return bus_port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool running() const { return process_.running(); }
  const RedisServerOptions& options() const { return options_; }

  // Sends one command (authenticated with the options' password) and returns the reply; an
  // error reply is a reply of type kError, not a failed Result.
  Result<RedisReply> Command(const std::vector<std::string>& args) const;
  // Command() that must succeed with a non-error reply.
  Result<RedisReply> Check(const std::vector<std::string>& args) const;
  // The value of one field of INFO ("used_memory"), as text.
  Result<std::string> Info(const std::string& section, const std::string& field) const;

  // Crashes the server (SIGKILL) and starts it again on the same port and folder: it comes back
  // empty (no persistence), with the cluster configuration of its nodes.conf.
  Status RestartEmpty();
  void Stop();    // SIGTERM, wait; SIGKILL after 5 s
  void Kill();    // SIGKILL now (a crash)
  void Pause();   // SIGSTOP: the port accepts connections but nothing answers
  void Resume();  // SIGCONT

 private:
  RedisServer() = default;
  Status Spawn();  // forks and execs args_
  Status WaitUntilReady();

  std::vector<std::string> args_;  // the redis-server command line
  RedisServerOptions options_;
  std::optional<TempDir> dir_;
  ChildProcess process_;
  int port_ = 0;
  int bus_port_ = 0;
  bool paused_ = false;
};

class RedisCluster {
 public:
  // Starts masters + masters * replicas_per_master nodes, splits the 16384 slots evenly over the
  // masters, attaches the replicas and waits until every node reports cluster_state:ok and every
  // replica is in sync (about a second).
  static Result<std::unique_ptr<RedisCluster>> Start(int masters = 3, int replicas_per_master = 1,
                                                     const RedisServerOptions& options = {});

  std::vector<std::string> SeedNodes() const;
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int i) { return *nodes_[i]; }
  const std::string& node_id(int i) const { return ids_[i]; }

  // The node currently serving `slot` as master (asks a live node), or -1.
  Result<int> MasterOf(int slot) const;
  // The slot of a key, as the cluster computes it.
  Result<int> KeySlot(const std::string& key) const;

  // Moves `slot` from master `from` to master `to` in steps, as redis-cli --cluster reshard does:
  // BeginSlotMigration marks it MIGRATING/IMPORTING, MigrateKeys moves the given keys (clients
  // then get ASK for them), FinishSlotMigration assigns the slot to `to` everywhere (MOVED).
  Status BeginSlotMigration(int slot, int from, int to);
  Status MigrateKeys(int slot, int from, int to, const std::vector<std::string>& keys);
  Status FinishSlotMigration(int slot, int to);

  // Waits until every live replica has applied everything its master wrote so far (at most 10 s),
  // so that a failover loses nothing.
  Status WaitForReplication();

  // Crashes master `i` (SIGKILL) and waits until one of its replicas serves its slots and the
  // cluster is ok again (at most 20 s).
  Status KillMasterAndWaitForFailover(int i);

  // Restarts master `i` empty (RedisServer::RestartEmpty), as a master without persistence that
  // crashed and came back before any failover (a cluster without replicas), and waits until the
  // cluster is ok again (at most 20 s). Its slots are its own again, and hold no keys.
  Status RestartMasterEmpty(int i);

 private:
  RedisCluster() = default;
  const RedisServer* AnyLiveNode() const;
  Status WaitForClusterOk(const std::vector<int>& nodes, int expected_known);

  std::vector<std::unique_ptr<RedisServer>> nodes_;  // masters first, then replicas
  std::vector<std::string> ids_;
  int masters_ = 0;
};

}  // namespace granary::testing
