// Starting without the online store: a feature server that comes up while its store cannot be
// reached (Redis restarting, a container started before Redis) opens the store in the background
// and answers Unavailable until it is open (docs/SERVING.md, "Starting while the store is down").
//
// OpenOnlineStoreOrRetry first opens the store as OpenOnlineStore does. When that fails and the
// policy allows it, it returns a stand-in OnlineStore instead of the error:
//   - every call answers Unavailable ("<store> is not open yet: <last error>"), so a server's
//     /health and reads answer 503 and pushes fail without writing;
//   - a background thread calls OpenOnlineStore again after 100 ms, then at doubling intervals up
//     to 5 s, until it succeeds; from then on every call goes to the opened store (one atomic
//     load per call), whose own reconnection handles later outages.
// `log` (may be empty) gets one line when the store cannot be opened at start, one per new error
// while retrying, and one when it opens.
//
// Threading: the returned store is thread-safe like any OnlineStore (see online_store.h), and
// keeps its contract: AsyncRead completions are posted to the caller's executor. Destroying it
// stops the retries; it may wait for an open attempt in progress (at most the connect and request
// timeouts of OnlineStoreOptions).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "granary/common/result.h"
#include "granary/online/online_store.h"
#include "granary/registry/repo_config.h"

namespace granary {

enum class StoreStartPolicy {
  // The default: start while the store is unreachable (Unavailable: refused or unanswered
  // connections, a cluster with no node answering); any other error (refused credentials, an ACL
  // that forbids Granary's commands, a bad address, a RocksDB folder held by another process)
  // stops the start, since retrying cannot fix a configuration.
  kWhenUnreachable,
  // Start whatever the error, and retry until the store opens (credentials provisioned after the
  // server starts, a secret being rotated).
  kAlways,
  // The store must open at start; any error stops the start.
  kNever,
};

// "unreachable", "always", "never" (the flag's words: start without the store when ...).
Result<StoreStartPolicy> ParseStoreStartPolicy(std::string_view text);
std::string_view StoreStartPolicyName(StoreStartPolicy policy);

// How the store is named in messages before it is open: "redis at 127.0.0.1:6379",
// "redis cluster at a:1,b:2", "rocksdb at /repo/data/online" (never a password).
std::string DescribeOnlineStore(const RepoConfig& config);

using StoreLog = std::function<void(const std::string& line)>;

// See the header comment. `config` and `options` are copied (options.clock is borrowed and must
// outlive the store).
Result<std::unique_ptr<OnlineStore>> OpenOnlineStoreOrRetry(const RepoConfig& config,
                                                            const OnlineStoreOptions& options,
                                                            StoreStartPolicy policy,
                                                            StoreLog log = {});

}  // namespace granary
