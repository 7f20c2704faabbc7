// RocksDB bulk loading (rocksdb_bulk_load.cc): when a load may run, that it reads as WriteBatch
// of the same rows would, and that a newer value written meanwhile survives.
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <thread>

#include "granary/common/temp_dir.h"
#include "granary/online/rocksdb/rocksdb_store.h"
#include "granary/testing/online_definitions.h"

namespace granary {
namespace {

using testing::MakeRows;
using testing::MakeViewRead;
using testing::Row;

const Timestamp kT0 = Timestamp::FromSeconds(1'800'000'000);

class RocksDbBulkLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    defs_ = testing::OnlineDefinitions();
    layouts_ = MakeViewLayouts(defs_, Duration::Days(90)).ValueOrDie();
    risk_ = layouts_.at("risk");
    Reopen();
  }
  void Reopen() {
    store_.reset();
    RocksDbOnlineStore::Options options;
    options.clock = &clock_;
    auto store = RocksDbOnlineStore::Open(dir_.path() / "online", options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
  }
  // risk rows for customers ids, all at `event` with score `score`.
  std::shared_ptr<arrow::RecordBatch> RiskRows(const std::vector<int64_t>& ids, Timestamp event,
                                               double score) {
    std::vector<Row> rows;
    for (int64_t id : ids) rows.push_back(Row{{Value(id)}, event, {}, {Value(score), Value(id)}});
    return MakeRows(*risk_, rows);
  }
  static std::vector<int64_t> Ids(int64_t first, int64_t last) {
    std::vector<int64_t> ids;
    for (int64_t id = first; id <= last; ++id) ids.push_back(id);
    return ids;
  }
  // The stored score of each customer; NaN where none is present.
  std::vector<double> Scores(const std::vector<int64_t>& ids) {
    std::vector<std::vector<Value>> keys;
    for (int64_t id : ids) keys.push_back({Value(id)});
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(risk_, keys));
    OnlineFeatures read = store_->Read(request).ValueOrDie();
    std::vector<double> scores;
    for (size_t r = 0; r < ids.size(); ++r) {
      scores.push_back(read.status(0, 0, r) == FeatureStatus::kPresent
                           ? read.value(0, 0, r).AsFloat64()
                           : std::nan(""));
    }
    return scores;
  }
  std::unique_ptr<OnlineBulkLoad> Start(const ViewLayout& view, int64_t sort_buffer_bytes) {
    BulkLoadOptions options;
    options.sort_buffer_bytes = sort_buffer_bytes;
    auto load = store_->StartBulkLoad(view, options);
    EXPECT_TRUE(load.ok()) << load.status().ToString();
    return load.ok() ? std::move(*load) : nullptr;
  }
  bool BulkFilesLeft() {
    for (const auto& entry : std::filesystem::directory_iterator(dir_.path() / "online")) {
      if (entry.path().filename().string().starts_with("bulk-")) return true;
    }
    return false;
  }

