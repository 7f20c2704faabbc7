#include "granary/online/store_opener.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <thread>

#include "granary/common/mutex.h"
#include "granary/online/redis/redis_store.h"

namespace granary {
namespace {

constexpr std::chrono::milliseconds kFirstRetry{100};
constexpr std::chrono::milliseconds kLongestRetry{5000};

// The stand-in of a store that could not be opened at start (see the header comment).
class RetryingOnlineStore final : public OnlineStore {
 public:
  RetryingOnlineStore(RepoConfig config, OnlineStoreOptions options, Status first_error,
                      StoreLog log)
      : config_(std::move(config)),
        options_(options),
        describe_(DescribeOnlineStore(config_)),
        log_(std::move(log)),
        last_error_(std::move(first_error)) {
    thread_ = std::thread([this] { Retry(); });
  }

  ~RetryingOnlineStore() override {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
    }
    wake_.SignalAll();
    thread_.join();  // before store_ goes: the thread may be installing it
  }

  Result<WriteStats> WriteBatch(const ViewLayout& view, const arrow::RecordBatch& rows) override {
    if (OnlineStore* s = ready()) return s->WriteBatch(view, rows);
    return NotOpen();
  }
  Result<int64_t> WriteTiles(const ViewLayout& tiles_view, const EntityKeyColumn& keys,
                             const std::vector<std::string>& records,
                             const TileWriteOptions& options) override {
    if (OnlineStore* s = ready()) return s->WriteTiles(tiles_view, keys, records, options);
    return NotOpen();
  }
  Result<std::unique_ptr<OnlineBulkLoad>> StartBulkLoad(const ViewLayout& view,
                                                        const BulkLoadOptions& options) override {
    if (OnlineStore* s = ready()) return s->StartBulkLoad(view, options);
    return std::unique_ptr<OnlineBulkLoad>();  // WriteBatch then answers NotOpen
  }
  Result<OnlineFeatures> Read(const OnlineReadRequest& request) override {
    if (OnlineStore* s = ready()) return s->Read(request);
    return NotOpen();
  }
  void AsyncRead(const boost::asio::any_io_executor& executor, OnlineReadRequest request,
                 ReadCallback done) override {
    if (OnlineStore* s = ready())
      return s->AsyncRead(executor, std::move(request), std::move(done));
    boost::asio::post(executor, [done = std::move(done), st = NotOpen()] { done(st); });
  }
  Status DeleteViews(const std::vector<std::string>& view_names) override {
    if (OnlineStore* s = ready()) return s->DeleteViews(view_names);
    return NotOpen();
  }
  Status DeleteAll() override {
    if (OnlineStore* s = ready()) return s->DeleteAll();
    return NotOpen();
  }
  Status PutViewMarker(const std::string& view, const ViewMarker& marker) override {
    if (OnlineStore* s = ready()) return s->PutViewMarker(view, marker);
    return NotOpen();
  }
  Result<std::vector<ShardMarkers>> ReadViewMarkers() override {
    if (OnlineStore* s = ready()) return s->ReadViewMarkers();
    return NotOpen();
  }
  std::string Describe() const override {
    if (OnlineStore* s = ready()) return s->Describe();
    return describe_;
  }

 private:
  OnlineStore* ready() const { return ready_.load(std::memory_order_acquire); }

  Status NotOpen() const {
    MutexLock lock(&mu_);
    return Status::Unavailable(
        fmt::format("{} is not open yet ({}); it is retried in the background", describe_,
                    last_error_.message()));
  }

  void Log(const std::string& line) const {
    if (log_) log_(line);
  }

  void Retry() {
    std::chrono::milliseconds delay = kFirstRetry;
    int attempts = 1;  // the one at start
    while (true) {
      {
        MutexLock lock(&mu_);
        const auto deadline = std::chrono::steady_clock::now() + delay;
        while (!stopping_ && wake_.WaitUntil(&mu_, deadline)) {
        }
        if (stopping_) return;
      }
      ++attempts;
      auto opened = OpenOnlineStore(config_, options_);
      MutexLock lock(&mu_);
      if (opened.ok()) {
        store_ = std::move(*opened);
        ready_.store(store_.get(), std::memory_order_release);
        Log(fmt::format("online store {} is open (attempt {}); serving from it", describe_,
                        attempts));
        return;
      }
      if (opened.status().message() != last_error_.message()) {
        Log(fmt::format("online store {} still cannot be opened: {}", describe_,
                        opened.status().message()));
      }
      last_error_ = opened.status();
      delay = std::min(delay * 2, kLongestRetry);
    }
  }

  const RepoConfig config_;
  const OnlineStoreOptions options_;
  const std::string describe_;
  const StoreLog log_;
  std::atomic<OnlineStore*> ready_{nullptr};  // store_.get() once open
  mutable Mutex mu_;
  CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  Status last_error_ GUARDED_BY(mu_);
  std::unique_ptr<OnlineStore> store_ GUARDED_BY(mu_);  // set once, by the thread
  std::thread thread_;
};

}  // namespace

Result<StoreStartPolicy> ParseStoreStartPolicy(std::string_view text) {
  for (StoreStartPolicy p :
       {StoreStartPolicy::kWhenUnreachable, StoreStartPolicy::kAlways, StoreStartPolicy::kNever}) {
    if (text == StoreStartPolicyName(p)) return p;
  }
  return Status::InvalidArgument(
      fmt::format("'{}' is not a policy for starting without the online store; use unreachable "
                  "(start while the store cannot be reached, but not with wrong credentials), "
                  "always or never",
                  text));
}

std::string_view StoreStartPolicyName(StoreStartPolicy policy) {
  switch (policy) {
    case StoreStartPolicy::kWhenUnreachable:
      return "unreachable";
    case StoreStartPolicy::kAlways:
      return "always";
    case StoreStartPolicy::kNever:
      return "never";
  }
  return "unreachable";
}

std::string DescribeOnlineStore(const RepoConfig& config) {
  const OnlineStoreConfig& online = config.online_store;
  if (online.type == "redis") {
    RedisOnlineStore::Options o;
    if (RedisOnlineStore::ParseConnectionString(online.connection_string, &o).ok() &&
        !o.nodes.empty()) {
      return "redis at " + o.nodes[0];
    }
    return "redis";
  }
  if (online.type == "redis_cluster") {
    std::string nodes;
    for (const auto& n : online.nodes) nodes += (nodes.empty() ? "" : ",") + n;
    return "redis cluster at " + nodes;
  }
  if (online.type == "rocksdb") return "rocksdb at " + config.Resolve(online.path).string();
  return online.type;
}

Result<std::unique_ptr<OnlineStore>> OpenOnlineStoreOrRetry(const RepoConfig& config,
                                                            const OnlineStoreOptions& options,
                                                            StoreStartPolicy policy, StoreLog log) {
  auto store = OpenOnlineStore(config, options);
  if (store.ok()) return store;
  const bool retry =
      policy == StoreStartPolicy::kAlways || (policy == StoreStartPolicy::kWhenUnreachable &&
                                              store.status().code() == StatusCode::kUnavailable);
  if (!retry) return store.status();
  if (log) {
    log(fmt::format(
        "online store {} cannot be opened ({}); starting without it: reads, pushes and /health "
        "answer 503 until it opens, retried in the background",
        DescribeOnlineStore(config), store.status().message()));
  }
  return std::unique_ptr<OnlineStore>(
      new RetryingOnlineStore(config, options, store.status(), std::move(log)));
}

}  // namespace granary
