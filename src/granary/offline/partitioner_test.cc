// The two building blocks materialization needs, used together as it will: a pruned scan of a
// view's source over [start, end], partitioned by entity with a tiny budget (so it spills), then
// the latest row per entity computed one partition at a time.
#include "granary/offline/partitioner.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <map>
#include <optional>
#include <random>

#include "granary/common/temp_dir.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/source_scan.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

TEST(EntityPartitioner, LatestRowPerEntityOverAPrunedScanInBoundedMemory) {
  auto dir = TempDir::Make("granary-latest-").ValueOrDie();
  std::filesystem::create_directories(dir.path() / "src");
  std::mt19937_64 rng(7);
  const int64_t hour = 3'600'000'000LL;
  // Brute force: entity -> (event time, value) of its latest row in [start, end].
  const int64_t start = 100 * hour, end = 300 * hour;
  std::map<int64_t, std::pair<int64_t, int64_t>> latest;
  for (int file = 0; file < 4; ++file) {
    arrow::Int64Builder ids, values;
    arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                               arrow::default_memory_pool());
    for (int i = 0; i < 5000; ++i) {
      const int64_t id = static_cast<int64_t>(rng() % 3000);
      // Each file in time order (as pipelines append), so row groups can be pruned.
      const int64_t t = (i * 400 / 5000) * hour + file;
      const int64_t value = file * 100000 + i;
      (void)ids.Append(id);
      (void)ts.Append(t);
      (void)values.Append(value);
      if (t >= start && t <= end && (!latest.count(id) || latest[id].first < t)) {
        latest[id] = {t, value};
      }
    }
    auto table = arrow::Table::Make(
        arrow::schema({arrow::field("entity_id", arrow::int64()),
                       arrow::field("event_timestamp", ts.type()),
                       arrow::field("value", arrow::int64())}),
        {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), values.Finish().ValueOrDie()});
    auto out = arrow::io::FileOutputStream::Open(
                   (dir.path() / "src" / ("part-" + std::to_string(file) + ".parquet")).string())
                   .ValueOrDie();
    ASSERT_TRUE(parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), out, 500).ok());
    ASSERT_TRUE(out->Close().ok());
  }
  Definitions defs;
  Entity entity;
  entity.name = "thing";
  entity.join_keys = {"entity_id"};
  entity.join_key_types = {ValueType::Scalar(ScalarType::kInt64)};
  defs.entities.push_back(entity);
  DataSource source;
  source.name = "src";
  source.path = "src";
  source.timestamp_field = "event_timestamp";
  defs.data_sources.push_back(source);
  FeatureView view;
  view.name = "v";
  view.entities = {"thing"};
  view.source = "src";
  view.schema.push_back(Field{"value", ValueType::Scalar(ScalarType::kInt64), "", {}});
  defs.feature_views.push_back(view);

  SourceScanOptions options;
  options.start = Timestamp::FromMicros(start);
  options.end = Timestamp::FromMicros(end);
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], options);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  PartitionerOptions popts;
  popts.num_partitions = 16;
  popts.memory_budget_bytes = 64 * 1024;
  auto partitioner =
      EntityPartitioner::Make((*scan)->schema(), (*scan)->join_keys(), popts).ValueOrDie();
  while (true) {
    auto batch = (*scan)->Next();
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (*batch == nullptr) break;
    ASSERT_TRUE(partitioner->Append(*batch).ok());
    EXPECT_LE(partitioner->stats().bytes_in_memory, popts.memory_budget_bytes);
  }
  ASSERT_TRUE(partitioner->Finish().ok());
  EXPECT_EQ((*scan)->stats().row_groups_pruned, 4 * 4);  // per file: hours 0-79 and 320-399
  EXPECT_GT(partitioner->stats().bytes_spilled, 0);

  std::map<int64_t, std::pair<int64_t, int64_t>> computed;
  for (int p = 0; p < partitioner->num_partitions(); ++p) {
    auto table = partitioner->ReadPartition(p).ValueOrDie();
    partitioner->Release(p);
    auto ids = table->GetColumnByName("entity_id")->chunks();
    auto ts = table->GetColumnByName("event_timestamp")->chunks();
    auto values = table->GetColumnByName("value")->chunks();
    for (size_t c = 0; c < ids.size(); ++c) {
      for (int64_t i = 0; i < ids[c]->length(); ++i) {
        const int64_t id = static_cast<const arrow::Int64Array&>(*ids[c]).Value(i);
        const int64_t t = static_cast<const arrow::TimestampArray&>(*ts[c]).Value(i);
        const int64_t v = static_cast<const arrow::Int64Array&>(*values[c]).Value(i);
        if (!computed.count(id) || computed[id].first < t) computed[id] = {t, v};
      }
    }
  }
  EXPECT_EQ(computed, latest);
}

