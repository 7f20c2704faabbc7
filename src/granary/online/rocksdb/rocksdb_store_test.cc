// RocksDB specifics: expiry by the store's clock, compaction, the single-process lock.
#include "granary/online/rocksdb/rocksdb_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "granary/common/temp_dir.h"
#include "granary/online/online_store.h"
#include "granary/testing/online_definitions.h"

namespace granary {
namespace {

using testing::MakeRows;
using testing::MakeViewRead;
using testing::Row;

const Timestamp kT0 = Timestamp::FromSeconds(1'800'000'000);

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    defs_ = testing::OnlineDefinitions();
    layouts_ = MakeViewLayouts(defs_, Duration::Days(90)).ValueOrDie();
    RocksDbOnlineStore::Options options;
    options.clock = &clock_;
    auto store = RocksDbOnlineStore::Open(dir_.path() / "online", options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  FeatureStatus BayStatus(const std::string& bay) {
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(layouts_.at("bay_stats"), {{Value(bay)}}));
    return store_->Read(request).ValueOrDie().status(0, 0, 0);
  }
  WriteStats WriteBay(const std::string& bay, Timestamp event) {
    auto view = layouts_.at("bay_stats");
    return store_->WriteBatch(*view, *MakeRows(*view, {Row{{Value(bay)}, event, {}, {Value(0.5)}}}))
        .ValueOrDie();
  }

  TempDir dir_ = TempDir::Make("granary_rocks_").ValueOrDie();
  Definitions defs_;
  ViewLayouts layouts_;
  ManualClock clock_{kT0};
  std::unique_ptr<RocksDbOnlineStore> store_;
};

TEST_F(RocksDbStoreTest, KeysExpireAfterTheViewKeyTtlAndSkippedWritesRefreshIt) {
  // bay_stats keeps keys 2h after their last write.
  EXPECT_EQ(WriteBay("A", kT0).written, 1);
  clock_.Advance(Duration::Minutes(90));
  EXPECT_EQ(WriteBay("A", kT0 - Duration::Hours(1)).skipped_older, 1);  // refreshes the expiry
  clock_.Advance(Duration::Minutes(60));  // 2.5h after the first write, 1h after the refresh
  EXPECT_EQ(BayStatus("A"), FeatureStatus::kPresent);
  EXPECT_EQ(store_->CompactAndCount().ValueOrDie(), 1);
  clock_.Advance(Duration::Minutes(61));
  EXPECT_EQ(BayStatus("A"), FeatureStatus::kNotFound);
  // The compaction filter drops it; a new write after expiry is not compared with it.
  EXPECT_EQ(store_->CompactAndCount().ValueOrDie(), 0);
  EXPECT_EQ(WriteBay("A", kT0 - Duration::Hours(5)).written, 1);
}

TEST_F(RocksDbStoreTest, ExpiredRowsDoNotBlockOlderWritesBeforeCompaction) {
  EXPECT_EQ(WriteBay("B", kT0).written, 1);
  clock_.Advance(Duration::Hours(3));
  EXPECT_EQ(WriteBay("B", kT0 - Duration::Hours(1)).written, 1);
  EXPECT_EQ(BayStatus("B"), FeatureStatus::kPresent);
}

// Whether another process can take RocksDB's lock of the store in `folder` now.
bool AnotherProcessCouldLock(const std::filesystem::path& folder) {
  const std::string lock_path = (folder / "LOCK").string();  // no allocation after fork()
  const pid_t child = fork();
  if (child < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return false;
  }
  if (child == 0) {
    const int fd = ::open(lock_path.c_str(), O_RDWR);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    _exit(fd >= 0 && ::fcntl(fd, F_SETLK, &lock) == 0 ? 0 : 1);
  }
  int status = 0;
  if (waitpid(child, &status, 0) != child) ADD_FAILURE() << "waitpid: " << std::strerror(errno);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

TEST_F(RocksDbStoreTest, ASecondOpenOfTheSameFolderIsUnavailableWithAFix) {
  auto second = RocksDbOnlineStore::Open(dir_.path() / "online", {});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  // In this process: said so (RocksDB's lock cannot tell; another process's open is named as
  // such, AStoreHeldByAnotherProcessKeepsItsEmptyWriteAheadLogs).
  EXPECT_NE(second.status().message().find("this process already holds"), std::string::npos)
      << second.status().ToString();
  // The attempt left the holder's lock in place (closing a descriptor of the LOCK file in this
  // process would have dropped it): another process still cannot take the store.
  EXPECT_FALSE(AnotherProcessCouldLock(dir_.path() / "online"));
  // Nor under another spelling of the folder, which RocksDB's in-process registry (path text)
  // would not recognise: refused by the folder's identity.
  std::filesystem::create_directory_symlink(dir_.path() / "online", dir_.path() / "alias");
  auto aliased = RocksDbOnlineStore::Open(dir_.path() / "alias", {});
  ASSERT_FALSE(aliased.ok());
  EXPECT_EQ(aliased.status().code(), StatusCode::kUnavailable) << aliased.status().ToString();
  EXPECT_FALSE(AnotherProcessCouldLock(dir_.path() / "online"));
  store_.reset();
  EXPECT_TRUE(AnotherProcessCouldLock(dir_.path() / "online"));
  // Closed, the folder opens under either path.
  EXPECT_TRUE(RocksDbOnlineStore::Open(dir_.path() / "alias", {}).ok());
}

TEST_F(RocksDbStoreTest, AStoreHeldByAnotherProcessKeepsItsEmptyWriteAheadLogs) {
  const auto folder = dir_.path() / "online";
  store_.reset();
  // A child process holds RocksDB's lock (as a running server would) until told to exit; an
  // empty log of the holder's lies in the folder.
  const std::string lock_path = (folder / "LOCK").string();
  int to_child[2], from_child[2];
  ASSERT_EQ(pipe(to_child), 0);
  ASSERT_EQ(pipe(from_child), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0) << std::strerror(errno);
  if (child == 0) {
    const int fd = ::open(lock_path.c_str(), O_RDWR);
    struct flock lock = {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    const char ok = fd >= 0 && ::fcntl(fd, F_SETLK, &lock) == 0 ? 'y' : 'n';
    (void)!write(from_child[1], &ok, 1);
    char done;
    (void)!read(to_child[0], &done, 1);
    _exit(0);
  }
  char ok = 'n';
  ASSERT_EQ(read(from_child[0], &ok, 1), 1);
  ASSERT_EQ(ok, 'y');
  const auto held_log = folder / "999999.log";
  { std::ofstream(held_log.string()).flush(); }
  auto opened = RocksDbOnlineStore::Open(folder, {});
  EXPECT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kUnavailable) << opened.status().ToString();
  EXPECT_NE(opened.status().message().find("another process"), std::string::npos)
      << opened.status().ToString();
  EXPECT_TRUE(std::filesystem::exists(held_log)) << "the holder's empty log was deleted";
  (void)!write(to_child[1], "x", 1);
  int status = 0;
  waitpid(child, &status, 0);
  for (int fd : {to_child[0], to_child[1], from_child[0], from_child[1]}) ::close(fd);
  // The holder gone, the next open deletes it (and keeps the store's data).
  RocksDbOnlineStore::Options options;
  options.clock = &clock_;
  store_ = RocksDbOnlineStore::Open(folder, options).ValueOrDie();
  EXPECT_FALSE(std::filesystem::exists(held_log));
}

// Files in `folder` whose name passes `match`.
template <typename Match>
int CountFiles(const std::filesystem::path& folder, Match match) {
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder)) {
    if (match(entry.path().filename().string())) ++n;
  }
  return n;
}

TEST_F(RocksDbStoreTest, RestartsWithoutWritesLeaveNoEmptyWriteAheadLogsBehind) {
  // RocksDB 7.8 kept the empty log of every open that wrote nothing (one more file per server
  // restart, each read by every later open); and a LOG.old info log per open, 1,000 kept.
  const auto folder = dir_.path() / "online";
  RocksDbOnlineStore::Options options;
  options.clock = &clock_;
  WriteBay("D", kT0);  // a log with a write: kept and replayed, never deleted
  for (int i = 0; i < 15; ++i) {
    store_.reset();
    store_ = RocksDbOnlineStore::Open(folder, options).ValueOrDie();
    // The log with the write until a flush, and the open's own.
    EXPECT_LE(CountFiles(folder, [](const std::string& f) { return f.ends_with(".log"); }), 2)
        << "after open " << i + 2;
    EXPECT_EQ(BayStatus("D"), FeatureStatus::kPresent) << "after open " << i + 2;
  }
  EXPECT_LE(CountFiles(folder, [](const std::string& f) { return f.starts_with("LOG.old"); }),
            static_cast<int>(RocksDbOnlineStore::kInfoLogsKept));
}

TEST_F(RocksDbStoreTest, DataSurvivesReopening) {
  WriteBay("C", kT0);
  store_.reset();
  RocksDbOnlineStore::Options options;
  options.clock = &clock_;
  store_ = RocksDbOnlineStore::Open(dir_.path() / "online", options).ValueOrDie();
  EXPECT_EQ(BayStatus("C"), FeatureStatus::kPresent);
  EXPECT_EQ(store_->Describe(), "rocksdb at " + (dir_.path() / "online").string());
}

TEST_F(RocksDbStoreTest, AReadOnlyStoreBesideTheWriterSeesItsLaterWrites) {
  RocksDbOnlineStore::Options options;
  options.clock = &clock_;
  options.read_only = true;
  auto reader = RocksDbOnlineStore::Open(dir_.path() / "online", options);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(layouts_.at("bay_stats"), {{Value("D")}}));
  EXPECT_EQ((*reader)->Read(request).ValueOrDie().status(0, 0, 0), FeatureStatus::kNotFound);
  WriteBay("D", kT0);  // in the writer's memtable and log only
  EXPECT_EQ((*reader)->Read(request).ValueOrDie().status(0, 0, 0), FeatureStatus::kPresent);
  // After the writer flushes and compacts (its log and old files go), the reader still follows.
  ASSERT_EQ(store_->CompactAndCount().ValueOrDie(), 1);
  WriteBay("E", kT0);
  request.views[0] = MakeViewRead(layouts_.at("bay_stats"), {{Value("D")}, {Value("E")}});
  OnlineFeatures read = (*reader)->Read(request).ValueOrDie();
  EXPECT_EQ(read.status(0, 0, 0), FeatureStatus::kPresent);
  EXPECT_EQ(read.status(0, 1, 0), FeatureStatus::kPresent);
  EXPECT_EQ((*reader)->Describe(), "rocksdb (read-only) at " + (dir_.path() / "online").string());
}

