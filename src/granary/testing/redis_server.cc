#include "granary/testing/redis_server.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>
#include <signal.h>

#include <chrono>
#include <sstream>
#include <thread>

namespace granary::testing {
namespace {

using Clock = std::chrono::steady_clock;

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

std::string FieldOf(const std::string& text, const std::string& field) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind(field + ":", 0) == 0) return line.substr(field.size() + 1);
  }
  return "";
}

}  // namespace

// ------------------------------------------------------------------------------ RedisServer

Result<std::unique_ptr<RedisServer>> RedisServer::Start(const RedisServerOptions& options) {
  Status last = Status::OK();
  for (int attempt = 0; attempt < 5; ++attempt) {
    std::unique_ptr<RedisServer> server(new RedisServer());
    server->options_ = options;
    GRANARY_ASSIGN_OR_RAISE(server->dir_, TempDir::Make("granary_redis_"));
    GRANARY_ASSIGN_OR_RAISE(server->port_, FreeLoopbackPort());
    if (options.cluster) {
      GRANARY_ASSIGN_OR_RAISE(server->bus_port_, FreeLoopbackPort());
    }
    const std::string dir = server->dir_->path().string();
    std::vector<std::string> args = {"redis-server",
                                     "--port",
                                     std::to_string(server->port_),
                                     "--bind",
                                     "127.0.0.1",
                                     "--save",
                                     "",
                                     "--appendonly",
                                     "no",
                                     "--dir",
                                     dir,
                                     "--logfile",
                                     dir + "/redis.log",
                                     "--daemonize",
                                     "no",
                                     "--protected-mode",
                                     "no",
                                     "--repl-diskless-sync-delay",
                                     "0"};
    if (!options.password.empty()) {
      args.insert(args.end(),
                  {"--requirepass", options.password, "--masterauth", options.password});
    }
    if (options.cluster) {
      args.insert(args.end(),
                  {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                   "--cluster-node-timeout", "500", "--cluster-port",
                   std::to_string(server->bus_port_), "--cluster-replica-validity-factor", "0",
                   // replicas appear in CLUSTER SLOTS once their offset is not 0
                   "--repl-ping-replica-period", "1"});
    }
    args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
    server->args_ = std::move(args);
    GRANARY_RETURN_NOT_OK(server->Spawn());
    last = server->WaitUntilReady();
    if (last.ok()) {
      for (const auto& [user, rules] : options.acl_users) {
        std::vector<std::string> cmd = {"ACL", "SETUSER", user};
        std::istringstream words(rules);
        for (std::string w; words >> w;) cmd.push_back(w);
        GRANARY_RETURN_NOT_OK(server->Check(cmd).status());
      }
      return server;
    }
    // Most likely the port was taken in between: try another.
  }
  return last;
}

Status RedisServer::Spawn() {
  GRANARY_ASSIGN_OR_RAISE(process_, ChildProcess::Spawn(args_));
  return Status::OK();
}

Status RedisServer::RestartEmpty() {
  Kill();  // no persistence: the data goes with the process; nodes.conf stays in the folder
  GRANARY_RETURN_NOT_OK(Spawn());
  return WaitUntilReady();
}