// The window join plans thousands of partitions at the seed's scale: small batches are gathered
// and split together (pieces of many rows, not a handful), spilled partitions share one file a
// group of partitions (32 files, not 3,000), and every row comes back in its partition, in order;
// the files go with the last of their partitions' releases.
TEST(EntityPartitioner, ThreeThousandPartitionsGatherSmallBatchesAndSpillSoundly) {
  auto dir = TempDir::Make("granary-many-").ValueOrDie();
  const int parts = 3000;
  ASSERT_EQ(MaxSpillPartitions(parts), parts);
  auto schema = arrow::schema(
      {arrow::field("entity_id", arrow::int64()), arrow::field("seq", arrow::int64())});
  PartitionerOptions options;
  options.num_partitions = parts;
  options.memory_budget_bytes = int64_t{4} << 20;  // gathers 1 MiB, spills past 4 MiB
  options.spill_parent = dir.path();
  auto partitioner = EntityPartitioner::Make(schema, {"entity_id"}, options).ValueOrDie();
  std::mt19937_64 rng(11);
  const int64_t batches = 400, rows_per_batch = 1000;
  for (int64_t b = 0; b < batches; ++b) {
    arrow::Int64Builder ids, seq;
    for (int64_t i = 0; i < rows_per_batch; ++i) {
      ASSERT_TRUE(ids.Append(static_cast<int64_t>(rng() % 20000)).ok());
      ASSERT_TRUE(seq.Append(b * rows_per_batch + i).ok());
    }
    auto batch = arrow::RecordBatch::Make(schema, rows_per_batch,
                                          {ids.Finish().ValueOrDie(), seq.Finish().ValueOrDie()});
    ASSERT_TRUE(partitioner->Append(batch).ok());
  }
  ASSERT_TRUE(partitioner->Finish().ok());
  EXPECT_GT(partitioner->stats().bytes_spilled, 0);
  auto spill_files = [&] {
    int files = 0;
    for (const auto& folder : std::filesystem::directory_iterator(dir.path())) {
      for (const auto& file : std::filesystem::directory_iterator(folder.path())) {
        files += file.path().extension() == ".arrows" ? 1 : 0;
      }
    }
    return files;
  };
  EXPECT_GT(spill_files(), 0);
  EXPECT_LE(spill_files(), 32);
  // The budget, plus at most one gathered split past it before the spill.
  EXPECT_LE(partitioner->stats().peak_bytes_in_memory, options.memory_budget_bytes * 3 / 2);
  int64_t total = 0, chunks = 0;
  for (int p = 0; p < parts; ++p) {
    auto table = partitioner->ReadPartition(p).ValueOrDie();
    partitioner->Release(p);
    if (table->num_rows() == 0) continue;
    total += table->num_rows();
    chunks += table->column(0)->num_chunks();
    auto seq = arrow::Concatenate(table->column(1)->chunks()).ValueOrDie();
    auto ids = arrow::Concatenate(table->column(0)->chunks()).ValueOrDie();
    const auto& s = static_cast<const arrow::Int64Array&>(*seq);
    std::vector<uint64_t> hashes(table->num_rows());
    KeyColumns::Make({ids}).ValueOrDie().HashRows(hashes.data());
    for (int64_t i = 0; i < table->num_rows(); ++i) {
      ASSERT_EQ(EntityPartitioner::PartitionOf(hashes[i], parts), p);
      if (i > 0) {
        ASSERT_LT(s.Value(i - 1), s.Value(i)) << "partition " << p;
      }
    }
  }
  EXPECT_EQ(total, batches * rows_per_batch);
  EXPECT_EQ(spill_files(), 0);
  // Without gathering, each 1,000-row batch would leave a piece in about 850 partitions.
  EXPECT_LT(chunks, batches * 850 / 10);
}