TEST_F(RocksDbStoreTest, AReadOnlyStoreSeesWritesWhileTheFolderLooksUnchanged) {
  // A reader skips its catch-up when the writer's files show no change. Give the folder an old
  // mtime (a later one each time, as a real change would), so that the reader trusts it and only
  // the sizes of the log and the MANIFEST, or a new folder listing, can reveal the writes.
  const std::filesystem::path folder = dir_.path() / "online";
  int64_t seconds = 1'000'000'000;
  auto age_folder = [&] {
    const timespec times[2] = {{0, UTIME_OMIT}, {seconds++, 0}};
    ASSERT_EQ(utimensat(AT_FDCWD, folder.c_str(), times, 0), 0);
  };
  RocksDbOnlineStore::Options options;
  options.clock = &clock_;
  options.read_only = true;
  auto reader = RocksDbOnlineStore::Open(folder, options).ValueOrDie();
  auto status_of = [&](const std::string& bay) {
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(layouts_.at("bay_stats"), {{Value(bay)}}));
    return reader->Read(request).ValueOrDie().status(0, 0, 0);
  };
  age_folder();
  EXPECT_EQ(status_of("H"), FeatureStatus::kNotFound);
  EXPECT_EQ(status_of("H"), FeatureStatus::kNotFound);  // nothing changed: no catch-up
  WriteBay("H", kT0);                                   // the log grows; the folder does not
  EXPECT_EQ(status_of("H"), FeatureStatus::kPresent);
  ASSERT_EQ(store_->CompactAndCount().ValueOrDie(), 1);  // new files, a new log, the old one gone
  age_folder();
  WriteBay("I", kT0);
  age_folder();
  EXPECT_EQ(status_of("I"), FeatureStatus::kPresent);
  WriteBay("J", kT0);  // into the new log, found by the listing above
  EXPECT_EQ(status_of("J"), FeatureStatus::kPresent);
}

