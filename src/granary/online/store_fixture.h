// A store of each kind for tests, with whatever it runs on (a temporary folder, a redis-server,
// a 3+3 Redis Cluster), stopped when the fixture is destroyed.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "granary/common/temp_dir.h"
#include "granary/online/online_store.h"
#include "granary/online/rocksdb/rocksdb_store.h"

namespace granary::testing {

class StoreFixture {
 public:
  virtual ~StoreFixture() = default;
  OnlineStore* store() { return store_.get(); }

 protected:
  std::unique_ptr<OnlineStore> store_;
};

inline std::vector<std::string> StoreKinds() { return {"rocksdb"}; }

class RocksDbFixture : public StoreFixture {
 public:
  static Result<std::unique_ptr<StoreFixture>> Start(const Clock* clock) {
    std::unique_ptr<RocksDbFixture> f(new RocksDbFixture());
    GRANARY_ASSIGN_OR_RAISE(f->dir_, TempDir::Make("granary_rocks_"));
    RocksDbOnlineStore::Options options;
    options.clock = clock;
    GRANARY_ASSIGN_OR_RAISE(auto store,
                            RocksDbOnlineStore::Open(f->dir_->path() / "online", options));
    f->store_ = std::move(store);
    return std::unique_ptr<StoreFixture>(std::move(f));
  }

 private:
  std::optional<TempDir> dir_;
};

inline Result<std::unique_ptr<StoreFixture>> StartStoreFixture(const std::string& kind,
                                                               const Clock* clock) {
  if (kind == "rocksdb") return RocksDbFixture::Start(clock);
  return Status::InvalidArgument("unknown store kind " + kind);
}

}  // namespace granary::testing