// Rows of four types (null keys, strings, bools and doubles with nulls) partitioned twice: under
// a budget that spills and under one that does not. Each split sorts a batch once per group of
// partitions and each partition keeps its range of its group's batch; a spill writes a
// partition's ranges as one message, so a spilled partition comes back as one chunk a spill, then
// its ranges still in memory (at most the budget's worth after Finish).
TEST(EntityPartitioner, RangesOfSortedBatchesSpillAsOneMessageAPartitionWithEveryTypeIntact) {
  auto schema = arrow::schema(
      {arrow::field("id", arrow::int64()), arrow::field("name", arrow::utf8()),
       arrow::field("flag", arrow::boolean()), arrow::field("value", arrow::float64())});
  const int parts = 64;
  const int64_t batches = 120, rows_per_batch = 700;
  std::vector<std::shared_ptr<arrow::RecordBatch>> input;
  for (int64_t b = 0; b < batches; ++b) {
    arrow::Int64Builder ids;
    arrow::StringBuilder names;
    arrow::BooleanBuilder flags;
    arrow::DoubleBuilder values;
    for (int64_t i = 0; i < rows_per_batch; ++i) {
      const int64_t r = b * rows_per_batch + i;
      ASSERT_TRUE((r % 97 == 0 ? ids.AppendNull() : ids.Append((r * 7919) % 5003)).ok());
      ASSERT_TRUE(
          (r % 13 == 0 ? names.AppendNull() : names.Append("row-" + std::to_string(r))).ok());
      ASSERT_TRUE((r % 11 == 0 ? flags.AppendNull() : flags.Append(r % 3 == 0)).ok());
      ASSERT_TRUE((r % 17 == 0 ? values.AppendNull() : values.Append(r * 0.5)).ok());
    }
    input.push_back(
        arrow::RecordBatch::Make(schema, rows_per_batch,
                                 {ids.Finish().ValueOrDie(), names.Finish().ValueOrDie(),
                                  flags.Finish().ValueOrDie(), values.Finish().ValueOrDie()}));
  }
  // Each partition's rows in append order, from the whole input.
  auto all =
      arrow::Table::FromRecordBatches(schema, input).ValueOrDie()->CombineChunks().ValueOrDie();
  auto all_ids = all->column(0)->chunk(0);
  std::vector<uint64_t> hashes(all->num_rows());
  auto keys = KeyColumns::Make({all_ids}).ValueOrDie();
  keys.HashRows(hashes.data());
  std::vector<std::vector<int64_t>> expected_rows(parts);
  for (int64_t r = 0; r < all->num_rows(); ++r) {
    expected_rows[keys.IsNull(r) ? 0 : EntityPartitioner::PartitionOf(hashes[r], parts)].push_back(
        r);
  }
  auto expected = [&](int p) {
    arrow::Int64Builder take;
    EXPECT_TRUE(take.AppendValues(expected_rows[p]).ok());
    auto batch = all->CombineChunksToBatch().ValueOrDie();
    return arrow::compute::Take(batch, take.Finish().ValueOrDie()).ValueOrDie().record_batch();
  };

  auto dir = TempDir::Make("granary-ranges-").ValueOrDie();
  for (const int64_t budget : {int64_t{256} << 10, int64_t{64} << 20}) {
    SCOPED_TRACE("budget " + std::to_string(budget));
    PartitionerOptions options;
    options.num_partitions = parts;
    options.memory_budget_bytes = budget;
    options.spill_parent = dir.path();
    auto partitioner = EntityPartitioner::Make(schema, {"id"}, options).ValueOrDie();
    for (const auto& batch : input) ASSERT_TRUE(partitioner->Append(batch).ok());
    ASSERT_TRUE(partitioner->Finish().ok());
    const bool spilled = budget < (int64_t{1} << 20);
    EXPECT_EQ(partitioner->stats().bytes_spilled > 0, spilled);
    EXPECT_EQ(partitioner->stats().rows, batches * rows_per_batch);
    if (spilled) {
      EXPECT_GT(partitioner->stats().bytes_in_memory, 0);
      EXPECT_LE(partitioner->stats().bytes_in_memory, budget);
      EXPECT_LE(partitioner->stats().peak_bytes_in_memory, budget * 3 / 2);
    }
    int64_t chunks = 0;
    for (int p = 0; p < parts; ++p) {
      auto table = partitioner->ReadPartition(p).ValueOrDie();
      chunks += table->column(0)->num_chunks();
      auto got = table->CombineChunksToBatch().ValueOrDie();
      auto want = expected(p);
      ASSERT_TRUE(got->Equals(*want)) << "partition " << p << "\n"
                                      << got->ToString().substr(0, 2000) << "\nwanted\n"
                                      << want->ToString().substr(0, 2000);
    }
    // A message a spill and partition (the spill file), then a range a split (in memory).
    if (spilled) {
      EXPECT_GT(chunks, partitioner->stats().spills);
    }
    for (int p = 0; p < parts; ++p) partitioner->Release(p);
    EXPECT_EQ(partitioner->stats().bytes_in_memory, 0);
  }
}