TEST_F(RocksDbStoreTest, AReadOnlyStoreRefusesWritesWithAFix) {
  RocksDbOnlineStore::Options options;
  options.read_only = true;
  auto reader = RocksDbOnlineStore::Open(dir_.path() / "online", options).ValueOrDie();
  auto view = layouts_.at("bay_stats");
  auto written =
      reader->WriteBatch(*view, *MakeRows(*view, {Row{{Value("F")}, kT0, {}, {Value(0.5)}}}));
  ASSERT_FALSE(written.ok());
  EXPECT_EQ(written.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(written.status().message().find("read-only"), std::string::npos);
  EXPECT_EQ(reader->DeleteAll().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(reader->DeleteViews({"bay_stats"}).code(), StatusCode::kFailedPrecondition);
}

TEST_F(RocksDbStoreTest, AReadOnlyOpenOfAMissingStoreCreatesAnEmptyOne) {
  RocksDbOnlineStore::Options options;
  options.read_only = true;
  auto reader = RocksDbOnlineStore::Open(dir_.path() / "fresh" / "online", options);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(layouts_.at("bay_stats"), {{Value("G")}}));
  EXPECT_EQ((*reader)->Read(request).ValueOrDie().status(0, 0, 0), FeatureStatus::kNotFound);
  reader->reset();
  // A writer may open it afterwards (the reader held no lock).
  EXPECT_TRUE(RocksDbOnlineStore::Open(dir_.path() / "fresh" / "online", {}).ok());
}

// A large read split across a pool's threads answers exactly as the read on one thread: every
// status, event time and value, for views sharing a key column and a view with keys of its own,
// with rows missing, NULL_VALUE and OUTSIDE_MAX_AGE spread over the parts.
TEST_F(RocksDbStoreTest, ASplitReadAnswersAsTheReadOnOneThread) {
  constexpr int kRows = 300;
  auto every = layouts_.at("every_type");
  auto risk = layouts_.at("risk");
  auto bays = layouts_.at("bay_stats");
  std::vector<Row> every_rows, risk_rows, bay_rows;
  std::vector<std::vector<Value>> customers, bay_ids;
  for (int i = 0; i < kRows; ++i) {
    customers.push_back({Value(int64_t{i})});
    bay_ids.push_back({Value(fmt::format("bay-{}", i))});
    if (i % 3 != 0)
      every_rows.push_back({{Value(int64_t{i})}, kT0, {}, testing::EveryTypeValues(i, i % 7 == 1)});
    // risk's ttl is 1h: every fifth row is older
    if (i % 2 == 0) {
      risk_rows.push_back({{Value(int64_t{i})},
                           kT0 - (i % 5 == 0 ? Duration::Hours(2) : Duration::Minutes(i % 50)),
                           {},
                           {Value(0.5 * i), i % 4 == 0 ? Value::Null() : Value(int64_t{i})}});
    }
    if (i % 5 != 2)
      bay_rows.push_back({{bay_ids.back()[0]}, kT0 - Duration::Seconds(i), {}, {Value(i / 8.0)}});
  }
  ASSERT_TRUE(store_->WriteBatch(*every, *MakeRows(*every, every_rows)).ok());
  ASSERT_TRUE(store_->WriteBatch(*risk, *MakeRows(*risk, risk_rows)).ok());
  ASSERT_TRUE(store_->WriteBatch(*bays, *MakeRows(*bays, bay_rows)).ok());

  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(every, customers));
  request.views.push_back(MakeViewRead(risk, {}, {1, 0}));
  request.views.back().keys = request.views[0].keys;  // one key column: one seek per customer
  request.views.push_back(MakeViewRead(bays, bay_ids));
  const OnlineFeatures one = store_->Read(request).ValueOrDie();

  for (int helpers : {1, 3}) {
    ForkJoinPool pool(helpers);
    request.split = &pool;
    const OnlineFeatures split = store_->Read(request).ValueOrDie();
    EXPECT_EQ(pool.jobs_offered(), 1u) << "the read was not split";
    ASSERT_EQ(split.num_rows(), one.num_rows());
    size_t present = 0, null_value = 0, old = 0, missing = 0;
    for (size_t v = 0; v < request.views.size(); ++v) {
      for (size_t j = 0; j < request.views[v].features.size(); ++j) {
        for (size_t r = 0; r < kRows; ++r) {
          const FeatureStatus s = one.status(v, j, r);
          ASSERT_EQ(split.status(v, j, r), s) << "view " << v << " feature " << j << " row " << r;
          ASSERT_EQ(split.event_timestamp(v, r), one.event_timestamp(v, r));
          ASSERT_EQ(split.value(v, j, r).ToValue(), one.value(v, j, r).ToValue())
              << "view " << v << " feature " << j << " row " << r;
          present += s == FeatureStatus::kPresent;
          null_value += s == FeatureStatus::kNullValue;
          old += s == FeatureStatus::kOutsideMaxAge;
          missing += s == FeatureStatus::kNotFound;
        }
      }
    }
    EXPECT_GT(present, 0u);
    EXPECT_GT(null_value, 0u);
    EXPECT_GT(old, 0u);
    EXPECT_GT(missing, 0u);
  }

  // Below the size it is worth it, the read stays on the caller.
  OnlineReadRequest small;
  small.views.push_back(MakeViewRead(every, {{Value(int64_t{1})}, {Value(int64_t{2})}}));
  ForkJoinPool pool(1);
  small.split = &pool;
  EXPECT_EQ(store_->Read(small).ValueOrDie().status(0, 0, 1), FeatureStatus::kPresent);
  EXPECT_EQ(pool.jobs_offered(), 0u);
}

