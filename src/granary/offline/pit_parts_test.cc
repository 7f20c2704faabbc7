// The join's parts on their own: the gather's chunked columns (ScatteredColumn), the streaming
// match on several threads (StreamingMatcher), the partitioner's spill folder and order, and key
// hashing across integer widths. The whole join against its oracle is in pit_join_test.cc.
#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <optional>
#include <random>
#include <set>

#include "granary/common/temp_dir.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"
#include "granary/offline/pit_gather.h"
#include "granary/offline/pit_join.h"
#include "granary/offline/pit_stream.h"
#include "granary/testing/test_seed.h"

namespace granary {
namespace {

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kBase = 1'700'000'000'000'000;  // 2023-11-14, in microseconds
TEST(ScatteredColumn, InChunksHoldsTheSameValuesAsInOne) {
  // 21 entity rows; the source's rows at read positions 100.. (a null at 103), chosen by rows
  // in a shuffled order, some rows choosing none.
  const int64_t rows = 21;
  std::vector<ChosenRow> chosen;
  for (int64_t i = 0; i < 15; ++i) chosen.push_back({100 + i, (i * 8) % rows});
  arrow::DoubleBuilder doubles;
  arrow::BooleanBuilder bools;
  for (int64_t i = 0; i < 15; ++i) {
    if (i == 3) {
      ASSERT_TRUE(doubles.AppendNull().ok());
      ASSERT_TRUE(bools.AppendNull().ok());
    } else {
      ASSERT_TRUE(doubles.Append(0.5 * static_cast<double>(i)).ok());
      ASSERT_TRUE(bools.Append(i % 3 == 0).ok());
    }
  }
  const std::vector<std::shared_ptr<arrow::Array>> sources{doubles.Finish().ValueOrDie(),
                                                           bools.Finish().ValueOrDie()};
  for (const auto& source : sources) {
    SCOPED_TRACE(source->type()->ToString());
    std::shared_ptr<arrow::Array> whole;
    for (int64_t chunk_rows : {int64_t{0}, int64_t{4}, int64_t{8}, int64_t{6}, int64_t{32}}) {
      auto column = ScatteredColumn::Make(source->type(), rows, chunk_rows).ValueOrDie();
      // In two calls, as two batches would be.
      column->Put(*source->data(), 100, chosen.data(), chosen.data() + 9);
      column->Put(*source->Slice(9)->data(), 109, chosen.data() + 9, chosen.data() + 15);
      auto out = column->Finish();
      ASSERT_EQ(out->length(), rows);
      // Powers of two below the row count make chunks of that size; others one chunk.
      const int expected_chunks = chunk_rows == 4 ? 6 : chunk_rows == 8 ? 3 : 1;
      ASSERT_EQ(out->num_chunks(), expected_chunks) << "chunks of " << chunk_rows;
      auto combined = arrow::Concatenate(out->chunks()).ValueOrDie();
      if (whole == nullptr) {
        whole = combined;
        for (int64_t i = 0; i < 15; ++i) {
          const int64_t row = (i * 8) % rows;
          ASSERT_EQ(whole->IsValid(row), i != 3) << "entity row " << row;
        }
        ASSERT_EQ(whole->null_count(), rows - 14);
        continue;
      }
      ASSERT_TRUE(combined->Equals(*whole)) << "chunks of " << chunk_rows << ": "
                                            << combined->ToString() << " vs " << whole->ToString();
    }
  }
}

TEST(StreamingMatcher, ChoosesTheSameRowsOnOneTwoAndThreeThreads) {
  // Enough entity rows (100,000) that the entity side is sorted in hash ranges on each thread;
  // batches large enough that Offer splits them over the threads (its helper threads and
  // scratch kept from batch to batch), and one too small to split between them. The
  // sort-and-sweep engine (MatchPointInTime) is the reference.
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  auto uniform = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  auto int64s = [](const std::vector<int64_t>& v) {
    arrow::Int64Builder b;
    EXPECT_TRUE(b.AppendValues(v).ok());
    return b.Finish().ValueOrDie();
  };
  auto times = [](const std::vector<int64_t>& v) {
    arrow::TimestampBuilder b(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                              arrow::default_memory_pool());
    EXPECT_TRUE(b.AppendValues(v).ok());
    return b.Finish().ValueOrDie();
  };
  constexpr int64_t kEntities = 100'000, kKeys = 20'000, kBatches = 6;
  // Rows of each batch: the third is below Offer's 4,096-row threshold for splitting.
  const std::vector<int64_t> batch_rows = {50'000, 50'000, 1'000, 50'000, 50'000, 50'000};
  std::vector<int64_t> first_row = {0};
  for (int64_t rows : batch_rows) first_row.push_back(first_row.back() + rows);
  std::vector<int64_t> e_key(kEntities), e_ts(kEntities);
  for (int64_t i = 0; i < kEntities; ++i) {
    e_key[i] = uniform(0, kKeys);
    e_ts[i] = kBase + uniform(0, 1000) * kMinute;
  }
  auto entity_key_array = int64s(e_key);
  auto entity_ts = times(e_ts);
  auto entity_keys = KeyColumns::Make({entity_key_array}).ValueOrDie();
  std::vector<std::shared_ptr<arrow::Array>> f_keys, f_ts, f_created;
  std::vector<KeyColumns> f_key_columns;
  for (int b = 0; b < kBatches; ++b) {
    const int64_t rows = batch_rows[b];
    std::vector<int64_t> key(rows), ts(rows), created(rows);
    for (int64_t i = 0; i < rows; ++i) {
      key[i] = uniform(0, kKeys);
      ts[i] = kBase + uniform(0, 1000) * kMinute;  // ties within a key: read order decides
      created[i] = ts[i] + uniform(0, 5) * kMinute;
    }
    f_keys.push_back(int64s(key));
    f_ts.push_back(times(ts));
    f_created.push_back(times(created));
    f_key_columns.push_back(KeyColumns::Make({f_keys.back()}).ValueOrDie());
  }
  const Duration ttl = Duration::Minutes(200);
  std::vector<FeatureRowsView> views;
  for (int b = 0; b < kBatches; ++b) {
    views.push_back({&f_key_columns[b], f_ts[b].get(), f_created[b].get(), first_row[b], nullptr});
  }
  auto reference = MatchPointInTime(entity_keys, *entity_ts, views, ttl,
                                    /*created_timestamp_cutoff=*/false, /*threads=*/1);
  ASSERT_TRUE(reference.ok()) << reference.status().ToString();
  int64_t matched = 0;
  for (const ChosenRow& r : *reference) matched += r.index >= 0;
  ASSERT_GT(matched, kEntities / 2);  // the case exercises matching, not only misses
  for (int threads : {1, 2, 3}) {
    SCOPED_TRACE(fmt::format("{} threads", threads));
    auto matcher = StreamingMatcher::Make(&entity_keys, entity_ts.get(), ttl,
                                          /*created_timestamp_cutoff=*/false, threads)
                       .ValueOrDie();
    for (int b = 0; b < kBatches; ++b) {
      ASSERT_TRUE(
          matcher->Offer(f_key_columns[b], *f_ts[b], f_created[b].get(), first_row[b]).ok());
    }
    const std::vector<ChosenRow> chosen = matcher->Finish();
    ASSERT_EQ(chosen.size(), reference->size());
    for (int64_t i = 0; i < kEntities; ++i) {
      ASSERT_EQ(chosen[i].index, (*reference)[i].index) << "entity row " << i;
      ASSERT_EQ(chosen[i].event_ts, (*reference)[i].event_ts) << "entity row " << i;
    }
  }
}

TEST(MatchPointInTime, LooksUpTheRowsTheSweepChoosesForSourcesSmallerAndLargerThanTheEntities) {
  // Random sources, some with fewer feature rows than entity rows (where kAuto looks up), some
  // with more (where it sweeps); integer and string keys (a string key's hash may collide: the
  // keys are compared), null entity keys and times, ttl or none, the created-time cutoff, read
  // positions with gaps. Every way on one and three threads chooses what a brute force does
  // (on the smaller rounds) and what the others do.
  const uint64_t first_seed = testing::TestSeed();
  int64_t matched = 0, looked_up = 0, swept = 0;
  for (uint64_t round = 0; round < 30; ++round) {
    const uint64_t seed = first_seed + round;
    SCOPED_TRACE(testing::SeedTrace(seed));
    std::mt19937_64 rng(seed);
    auto uniform = [&](int64_t lo, int64_t hi) {
      return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    const bool strings = uniform(0, 1) == 1;
    const bool cutoff = uniform(0, 2) == 0;
    const Duration ttl = uniform(0, 1) == 0 ? Duration{} : Duration::Minutes(uniform(1, 30));
    const int64_t keys = uniform(1, 300);
    // Every third round past one block of entity rows (64 Ki rows are hashed at a time).
    const int64_t entities = round % 3 == 0 ? uniform(70'000, 140'000) : uniform(0, 2'000);
    const int64_t feature_rows = round % 2 == 0 ? uniform(0, std::max<int64_t>(entities / 4, 1))
                                                : uniform(entities, entities + 3'000);
    (feature_rows <= entities ? looked_up : swept) += 1;
    auto key_array = [&](const std::vector<std::optional<int64_t>>& values) {
      std::shared_ptr<arrow::Array> out;
      if (strings) {
        arrow::StringBuilder b;
        for (const auto& v : values) {
          v ? (void)b.Append("key-" + std::to_string(*v)) : (void)b.AppendNull();
        }
        EXPECT_TRUE(b.Finish(&out).ok());
      } else {
        arrow::Int64Builder b;
        for (const auto& v : values) v ? (void)b.Append(*v * 7919) : (void)b.AppendNull();
        EXPECT_TRUE(b.Finish(&out).ok());
      }
      return out;
    };
    auto times = [](const std::vector<std::optional<int64_t>>& values) {
      arrow::TimestampBuilder b(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                arrow::default_memory_pool());
      for (const auto& v : values) v ? (void)b.Append(*v) : (void)b.AppendNull();
      return b.Finish().ValueOrDie();
    };
    std::vector<std::optional<int64_t>> e_key(entities), e_ts(entities);
    for (int64_t i = 0; i < entities; ++i) {
      if (uniform(0, 49) > 0) e_key[i] = uniform(0, keys);  // key `keys` has no feature rows
      if (uniform(0, 49) > 0) e_ts[i] = kBase + uniform(-5, 100) * kMinute;
    }
    auto entity_key_array = key_array(e_key);
    auto entity_ts = times(e_ts);
    auto entity_keys = KeyColumns::Make({entity_key_array}).ValueOrDie();
    // The feature rows in 1 to 4 chunks, each with its read positions: consecutive from an
    // offset, or listed with gaps (rows the scan dropped).
    std::vector<int64_t> f_key(feature_rows), f_ts(feature_rows), f_position(feature_rows);
    std::vector<std::optional<int64_t>> f_created(feature_rows);
    std::vector<std::shared_ptr<arrow::Array>> chunk_keys, chunk_ts, chunk_created, chunk_rows;
    std::vector<int64_t> chunk_first;  // the read position of each chunk's first row
    std::vector<KeyColumns> chunk_key_columns;
    std::vector<FeatureRowsView> views;
    const int64_t chunks = uniform(1, 4);
    int64_t position = 0;
    for (int64_t c = 0, first = 0; c < chunks; ++c) {
      const int64_t end = c + 1 == chunks ? feature_rows : uniform(first, feature_rows);
      const bool gaps = uniform(0, 1) == 1;
      chunk_first.push_back(position);
      std::vector<std::optional<int64_t>> key, ts, created;
      std::vector<int64_t> rows;
      for (int64_t j = first; j < end; ++j) {
        f_key[j] = uniform(0, keys - 1);
        f_ts[j] = kBase + uniform(0, 90) * kMinute;  // ties within a key: read order decides
        if (uniform(0, 4) > 0) f_created[j] = f_ts[j] + uniform(-3, 10) * kMinute;
        if (gaps && j > first) position += uniform(0, 2);
        f_position[j] = position++;
        key.push_back(f_key[j]);
        ts.push_back(f_ts[j]);
        created.push_back(f_created[j]);
        rows.push_back(f_position[j]);
      }
      chunk_keys.push_back(key_array(key));
      chunk_ts.push_back(times(ts));
      chunk_created.push_back(times(created));
      arrow::Int64Builder positions;
      ASSERT_TRUE(positions.AppendValues(rows).ok());
      chunk_rows.push_back(gaps ? positions.Finish().ValueOrDie() : nullptr);
      chunk_key_columns.push_back(KeyColumns::Make({chunk_keys.back()}).ValueOrDie());
      first = end;
    }
    for (size_t c = 0; c < chunk_keys.size(); ++c) {
      views.push_back({&chunk_key_columns[c], chunk_ts[c].get(), chunk_created[c].get(),
                       chunk_first[c], chunk_rows[c].get()});
    }
    std::vector<ChosenRow> want;
    if (entities * feature_rows <= 4'000'000) {
      want.resize(entities);
      for (int64_t i = 0; i < entities; ++i) {
        if (!e_key[i] || !e_ts[i]) continue;
        const int64_t t = *e_ts[i];
        int64_t best = -1;
        for (int64_t j = 0; j < feature_rows; ++j) {
          if (f_key[j] != *e_key[i] || f_ts[j] > t) continue;
          if (ttl.micros > 0 && f_ts[j] < t - ttl.micros) continue;
          if (cutoff && f_created[j] && *f_created[j] > t) continue;
          auto order = [&](int64_t r) {
            return std::pair(f_ts[r], f_created[r].value_or(INT64_MIN));
          };
          if (best < 0 || order(j) >= order(best)) best = j;  // a later row wins a full tie
        }
        if (best >= 0) want[i] = {f_position[best], f_ts[best]};
      }
    }
    for (MatchWay way : {MatchWay::kAuto, MatchWay::kSweep, MatchWay::kLookUp}) {
      for (int threads : {1, 3}) {
        SCOPED_TRACE(fmt::format("way {}, {} threads, {} entity rows, {} feature rows",
                                 static_cast<int>(way), threads, entities, feature_rows));
        auto chosen = MatchPointInTime(entity_keys, *entity_ts, views, ttl, cutoff, threads, way);
        ASSERT_TRUE(chosen.ok()) << chosen.status().ToString();
        ASSERT_EQ(static_cast<int64_t>(chosen->size()), entities);
        if (want.empty() && entities > 0) {
          want = *chosen;  // no brute force on this round: the first way is the reference
          continue;
        }
        for (int64_t i = 0; i < entities; ++i) {
          ASSERT_EQ((*chosen)[i].index, want[i].index) << "entity row " << i;
          ASSERT_EQ((*chosen)[i].event_ts, want[i].event_ts) << "entity row " << i;
        }
      }
    }
    for (const ChosenRow& r : want) matched += r.index >= 0;
  }
  EXPECT_GT(looked_up, 0);
  EXPECT_GT(swept, 0);
  EXPECT_GT(matched, 0);  // the rounds exercise matching, not only misses
}

TEST(EntityOrder, PlacesEachEntityRowAtItsChosenRowsOneGatheredValue) {
  // 7 entity rows; read positions 10 (chosen by rows 4 and 6), 12 (row 0) and 15 (rows 1 and
  // 2), sorted by read position; rows 3 and 5 chose none. Each chosen row's value is gathered
  // once: 3 values.
  const std::vector<ChosenRow> chosen{{10, 4}, {10, 6}, {12, 0}, {15, 1}, {15, 2}};
  EXPECT_EQ(DistinctChosenRows(chosen), 3);
  EXPECT_EQ(DistinctChosenRows({}), 0);
  auto order = EntityOrder(chosen, 7).ValueOrDie();
  ASSERT_EQ(order->type_id(), arrow::Type::INT32);
  const auto& places = static_cast<const arrow::Int32Array&>(*order);
  const std::vector<std::optional<int32_t>> want_places{1, 2, 2, std::nullopt, 0, std::nullopt, 0};
  ASSERT_EQ(places.length(), 7);
  for (int64_t i = 0; i < 7; ++i) {
    ASSERT_EQ(places.IsValid(i), want_places[i].has_value()) << "entity row " << i;
    if (want_places[i]) {
      EXPECT_EQ(places.Value(i), *want_places[i]) << "entity row " << i;
    }
  }
  arrow::StringBuilder gathered;
  ASSERT_TRUE(gathered.AppendValues({"at 10", "at 12", "at 15"}).ok());
  auto values = std::make_shared<arrow::ChunkedArray>(gathered.Finish().ValueOrDie());
  auto taken = arrow::compute::Take(values, order).ValueOrDie().chunked_array();
  arrow::StringBuilder expected;
  for (const char* v : {"at 12", "at 15", "at 15", "", "at 10", "", "at 10"}) {
    ASSERT_TRUE((*v == '\0' ? expected.AppendNull() : expected.Append(v)).ok());
  }
  auto want = expected.Finish().ValueOrDie();
  EXPECT_TRUE(arrow::Concatenate(taken->chunks()).ValueOrDie()->Equals(*want)) << taken->ToString();
}

TEST(EntityPartitioner, AMissingSpillFolderIsAClearError) {
  auto schema = arrow::schema({arrow::field("id", arrow::int64())});
  PartitionerOptions options;
  options.num_partitions = 2;
  options.memory_budget_bytes = 1;
  options.spill_parent = "/nonexistent/granary-spill-parent";
  auto partitioner = EntityPartitioner::Make(schema, {"id"}, options).ValueOrDie();
  arrow::Int64Builder ids;
  (void)ids.AppendValues({1, 2, 3});
  auto st = partitioner->Append(arrow::RecordBatch::Make(schema, 3, {ids.Finish().ValueOrDie()}));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot create a spill folder under /nonexistent"), std::string::npos)
      << st.message();
}

TEST(EntityPartitioner, SpillsPastTheBudgetAndKeepsAppendOrderPerPartition) {
  auto schema =
      arrow::schema({arrow::field("id", arrow::int64()), arrow::field("seq", arrow::int64())});
  PartitionerOptions options;
  options.num_partitions = 8;
  options.memory_budget_bytes = 4096;  // a few batches
  auto partitioner = EntityPartitioner::Make(schema, {"id"}, options).ValueOrDie();
  int64_t seq = 0;
  for (int batch = 0; batch < 50; ++batch) {
    arrow::Int64Builder ids, seqs;
    for (int i = 0; i < 100; ++i, ++seq) {
      (void)ids.Append((seq * 31) % 97);
      (void)seqs.Append(seq);
    }
    auto rb = arrow::RecordBatch::Make(schema, 100,
                                       {ids.Finish().ValueOrDie(), seqs.Finish().ValueOrDie()});
    ASSERT_TRUE(partitioner->Append(rb).ok());
    EXPECT_LE(partitioner->stats().bytes_in_memory, options.memory_budget_bytes / 2 + 2048);
  }
  ASSERT_TRUE(partitioner->Finish().ok());
  EXPECT_GT(partitioner->stats().bytes_spilled, 0);
  int64_t total = 0;
  for (int p = 0; p < options.num_partitions; ++p) {
    auto table = partitioner->ReadPartition(p).ValueOrDie();
    total += table->num_rows();
    int64_t last = -1;
    std::vector<std::shared_ptr<arrow::Array>> ids = table->GetColumnByName("id")->chunks();
    auto seqs = table->GetColumnByName("seq")->chunks();
    for (size_t c = 0; c < ids.size(); ++c) {
      auto keys = KeyColumns::Make({ids[c]}).ValueOrDie();
      std::vector<uint64_t> hashes(ids[c]->length());
      keys.HashRows(hashes.data());
      const auto& s = static_cast<const arrow::Int64Array&>(*seqs[c]);
      for (int64_t i = 0; i < s.length(); ++i) {
        EXPECT_EQ(EntityPartitioner::PartitionOf(hashes[i], options.num_partitions), p);
        EXPECT_GT(s.Value(i), last);  // append order
        last = s.Value(i);
      }
    }
    partitioner->Release(p);
  }
  EXPECT_EQ(total, seq);
}

TEST(KeyColumns, HashesEqualKeysEquallyAcrossIntegerWidthsOnlyWhenCastAlike) {
  arrow::Int64Builder a;
  (void)a.AppendValues({1, 2, 3});
  arrow::StringBuilder s;
  (void)s.AppendValues({"x", "y", "x"});
  auto ints = a.Finish().ValueOrDie();
  auto strings = s.Finish().ValueOrDie();
  auto single = KeyColumns::Make({ints}).ValueOrDie();
  auto pair = KeyColumns::Make({ints, strings}).ValueOrDie();
  EXPECT_TRUE(single.hash_is_injective());
  EXPECT_FALSE(pair.hash_is_injective());
  std::vector<uint64_t> h(3);
  pair.HashRows(h.data());
  EXPECT_NE(h[0], h[2]);
  EXPECT_TRUE(pair.Equals(0, pair, 0));
  EXPECT_FALSE(pair.Equals(0, pair, 2));
}

}  // namespace
}  // namespace granary