  TempDir dir_ = TempDir::Make("granary_bulk_").ValueOrDie();
  Definitions defs_;
  ViewLayouts layouts_;
  std::shared_ptr<const ViewLayout> risk_;
  ManualClock clock_{kT0};
  std::unique_ptr<RocksDbOnlineStore> store_;
};

// One sorted file (a buffer that holds every row), and several runs merged at Finish (a buffer
// of 4 KiB, smaller than one batch).
class RocksDbBulkLoadBuffers : public RocksDbBulkLoadTest,
                               public ::testing::WithParamInterface<int64_t> {};

TEST_P(RocksDbBulkLoadBuffers, AFreshStoreLoadsAsWriteBatchWouldKeepingTheNewestOfEachEntity) {
  auto load = Start(*risk_, GetParam());
  ASSERT_NE(load, nullptr);
  // Customers 1-300 at T-10m; 1-100 again, older (T-20m); 201-300 again, newer (T-5m); in
  // shuffled batches, so that rows of one entity meet in one buffer and across runs.
  std::vector<int64_t> ids = Ids(1, 300);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(7));
  for (size_t b = 0; b < ids.size(); b += 75) {
    std::vector<int64_t> part(ids.begin() + b, ids.begin() + b + 75);
    EXPECT_EQ(load->Add(*RiskRows(part, kT0 - Duration::Minutes(10), 1.0)).ValueOrDie(), 75);
  }
  EXPECT_EQ(load->Add(*RiskRows(Ids(1, 100), kT0 - Duration::Minutes(20), 2.0)).ValueOrDie(), 100);
  EXPECT_EQ(load->Add(*RiskRows(Ids(201, 300), kT0 - Duration::Minutes(5), 3.0)).ValueOrDie(), 100);
  EXPECT_TRUE(std::isnan(Scores({1})[0])) << "nothing is visible before Finish";
  auto stats = load->Finish();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->written, 300);
  EXPECT_EQ(stats->skipped_older, 200);
  load.reset();
  std::vector<double> scores = Scores(Ids(1, 300));
  for (int64_t id = 1; id <= 300; ++id) {
    ASSERT_EQ(scores[id - 1], id > 200 ? 3.0 : 1.0) << "customer " << id;
  }
  EXPECT_FALSE(BulkFilesLeft());
  // The view holds records now: no second load, and writes compare with what was loaded.
  EXPECT_EQ(Start(*risk_, GetParam()), nullptr);
  auto older = store_->WriteBatch(*risk_, *RiskRows({5}, kT0 - Duration::Minutes(30), 9.0));
  EXPECT_EQ(older.ValueOrDie().skipped_older, 1);
  auto newer = store_->WriteBatch(*risk_, *RiskRows({6}, kT0, 9.0));
  EXPECT_EQ(newer.ValueOrDie().written, 1);
  EXPECT_EQ(Scores({5, 6}), (std::vector<double>{1.0, 9.0}));
  // Reopened: the loaded files are part of the store.
  Reopen();
  EXPECT_EQ(Scores({1, 300}), (std::vector<double>{1.0, 3.0}));
}

INSTANTIATE_TEST_SUITE_P(SortBuffer, RocksDbBulkLoadBuffers,
                         ::testing::Values(int64_t{64} << 20, int64_t{4} << 10));