constexpr int64_t kMiB = int64_t{1} << 20;

// A server keeps RocksDB's fixed sizes; a batch run's budget sizes the block cache (a quarter)
// and each of the two write buffers (an eighth), between floors and the server's sizes.
TEST(RocksDbStoreMemory, ABudgetSizesTheBlockCacheAndWriteBuffersBetweenFloorsAndDefaults) {
  const RocksDbOnlineStore::Options server;
  EXPECT_EQ(static_cast<int64_t>(server.block_cache_bytes), 256 * kMiB);
  EXPECT_EQ(static_cast<int64_t>(server.write_buffer_bytes), 64 * kMiB);
  struct Case {
    int64_t budget, cache, write_buffer;
  };
  for (const Case& c :
       {Case{0, 8 * kMiB, 4 * kMiB}, Case{16 * kMiB, 8 * kMiB, 4 * kMiB},
        Case{64 * kMiB, 16 * kMiB, 8 * kMiB}, Case{512 * kMiB, 128 * kMiB, 64 * kMiB},
        Case{1024 * kMiB, 256 * kMiB, 64 * kMiB}, Case{8192 * kMiB, 256 * kMiB, 64 * kMiB}}) {
    const auto o = RocksDbOnlineStore::ForMemoryBudget(c.budget);
    EXPECT_EQ(static_cast<int64_t>(o.block_cache_bytes), c.cache) << "budget " << c.budget;
    EXPECT_EQ(static_cast<int64_t>(o.write_buffer_bytes), c.write_buffer) << "budget " << c.budget;
    EXPECT_FALSE(o.read_only);
  }
}