// A partition's spill larger than the spill files' write buffer (4 MiB) is written in pieces and
// read back whole.
TEST(EntityPartitioner, ASpillLargerThanTheWriteBufferReadsBackWhole) {
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("text", arrow::utf8())});
  const int64_t rows = 60000;
  arrow::Int64Builder ids;
  arrow::StringBuilder texts;
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_TRUE(ids.Append(r % 1000).ok());
    ASSERT_TRUE(texts.Append(std::string(100, static_cast<char>('a' + r % 26))).ok());
  }
  auto batch = arrow::RecordBatch::Make(schema, rows,
                                        {ids.Finish().ValueOrDie(), texts.Finish().ValueOrDie()});
  ASSERT_GT(BatchBytes(*batch), int64_t{4} << 20);
  auto dir = TempDir::Make("granary-big-spill-").ValueOrDie();
  PartitionerOptions options;
  options.num_partitions = 1;
  options.memory_budget_bytes = int64_t{1} << 20;
  options.spill_parent = dir.path();
  auto partitioner = EntityPartitioner::Make(schema, {"id"}, options).ValueOrDie();
  ASSERT_TRUE(partitioner->Append(batch).ok());
  ASSERT_TRUE(partitioner->Append(batch->Slice(0, 10)).ok());
  ASSERT_TRUE(partitioner->Finish().ok());
  EXPECT_EQ(partitioner->stats().spills, 2);
  auto table = partitioner->ReadPartition(0).ValueOrDie();
  ASSERT_EQ(table->num_rows(), rows + 10);
  auto got = table->CombineChunksToBatch().ValueOrDie();
  EXPECT_TRUE(got->Slice(0, rows)->Equals(*batch));
  EXPECT_TRUE(got->Slice(rows)->Equals(*batch->Slice(0, 10)));
}