TEST_F(RocksDbBulkLoadTest, ALargeLoadWrittenByTwoThreadsHoldsEveryEntityOnce) {
  // 120,000 rows in one buffer: the final files are built by two threads, one per half.
  auto load = Start(*risk_, int64_t{256} << 20);
  ASSERT_NE(load, nullptr);
  for (int64_t first = 1; first <= 120'000; first += 10'000) {
    ASSERT_TRUE(load->Add(*RiskRows(Ids(first, first + 9'999), kT0, 0.5)).ok());
  }
  // One entity twice, the newer row added last.
  ASSERT_TRUE(load->Add(*RiskRows({1}, kT0 + Duration::Seconds(1), 2.0)).ok());
  auto stats = load->Finish();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->written, 120'000);
  EXPECT_EQ(stats->skipped_older, 1);
  EXPECT_EQ(store_->CompactAndCount().ValueOrDie(), 120'000);
  EXPECT_EQ(Scores({1, 2, 60'000, 60'001, 119'999, 120'000}),
            (std::vector<double>{2.0, 0.5, 0.5, 0.5, 0.5, 0.5}));
}

TEST_F(RocksDbBulkLoadTest, WritersThatFillBuffersFasterThanRunsAreWrittenWaitAndLoseNothing) {
  // Four writers at once into a sort buffer of 64 KiB (a buffer full every few batches): a writer
  // that fills one while the previous run is being written waits for it. Each writer adds every
  // entity of its quarter twice, the newer row second; every entity is loaded once, the newer.
  auto load = Start(*risk_, int64_t{64} << 10);
  ASSERT_NE(load, nullptr);
  constexpr int64_t kPerWriter = 6'000;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      const int64_t first = 1 + w * kPerWriter;
      for (int round = 0; round < 2; ++round) {
        for (int64_t at = first; at < first + kPerWriter; at += 500) {
          auto rows = RiskRows(Ids(at, at + 499), kT0 - Duration::Minutes(10 - round), round);
          if (!load->Add(*rows).ok()) failures.fetch_add(1);
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto stats = load->Finish();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->written, 4 * kPerWriter);
  EXPECT_EQ(stats->skipped_older, 4 * kPerWriter);
  load.reset();
  EXPECT_EQ(store_->CompactAndCount().ValueOrDie(), 4 * kPerWriter);
  std::vector<double> scores = Scores(Ids(1, 4 * kPerWriter));
  EXPECT_EQ(std::count(scores.begin(), scores.end(), 1.0), 4 * kPerWriter);
  EXPECT_FALSE(BulkFilesLeft());
}

// String keys of every length around the sort's 16-byte prefix, many sharing their first bytes:
// the files are written in RocksDB's key order (SstFileWriter refuses any other) and each bay
// reads back its newest row, from one buffer and from merged runs.
TEST_P(RocksDbBulkLoadBuffers, StringKeysLongerAndShorterThanTheSortPrefixLoadInKeyOrder) {
  auto view = layouts_.at("bay_stats");
  std::mt19937_64 rng(5);
  std::vector<std::string> bays;
  for (int i = 0; i < 1'500; ++i) {
    std::string id(1 + rng() % 40, 'b');
    for (size_t c = id.size() / 2; c < id.size(); ++c) id[c] = static_cast<char>('a' + rng() % 3);
    bays.push_back(id);
  }
  std::sort(bays.begin(), bays.end());
  bays.erase(std::unique(bays.begin(), bays.end()), bays.end());
  std::shuffle(bays.begin(), bays.end(), rng);
  auto rows = [&](size_t first, size_t last, Timestamp event, double offset) {
    std::vector<Row> out;
    for (size_t i = first; i < last; ++i) {
      out.push_back(Row{{Value(bays[i])}, event, {}, {Value(offset + static_cast<double>(i))}});
    }
    return MakeRows(*view, out);
  };
  auto load = Start(*view, GetParam());
  ASSERT_NE(load, nullptr);
  const size_t half = bays.size() / 2;
  ASSERT_TRUE(load->Add(*rows(0, bays.size(), kT0 - Duration::Minutes(10), 0.0)).ok());
  // The first half again: older rows (ignored), then newer ones (kept).
  ASSERT_TRUE(load->Add(*rows(0, half, kT0 - Duration::Minutes(20), 10'000.0)).ok());
  ASSERT_TRUE(load->Add(*rows(0, half, kT0 - Duration::Minutes(5), 20'000.0)).ok());
  auto stats = load->Finish();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->written, static_cast<int64_t>(bays.size()));
  EXPECT_EQ(stats->skipped_older, static_cast<int64_t>(2 * half));
  load.reset();
  std::vector<std::vector<Value>> keys;
  for (const std::string& bay : bays) keys.push_back({Value(bay)});
  OnlineReadRequest request;
  request.views.push_back(MakeViewRead(view, keys));
  OnlineFeatures read = store_->Read(request).ValueOrDie();
  for (size_t i = 0; i < bays.size(); ++i) {
    ASSERT_EQ(read.status(0, 0, i), FeatureStatus::kPresent) << bays[i];
    EXPECT_EQ(read.value(0, 0, i).AsFloat64(), (i < half ? 20'000.0 : 0.0) + static_cast<double>(i))
        << bays[i];
  }
  EXPECT_EQ(store_->CompactAndCount().ValueOrDie(), static_cast<int64_t>(bays.size()));
}

// The final files are LZ4 when a sample of their blocks compresses, uncompressed when it does not
// (sst_compression.h); either way they read back the same.
TEST_F(RocksDbBulkLoadTest, FinalFilesAreCompressedOnlyWhenTheirBlocksCompress) {
  auto view = layouts_.at("every_type");
  for (bool random : {false, true}) {
    SCOPED_TRACE(random ? "random floats" : "zeros");
    dir_ = TempDir::Make("granary_bulk_").ValueOrDie();
    Reopen();
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    std::vector<Row> rows;
    for (int64_t id = 1; id <= 2'000; ++id) {
      std::vector<double> list(50);
      for (double& x : list) x = random ? uniform(rng) : 0.0;
      std::vector<Value> features(view->features().size());
      features[12] = Value(list);  // l_float64
      rows.push_back(Row{{Value(id)}, kT0, {}, features});
    }
    auto load = Start(*view, int64_t{64} << 20);
    ASSERT_NE(load, nullptr);
    ASSERT_TRUE(load->Add(*MakeRows(*view, rows)).ok());
    auto stats = load->Finish();
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->written, 2'000);
    load.reset();
    // Read back through the store: the last row's list as written.
    OnlineReadRequest request;
    request.views.push_back(MakeViewRead(view, {{Value(int64_t{2'000})}}));
    OnlineFeatures read = store_->Read(request).ValueOrDie();
    ASSERT_EQ(read.status(0, 12, 0), FeatureStatus::kPresent);
    EXPECT_EQ(read.value(0, 12, 0).ToValue(), rows.back().features[12]);
    store_.reset();
    // The ingested files' compression, as RocksDB recorded it.
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::OpenForReadOnly(rocksdb::Options(), (dir_.path() / "online").string(), &raw)
            .ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::TablePropertiesCollection tables;
    ASSERT_TRUE(db->GetPropertiesOfAllTables(&tables).ok());
    ASSERT_FALSE(tables.empty());
    for (const auto& [file, properties] : tables) {
      EXPECT_EQ(properties->compression_name, random ? "NoCompression" : "LZ4") << file;
    }
  }
}

TEST_F(RocksDbBulkLoadTest, ANewerValueWrittenDuringTheLoadSurvivesIt) {
  auto load = Start(*risk_, 4 << 10);
  ASSERT_NE(load, nullptr);
  ASSERT_TRUE(load->Add(*RiskRows(Ids(1, 50), kT0 - Duration::Minutes(10), 1.0)).ok());
  // A push meanwhile: customer 7 newer than the load's row, customer 8 older.
  ASSERT_EQ(store_->WriteBatch(*risk_, *RiskRows({7}, kT0 - Duration::Minutes(1), 7.0))
                .ValueOrDie()
                .written,
            1);
  ASSERT_EQ(store_->WriteBatch(*risk_, *RiskRows({8}, kT0 - Duration::Minutes(30), 8.0))
                .ValueOrDie()
                .written,
            1);
  ASSERT_TRUE(load->Add(*RiskRows(Ids(51, 60), kT0 - Duration::Minutes(10), 1.0)).ok());
  auto stats = load->Finish();
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->written, 59);
  EXPECT_EQ(stats->skipped_older, 1);
  std::vector<double> scores = Scores(Ids(1, 60));
  for (int64_t id = 1; id <= 60; ++id) {
    ASSERT_EQ(scores[id - 1], id == 7 ? 7.0 : 1.0) << "customer " << id;
  }
}

TEST_F(RocksDbBulkLoadTest, OnlyViewsKnownToHoldNothingAreBulkLoaded) {
  auto every_type = layouts_.at("every_type");
  ASSERT_TRUE(store_->WriteBatch(*risk_, *RiskRows({1}, kT0, 1.0)).ok());
  // This process wrote risk, not every_type.
  EXPECT_EQ(Start(*risk_, 1 << 20), nullptr);
  auto other = Start(*every_type, 1 << 20);
  EXPECT_NE(other, nullptr);
  EXPECT_EQ(Start(*every_type, 1 << 20), nullptr) << "one load of a view at a time";
  other.reset();
  // Opened on a store that holds entity records, no process knows what is in it.
  Reopen();
  EXPECT_EQ(Start(*layouts_.at("bay_stats"), 1 << 20), nullptr);
  // A read-only store writes nothing.
  RocksDbOnlineStore::Options options;
  options.read_only = true;
  auto reader = RocksDbOnlineStore::Open(dir_.path() / "online", options).ValueOrDie();
  EXPECT_EQ(reader->StartBulkLoad(*every_type, {}).ValueOrDie(), nullptr);
}

TEST_F(RocksDbBulkLoadTest, ALoadDroppedWithoutFinishLeavesNothing) {
  {
    auto load = Start(*risk_, 4 << 10);
    ASSERT_NE(load, nullptr);
    ASSERT_TRUE(load->Add(*RiskRows(Ids(1, 200), kT0, 1.0)).ok());
    EXPECT_TRUE(BulkFilesLeft());
  }
  EXPECT_FALSE(BulkFilesLeft());
  EXPECT_TRUE(std::isnan(Scores({1})[0]));
  // The files of a load cut off (kill -9) go at the next open.
  std::filesystem::create_directories(dir_.path() / "online" / "bulk-cutoff" / "x");
  Reopen();
  EXPECT_FALSE(BulkFilesLeft());
  // Nothing was stored, so a new process may load the view.
  EXPECT_NE(Start(*risk_, 1 << 20), nullptr);
}

}  // namespace
}  // namespace granary