// What RocksDB itself runs with, not what was asked: the server's store and a 64 MiB run's.
TEST_F(RocksDbStoreTest, TheStoreRunsWithTheSizesItWasOpenedWith) {
  const auto server = store_->Memory().ValueOrDie();
  EXPECT_EQ(server.block_cache_capacity, 256 * kMiB);
  EXPECT_EQ(server.write_buffer_bytes, 64 * kMiB);
  EXPECT_EQ(server.max_write_buffers, RocksDbOnlineStore::kWriteBuffers);
  EXPECT_EQ(server.level0_compaction_files, 4);
  store_.reset();
  auto run = RocksDbOnlineStore::Open(dir_.path() / "online",
                                      RocksDbOnlineStore::ForMemoryBudget(64 * kMiB));
  ASSERT_TRUE(run.ok()) << run.status().ToString();
  const auto sized = (*run)->Memory().ValueOrDie();
  EXPECT_EQ(sized.block_cache_capacity, 16 * kMiB);
  EXPECT_EQ(sized.write_buffer_bytes, 8 * kMiB);
  EXPECT_EQ(sized.max_write_buffers, RocksDbOnlineStore::kWriteBuffers);
  EXPECT_EQ(sized.level0_compaction_files, 32);  // 32 x 8 MiB: as many bytes as 4 x 64 MiB
}