Status RedisServer::WaitUntilReady() {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (Clock::now() < deadline) {
    if (process_.Exited()) {
      return Status::Unavailable(fmt::format("redis-server on port {} exited at start: {}", port_,
                                             FileTail(dir_->path() / "redis.log", 1500)));
    }
    auto reply = Command({"PING"});
    if (reply.ok() && reply->type == RedisReply::Type::kStatus) {
      // The answer may come from another test's server that took the port first (ours then
      // exits, unable to bind): a test would pause or stop the wrong one. INFO says whose it is.
      auto info = Command({"INFO", "server"});
      const std::string mine = fmt::format("process_id:{}\r", process_.pid());
      if (info.ok() && info->str.find("process_id:") != std::string::npos &&
          info->str.find(mine) == std::string::npos) {
        Kill();
        return Status::Unavailable(fmt::format("port {} answers for another redis-server", port_));
      }
      return Status::OK();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return Status::Unavailable(fmt::format("redis-server on port {} did not answer PING in 10 s: {}",
                                         port_, FileTail(dir_->path() / "redis.log", 1500)));
}

RedisServer::~RedisServer() { Stop(); }

Result<RedisReply> RedisServer::Command(const std::vector<std::string>& args) const {
  timeval timeout{2, 0};
  redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
  if (c == nullptr || c->err) {
    std::string err = c ? c->errstr : "out of memory";
    if (c) redisFree(c);
    return Status::Unavailable(fmt::format("cannot connect to 127.0.0.1:{}: {}", port_, err));
  }
  redisSetTimeout(c, timeout);
  auto run = [&](const std::vector<std::string>& cmd) -> Result<RedisReply> {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : cmd) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    if (r == nullptr) {
      return Status::Unavailable(fmt::format("127.0.0.1:{}: {}", port_, c->errstr));
    }
    RedisReply out = Convert(r);
    freeReplyObject(r);
    return out;
  };
  Result<RedisReply> result = Status::Internal("unset");
  if (!options_.password.empty()) {
    auto auth = run({"AUTH", options_.password});
    if (!auth.ok() || auth->type == RedisReply::Type::kError) {
      redisFree(c);
      return auth.ok() ? Status::Unavailable("AUTH failed: " + auth->str) : auth.status();
    }
  }
  result = run(args);
  redisFree(c);
  return result;
}

Result<RedisReply> RedisServer::Check(const std::vector<std::string>& args) const {
  GRANARY_ASSIGN_OR_RAISE(RedisReply reply, Command(args));
  if (reply.type == RedisReply::Type::kError) {
    return Status::Internal(
        fmt::format("127.0.0.1:{}: {} failed: {}", port_, args.at(0), reply.str));
  }
  return reply;
}

Result<std::string> RedisServer::Info(const std::string& section, const std::string& field) const {
  GRANARY_ASSIGN_OR_RAISE(RedisReply reply, Check({"INFO", section}));
  return FieldOf(reply.str, field);
}

void RedisServer::Stop() {
  if (paused_) Resume();
  process_.Stop(SIGTERM, std::chrono::seconds(5));
}

void RedisServer::Kill() {
  process_.Kill();
  paused_ = false;
}

void RedisServer::Pause() {
  if (process_.running() && !paused_) {
    process_.Signal(SIGSTOP);
    paused_ = true;
  }
}

void RedisServer::Resume() {
  if (process_.running() && paused_) {
    process_.Signal(SIGCONT);
    paused_ = false;
  }
}

// ------------------------------------------------------------------------------ RedisCluster

Result<std::unique_ptr<RedisCluster>> RedisCluster::Start(int masters, int replicas_per_master,
                                                          const RedisServerOptions& options) {
  std::unique_ptr<RedisCluster> c(new RedisCluster());
  c->masters_ = masters;
  RedisServerOptions node_options = options;
  node_options.cluster = true;
  const int total = masters * (1 + replicas_per_master);
  for (int i = 0; i < total; ++i) {
    GRANARY_ASSIGN_OR_RAISE(auto node, RedisServer::Start(node_options));
    GRANARY_ASSIGN_OR_RAISE(RedisReply id, node->Check({"CLUSTER", "MYID"}));
    c->ids_.push_back(id.str);
    c->nodes_.push_back(std::move(node));
  }
  for (int m = 0; m < masters; ++m) {
    int lo = m * 16384 / masters, hi = (m + 1) * 16384 / masters - 1;
    GRANARY_RETURN_NOT_OK(
        c->nodes_[m]
            ->Check({"CLUSTER", "ADDSLOTSRANGE", std::to_string(lo), std::to_string(hi)})
            .status());
    // Distinct epochs from the start spare the cluster its collision resolution.
    GRANARY_RETURN_NOT_OK(
        c->nodes_[m]->Check({"CLUSTER", "SET-CONFIG-EPOCH", std::to_string(m + 1)}).status());
  }
  for (int i = 1; i < total; ++i) {
    GRANARY_RETURN_NOT_OK(
        c->nodes_[0]
            ->Check({"CLUSTER", "MEET", "127.0.0.1", std::to_string(c->nodes_[i]->port()),
                     std::to_string(c->nodes_[i]->bus_port())})
            .status());
  }
  // Wait until every node knows every other one, then attach the replicas.
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (int i = 0; i < total; ++i) {
    while (true) {
      GRANARY_ASSIGN_OR_RAISE(RedisReply nodes, c->nodes_[i]->Check({"CLUSTER", "NODES"}));
      int known = 0;
      std::istringstream lines(nodes.str);
      for (std::string line; std::getline(lines, line);) {
        if (!line.empty() && line.find("handshake") == std::string::npos) ++known;
      }
      if (known == total) break;
      if (Clock::now() > deadline) {
        return Status::Unavailable("cluster nodes did not meet in 20 s:\n" + nodes.str);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  for (int i = masters; i < total; ++i) {
    int master = (i - masters) % masters;
    while (true) {
      GRANARY_ASSIGN_OR_RAISE(RedisReply r,
                              c->nodes_[i]->Command({"CLUSTER", "REPLICATE", c->ids_[master]}));
      if (r.type != RedisReply::Type::kError) break;
      if (Clock::now() > deadline) return Status::Unavailable("CLUSTER REPLICATE: " + r.str);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::vector<int> all;
  for (int i = 0; i < total; ++i) all.push_back(i);
  GRANARY_RETURN_NOT_OK(c->WaitForClusterOk(all, total));
  // Every node also lists each master's replicas (clients read them from CLUSTER SLOTS).
  for (int i = 0; i < total; ++i) {
    while (true) {
      GRANARY_ASSIGN_OR_RAISE(RedisReply slots, c->nodes_[i]->Check({"CLUSTER", "SLOTS"}));
      bool complete = static_cast<int>(slots.elements.size()) == masters;
      for (const RedisReply& range : slots.elements) {
        complete = complete && static_cast<int>(range.elements.size()) == 3 + replicas_per_master;
      }
      if (complete) break;
      if (Clock::now() > deadline) {
        return Status::Unavailable("cluster node " + c->nodes_[i]->address() +
                                   " does not list every replica in CLUSTER SLOTS");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return c;
}

Status RedisCluster::RestartMasterEmpty(int i) {
  GRANARY_RETURN_NOT_OK(nodes_[i]->RestartEmpty());
  std::vector<int> all;
  for (int n = 0; n < num_nodes(); ++n) all.push_back(n);
  return WaitForClusterOk(all, num_nodes());
}

Status RedisCluster::WaitForClusterOk(const std::vector<int>& nodes, int expected_known) {
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (int i : nodes) {
    while (true) {
      auto info = nodes_[i]->Check({"CLUSTER", "INFO"});
      bool ok = info.ok() && FieldOf(info->str, "cluster_state") == "ok" &&
                FieldOf(info->str, "cluster_known_nodes") == std::to_string(expected_known);
      if (ok && i >= masters_) {
        auto link = nodes_[i]->Info("replication", "master_link_status");
        ok = link.ok() && *link == "up";
      }
      if (ok) break;
      if (Clock::now() > deadline) {
        return Status::Unavailable(fmt::format("cluster node {} not ready in 20 s: {}",
                                               nodes_[i]->address(),
                                               info.ok() ? info->str : info.status().ToString()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  return Status::OK();
}

std::vector<std::string> RedisCluster::SeedNodes() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_) out.push_back(n->address());
  return out;
}

const RedisServer* RedisCluster::AnyLiveNode() const {
  for (const auto& n : nodes_) {
    if (n->running()) return n.get();
  }
  return nullptr;
}

Result<int> RedisCluster::MasterOf(int slot) const {
  const RedisServer* live = AnyLiveNode();
  if (live == nullptr) return Status::Unavailable("no live cluster node");
  GRANARY_ASSIGN_OR_RAISE(RedisReply slots, live->Check({"CLUSTER", "SLOTS"}));
  for (const RedisReply& range : slots.elements) {
    if (range.elements.size() < 3) continue;
    if (slot < range.elements[0].integer || slot > range.elements[1].integer) continue;
    long long port = range.elements[2].elements.at(1).integer;
    for (int i = 0; i < num_nodes(); ++i) {
      if (nodes_[i]->port() == port) return i;
    }
  }
  return -1;
}

Result<int> RedisCluster::KeySlot(const std::string& key) const {
  const RedisServer* live = AnyLiveNode();
  if (live == nullptr) return Status::Unavailable("no live cluster node");
  GRANARY_ASSIGN_OR_RAISE(RedisReply r, live->Check({"CLUSTER", "KEYSLOT", key}));
  return static_cast<int>(r.integer);
}

Status RedisCluster::BeginSlotMigration(int slot, int from, int to) {
  GRANARY_RETURN_NOT_OK(
      nodes_[to]
          ->Check({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", ids_[from]})
          .status());
  return nodes_[from]
      ->Check({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", ids_[to]})
      .status();
}

Status RedisCluster::MigrateKeys(int slot, int from, int to, const std::vector<std::string>& keys) {
  if (keys.empty()) return Status::OK();
  std::vector<std::string> cmd = {"MIGRATE", "127.0.0.1", std::to_string(nodes_[to]->port()),
                                  "",        "0",         "5000"};
  if (!nodes_[from]->options().password.empty()) {
    cmd.insert(cmd.end(), {"AUTH", nodes_[from]->options().password});
  }
  cmd.push_back("KEYS");
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  return nodes_[from]->Check(cmd).status();
}

Status RedisCluster::FinishSlotMigration(int slot, int to) {
  // The target first, then every other master, as redis-cli does.
  GRANARY_RETURN_NOT_OK(
      nodes_[to]->Check({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", ids_[to]}).status());
  for (int m = 0; m < num_nodes(); ++m) {
    if (m == to || !nodes_[m]->running()) continue;
    auto role = nodes_[m]->Info("replication", "role");
    if (!role.ok() || *role != "master") continue;
    GRANARY_RETURN_NOT_OK(
        nodes_[m]->Check({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", ids_[to]}).status());
  }
  return Status::OK();
}

Status RedisCluster::WaitForReplication() {
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  for (int r = masters_; r < num_nodes(); ++r) {
    if (!nodes_[r]->running()) continue;
    while (true) {
      auto role = nodes_[r]->Info("replication", "role");
      if (!role.ok()) return role.status();
      if (*role != "slave") break;  // promoted
      auto host_port = nodes_[r]->Info("replication", "master_port");
      int master = -1;
      for (int m = 0; m < num_nodes(); ++m) {
        if (host_port.ok() && std::to_string(nodes_[m]->port()) == *host_port) master = m;
      }
      if (master < 0 || !nodes_[master]->running()) break;
      auto want = nodes_[master]->Info("replication", "master_repl_offset");
      auto have = nodes_[r]->Info("replication", "slave_repl_offset");
      if (want.ok() && have.ok() && *want == *have) break;
      if (Clock::now() > deadline) {
        return Status::Unavailable("replica " + nodes_[r]->address() + " did not catch up in 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  return Status::OK();
}

Status RedisCluster::KillMasterAndWaitForFailover(int i) {
  const int slot = i * 16384 / masters_;
  nodes_[i]->Kill();
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  std::vector<int> live;
  for (int n = 0; n < num_nodes(); ++n) {
    if (nodes_[n]->running()) live.push_back(n);
  }
  while (true) {
    auto master = MasterOf(slot);
    if (master.ok() && *master >= 0 && *master != i) {
      bool all_ok = true;
      for (int n : live) {
        auto info = nodes_[n]->Check({"CLUSTER", "INFO"});
        all_ok = all_ok && info.ok() && FieldOf(info->str, "cluster_state") == "ok";
      }
      if (all_ok) return Status::OK();
    }
    if (Clock::now() > deadline) {
      return Status::Unavailable(
          fmt::format("no failover of {} within 20 s", nodes_[i]->address()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace granary::testing