// Random rows (null keys, strings of random lengths) in batches of random sizes, partitioned
// under budgets from a small fraction of the input to more than all of it, into 1 to 3,000
// partitions. A spill writes only groups of partitions, so what it writes must be freed and what
// stays must be within the budget: after every Append the partitioner counts at most the budget,
// and the Arrow memory allocated meanwhile (the test's own rows are plain vectors, each batch
// dropped once appended) is no more than what it counts, within padding. Every partition then
// holds exactly its rows in append order, spilled or not, and releasing all frees everything.
TEST(EntityPartitioner, PartialSpillsKeepTheBudgetAndGiveTheSamePartitions) {
  const uint64_t seed = testing::TestSeed();
  auto dir = TempDir::Make("granary-partial-").ValueOrDie();
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("seq", arrow::int64()),
                     arrow::field("text", arrow::utf8())});
  arrow::MemoryPool* pool = arrow::default_memory_pool();
  for (int round = 0; round < 8; ++round) {
    SCOPED_TRACE(testing::SeedTrace(seed + round));
    std::mt19937_64 rng(seed + round);
    const int parts_choices[] = {1, 2, 7, 32, 33, 300, 3000};
    const int parts = parts_choices[rng() % 7];
    const int64_t rows = 20000 + static_cast<int64_t>(rng() % 40000);
    const int64_t keys = 1 + static_cast<int64_t>(rng() % 5000);
    std::vector<std::optional<int64_t>> ids(rows);
    std::vector<std::string> texts(rows);
    for (int64_t r = 0; r < rows; ++r) {
      if (rng() % 50 != 0) ids[r] = static_cast<int64_t>(rng() % keys);
      texts[r] = std::string(rng() % 40, static_cast<char>('a' + r % 26));
    }
    // The batches as they will be appended: sizes from 1 row to 8,000.
    std::vector<std::pair<int64_t, int64_t>> batches;  // first row, rows
    for (int64_t r = 0; r < rows;) {
      const int64_t n = std::min<int64_t>(rows - r, 1 + static_cast<int64_t>(rng() % 8000));
      batches.push_back({r, n});
      r += n;
    }
    auto make_batch = [&](int64_t first, int64_t n) {
      arrow::Int64Builder id, seq;
      arrow::StringBuilder text;
      for (int64_t r = first; r < first + n; ++r) {
        EXPECT_TRUE((ids[r] ? id.Append(*ids[r]) : id.AppendNull()).ok());
        EXPECT_TRUE(seq.Append(r).ok());
        EXPECT_TRUE(text.Append(texts[r]).ok());
      }
      return arrow::RecordBatch::Make(
          schema, n,
          {id.Finish().ValueOrDie(), seq.Finish().ValueOrDie(), text.Finish().ValueOrDie()});
    };
    int64_t input_bytes = 0;
    for (const auto& [first, n] : batches) input_bytes += BatchBytes(*make_batch(first, n));
    // From 3 % of the input (many spills) to 130 % (none).
    const int64_t budget = input_bytes * (3 + static_cast<int64_t>(rng() % 128)) / 100;
    SCOPED_TRACE(std::to_string(parts) + " partitions, " + std::to_string(rows) + " rows (" +
                 std::to_string(input_bytes) + " bytes) in " + std::to_string(batches.size()) +
                 " batches, budget " + std::to_string(budget));

    const int64_t base = pool->bytes_allocated();
    PartitionerOptions options;
    options.num_partitions = parts;
    options.memory_budget_bytes = budget;
    options.spill_parent = dir.path();
    auto partitioner = EntityPartitioner::Make(schema, {"id"}, options).ValueOrDie();
    for (const auto& [first, n] : batches) {
      ASSERT_TRUE(partitioner->Append(make_batch(first, n)).ok());
      const PartitionerStats& stats = partitioner->stats();
      ASSERT_LE(stats.bytes_in_memory, budget);
      // Padding: 64 bytes a buffer, three buffers a column at most, a batch a group and split.
      ASSERT_LE(pool->bytes_allocated() - base, stats.bytes_in_memory + 64 * 1024 + budget / 16)
          << "after the batch at row " << first;
    }
    ASSERT_TRUE(partitioner->Finish().ok());
    const PartitionerStats& stats = partitioner->stats();
    ASSERT_LE(stats.bytes_in_memory, budget);
    EXPECT_EQ(stats.rows, rows);
    // Only about what exceeds the budget is written (the excess, a gather and part of a group),
    // not everything once anything is. (The sorted batches may take a little more than the
    // input: a validity bitmap a Take adds, an offsets buffer a group.)
    if (input_bytes * 10 <= budget * 9) {
      EXPECT_EQ(stats.bytes_spilled, 0);
    } else if (input_bytes * 10 <= budget * 12 && parts >= 32 && keys >= 1000) {
      EXPECT_LT(stats.bytes_spilled, input_bytes / 2);
    }

    // Each partition's rows in append order, by brute force.
    std::vector<std::vector<int64_t>> expected(parts);
    {
      auto all = make_batch(0, rows);
      auto key_columns = KeyColumns::Make({all->column(0)}).ValueOrDie();
      std::vector<uint64_t> hashes(rows);
      key_columns.HashRows(hashes.data());
      for (int64_t r = 0; r < rows; ++r) {
        expected[key_columns.IsNull(r) ? 0 : EntityPartitioner::PartitionOf(hashes[r], parts)]
            .push_back(r);
      }
    }
    for (int p = 0; p < parts; ++p) {
      auto table = partitioner->ReadPartition(p).ValueOrDie();
      ASSERT_EQ(table->num_rows(), static_cast<int64_t>(expected[p].size())) << "partition " << p;
      if (table->num_rows() > 0) {
        auto got = table->CombineChunksToBatch().ValueOrDie();
        const auto& id = static_cast<const arrow::Int64Array&>(*got->column(0));
        const auto& seq = static_cast<const arrow::Int64Array&>(*got->column(1));
        const auto& text = static_cast<const arrow::StringArray&>(*got->column(2));
        for (int64_t i = 0; i < got->num_rows(); ++i) {
          const int64_t r = expected[p][i];
          ASSERT_EQ(seq.Value(i), r) << "partition " << p << " row " << i;
          ASSERT_EQ(id.IsNull(i), !ids[r].has_value()) << "row " << r;
          if (ids[r]) {
            ASSERT_EQ(id.Value(i), *ids[r]) << "row " << r;
          }
          ASSERT_EQ(text.GetView(i), texts[r]) << "row " << r;
        }
      }
      partitioner->Release(p);
    }
    EXPECT_EQ(partitioner->stats().bytes_in_memory, 0);
    // Every group's batches freed with their partitions' releases.
    EXPECT_LE(pool->bytes_allocated() - base, 64 * 1024);
  }
}

}  // namespace
}  // namespace granary