// Writes several times the write buffers hold: RocksDB flushes (and stalls writes while both
// are full), so the memtables never hold much more than two buffers; a server's 64 MiB buffers
// would have held all of it.
TEST_F(RocksDbStoreTest, MemtablesOfABudgetedStoreStayWithinTheirWriteBuffers) {
  store_.reset();
  auto options = RocksDbOnlineStore::ForMemoryBudget(16 * kMiB);  // write buffers of 4 MiB
  options.clock = &clock_;
  auto opened = RocksDbOnlineStore::Open(dir_.path() / "online", options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& store = *opened;
  auto view = layouts_.at("bay_stats");
  const std::string padding(200, 'x');  // long keys: about 24 MiB written in all
  int64_t most = 0, written = 0;
  for (int chunk = 0; chunk < 10; ++chunk) {
    std::vector<Row> rows;
    for (int i = 0; i < 10'000; ++i) {
      rows.push_back(
          {{Value(fmt::format("{}-{}-{}", padding, chunk, i))}, kT0, {}, {Value(i / 7.0)}});
    }
    written += store->WriteBatch(*view, *MakeRows(*view, rows)).ValueOrDie().written;
    most = std::max(most, store->Memory().ValueOrDie().memtables);
  }
  EXPECT_EQ(written, 100'000);
  EXPECT_GT(most, 0);
  EXPECT_LE(most, 3 * 4 * kMiB) << "memtables held " << most << " bytes";
}

// The factory: a batch run's budget sizes the store it opens and says so; a server (no budget)
// and a read-only reader keep the defaults.
TEST(RocksDbStoreMemory, OpenOnlineStoreSizesTheEmbeddedStoreFromABatchRunsBudget) {
  TempDir dir = TempDir::Make("granary_rocks_budget_").ValueOrDie();
  RepoConfig config;
  config.root = dir.path();
  config.project = "p";
  config.online_store.path = "online";
  auto capacity = [&](const OnlineStoreOptions& options) {
    auto store = OpenOnlineStore(config, options).ValueOrDie();
    auto* rocks = dynamic_cast<RocksDbOnlineStore*>(store.get());
    EXPECT_NE(rocks, nullptr);
    if (rocks == nullptr) return std::pair<int64_t, int64_t>(-1, -1);
    auto use = rocks->Memory().ValueOrDie();
    return std::pair(use.block_cache_capacity, use.write_buffer_bytes);
  };
  OnlineStoreOptions run;
  run.memory_budget_bytes = 64 * kMiB;
  EXPECT_EQ(capacity(run), std::pair(16 * kMiB, 8 * kMiB));
  EXPECT_EQ(DescribeOnlineStoreMemory(config, run),
            "RocksDB block cache 16 MiB and write buffers 2 x 8 MiB, sized from the memory "
            "budget");
  EXPECT_EQ(capacity({}), std::pair(256 * kMiB, 64 * kMiB));
  EXPECT_EQ(DescribeOnlineStoreMemory(config, {}), "");
  OnlineStoreOptions reader = run;
  reader.read_only = true;
  EXPECT_EQ(DescribeOnlineStoreMemory(config, reader), "");
  config.online_store.type = "redis";
  EXPECT_EQ(DescribeOnlineStoreMemory(config, run), "");
}

}  // namespace
}  // namespace granary
