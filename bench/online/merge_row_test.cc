// The merge operator of bench/online/merge_row.h against an oracle: today's write-if-newer run
// one write after the other (docs/ONLINE_LAYOUT.md, "Write order and write-if-newer", "Expiry").
// Every grouping of the operands (partial merges of any adjacent ones, a stored row folded from
// a prefix) must give the oracle's rows, and the same bytes; and through a real RocksDB (flushes,
// compactions, reads of unmerged operands) the same values.
#include "merge_row.h"

#include <gtest/gtest.h>
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <random>

#include "granary/common/temp_dir.h"
#include "granary/online/value_codec.h"
#include "granary/testing/test_seed.h"

namespace granary::bench {
namespace {

// One write of one view's row, at `written` (us), expiring at written + ttl.
struct Write {
  uint32_t view = 1;
  int64_t written = 0;
  int64_t ttl = 0;
  uint32_t fingerprint = 7;
  WriteOrder order;
  int tag = 0;  // makes every write's body distinct, so that the winner shows

  std::string Body() const {
    std::string b;
    layout::PutFixed<uint32_t>(&b, fingerprint);
    layout::PutFixed<int64_t>(&b, order.event_micros);
    layout::PutVarint(
        &b, order.has_created ? layout::CreatedCode(order.event_micros, order.created_micros) : 0);
    b.push_back(static_cast<char>(tag));
    return b;
  }
  std::string Operand() const {
    std::string out;
    AppendWriteOperand(view, written, written + ttl, Body(), &out);
    return out;
  }
};

// A view's live row: body and expiry.
using Rows = std::map<uint32_t, std::pair<std::string, int64_t>>;

// Today's rule, one write after the other; the rows live at `now`.
Rows Oracle(const std::vector<Write>& writes, int64_t now) {
  Rows stored;
  for (const Write& w : writes) {
    auto it = stored.find(w.view);
    if (it != stored.end()) {
      BodyHeader h;
      const bool parsed = ParseBodyHeader(it->second.first, 0, &h);
      if (parsed && it->second.second > w.written && h.fingerprint == w.fingerprint &&
          h.order.Compare(w.order) > 0) {
        it->second.second = w.written + w.ttl;  // skipped: the expiry is refreshed
        continue;
      }
    }
    stored[w.view] = {w.Body(), w.written + w.ttl};
  }
  std::erase_if(stored, [&](const auto& kv) { return kv.second.second <= now; });
  return stored;
}

// A row's sections; with `now`, only those live at now (what a reader keeps).
Rows Decode(std::string_view row, std::optional<int64_t> now = std::nullopt) {
  Rows out;
  EXPECT_TRUE(ForEachSection(row, [&](const SectionRef& s) {
    if (!now || s.expire_at > *now) out[s.view_id] = {std::string(s.body), s.expire_at};
  }));
  return out;
}

std::string Describe(const std::vector<Write>& writes) {
  std::string s;
  for (const Write& w : writes) {
    s += "{view " + std::to_string(w.view) + " at " + std::to_string(w.written) + " ttl " +
         std::to_string(w.ttl) + " fp " + std::to_string(w.fingerprint) + " event " +
         std::to_string(w.order.event_micros) +
         (w.order.has_created ? " created " + std::to_string(w.order.created_micros) : "") + "} ";
  }
  return s;
}

std::string Merge(const std::vector<std::string>& rows, const int64_t* now) {
  std::vector<std::string_view> views(rows.begin(), rows.end());
  std::string out;
  EXPECT_TRUE(MergeRows(views, now, &out));
  return out;
}

// Partial merges of the operands by every binary grouping: for each range [i, j), every split
// point must give the same bytes (checked here, bottom-up); returns the whole range's.
std::string EveryGrouping(const std::vector<std::string>& ops, const std::string& context) {
  const size_t n = ops.size();
  std::vector<std::vector<std::string>> merged(n, std::vector<std::string>(n + 1));
  for (size_t i = 0; i < n; ++i) merged[i][i + 1] = ops[i];
  for (size_t length = 2; length <= n; ++length) {
    for (size_t i = 0; i + length <= n; ++i) {
      const size_t j = i + length;
      for (size_t k = i + 1; k < j; ++k) {
        const std::string m = Merge({merged[i][k], merged[k][j]}, nullptr);
        if (k == i + 1) {
          merged[i][j] = m;
        } else {
          EXPECT_EQ(merged[i][j], m)
              << "operands [" << i << ", " << j << ") split at " << k << ": " << context;
        }
      }
    }
  }
  return merged[0][n];
}

// Checks every way RocksDB can fold `writes` against the oracle at `now`.
void CheckAllFolds(const std::vector<Write>& writes, int64_t now) {
  const std::string context = Describe(writes) + "now " + std::to_string(now);
  const Rows expected = Oracle(writes, now);
  std::vector<std::string> ops;
  for (const Write& w : writes) ops.push_back(w.Operand());
  const size_t n = ops.size();

  // One full merge of every operand, no stored row.
  const std::string flat = Merge(ops, &now);
  EXPECT_EQ(Decode(flat), expected) << context;

  // Every binary grouping of partial merges, then the full merge of the one operand left.
  EXPECT_EQ(Merge({EveryGrouping(ops, context)}, &now), flat) << context;

  // Every split into adjacent blocks, each partially merged in one call (PartialMergeMulti).
  for (uint32_t cuts = 0; cuts < (1u << (n - 1)); ++cuts) {
    std::vector<std::string> blocks;
    std::vector<std::string> block;
    for (size_t i = 0; i < n; ++i) {
      block.push_back(ops[i]);
      if (i + 1 == n || (cuts >> i & 1) != 0) {
        blocks.push_back(Merge(block, nullptr));
        block.clear();
      }
    }
    EXPECT_EQ(Merge(blocks, &now), flat) << context << " cuts " << cuts;
  }

  // A stored row fully merged from a prefix at the time of its last write (a compaction), then
  // the rest as operands.
  for (size_t p = 1; p < n; ++p) {
    const int64_t then = writes[p - 1].written;
    std::vector<std::string> rows = {
        Merge(std::vector<std::string>(ops.begin(), ops.begin() + p), &then)};
    rows.insert(rows.end(), ops.begin() + p, ops.end());
    EXPECT_EQ(Decode(Merge(rows, &now)), expected) << context << " stored row of " << p;
  }
}

// Every choice of view, order, schema and ttl for 3 writes (48^3 sequences).
TEST(SectionMerge, EveryGroupingOfThreeWritesEqualsWriteIfNewer) {
  const WriteOrder orders[] = {{10, false, 0}, {10, true, 11}, {20, false, 0}, {20, true, 19}};
  // A write every 100 us: a ttl of 50 expires before the next write, 100 exactly at it (the
  // boundary: a row whose expiry is now is expired), 1,000 after them all.
  const int64_t ttls[] = {50, 100, 1000};
  std::vector<Write> choices;
  for (uint32_t view : {1u, 2u}) {
    for (const WriteOrder& o : orders) {
      for (uint32_t fp : {7u, 8u}) {
        for (int64_t ttl : ttls) choices.push_back({view, 0, ttl, fp, o, 0});
      }
    }
  }
  ASSERT_EQ(choices.size(), 48u);
  int checked = 0;
  for (const Write& a : choices) {
    for (const Write& b : choices) {
      for (const Write& c : choices) {
        std::vector<Write> writes = {a, b, c};
        for (size_t i = 0; i < writes.size(); ++i) {
          writes[i].written = 100 * static_cast<int64_t>(i + 1);
          writes[i].tag = static_cast<int>(i);
        }
        CheckAllFolds(writes, 300);   // at the last write
        CheckAllFolds(writes, 1099);  // after most expiries
        if (::testing::Test::HasFailure()) return;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 48 * 48 * 48);
}

// Longer random sequences over three views, writes sometimes at the same microsecond.
TEST(SectionMerge, RandomSequencesEqualWriteIfNewer) {
  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 3000; ++round) {
    const size_t n = 4 + rng() % 4;
    std::vector<Write> writes;
    int64_t at = 0;
    for (size_t i = 0; i < n; ++i) {
      Write w;
      w.view = 1 + static_cast<uint32_t>(rng() % 3);
      at += static_cast<int64_t>(rng() % 3) * 50;
      w.written = at;
      w.ttl = 1 + static_cast<int64_t>(rng() % 4) * 60;
      w.fingerprint = rng() % 5 == 0 ? 8 : 7;
      w.order.event_micros = static_cast<int64_t>(rng() % 3);
      w.order.has_created = rng() % 2 == 0;
      w.order.created_micros = w.order.has_created ? static_cast<int64_t>(rng() % 2) : 0;
      w.tag = static_cast<int>(i);
      writes.push_back(w);
    }
    CheckAllFolds(writes, at);
    CheckAllFolds(writes, at + 100);
    if (::testing::Test::HasFailure()) return;
  }
}

// With distinct orders, one schema and no expiry between writes, the row is the newest write's
// whatever the order the writes arrived in.
TEST(SectionMerge, NewestWinsInAnyArrivalOrder) {
  std::vector<Write> writes;
  for (int i = 0; i < 5; ++i) {
    Write w;
    w.view = 3;
    w.ttl = 100'000;
    w.order = {10 * (i % 3), i >= 3, i >= 3 ? i : 0};  // (0), (10), (20), (0, 3), (10, 4)
    w.tag = i;
    writes.push_back(w);
  }
  std::vector<int> perm = {0, 1, 2, 3, 4};
  int permutations = 0;
  do {
    std::vector<Write> arrived;
    for (size_t i = 0; i < perm.size(); ++i) {
      arrived.push_back(writes[perm[i]]);
      arrived.back().written = 100 * static_cast<int64_t>(i + 1);
    }
    std::vector<std::string> ops;
    for (const Write& w : arrived) ops.push_back(w.Operand());
    const int64_t now = 600;
    const Rows rows = Decode(Merge(ops, &now));
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows.at(3).first, writes[2].Body()) << Describe(arrived);  // event 20
    EXPECT_EQ(rows.at(3).second, 500 + 100'000);                         // the last write's
    ++permutations;
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_EQ(permutations, 120);
}

TEST(SectionMerge, MalformedOperandsAreRefused) {
  std::string out;
  Write w;
  const std::string good = w.Operand();
  EXPECT_TRUE(MergeRows({good}, nullptr, &out));
  EXPECT_FALSE(MergeRows({good, ""}, nullptr, &out));
  EXPECT_FALSE(MergeRows({good, "\x01"}, nullptr, &out));                           // version 1
  EXPECT_FALSE(MergeRows({good, good.substr(0, good.size() - 3)}, nullptr, &out));  // cut
  std::string twice = good + good.substr(1);  // the same view id twice in one row
  EXPECT_FALSE(MergeRows({twice}, nullptr, &out));
}

// A RocksDB in a temporary folder whose merge operator and expiry filter read `now` (us), which
// the test moves. Not movable: the clock points into it.
struct SectionDb {
  int64_t now = 0;
  TempDir dir;
  std::unique_ptr<SectionExpiryFilter> filter;
  std::unique_ptr<rocksdb::DB> db;  // null when it could not be opened (the test fails)
};

std::unique_ptr<SectionDb> OpenSectionDb(int64_t now) {
  auto s = std::unique_ptr<SectionDb>(
      new SectionDb{now, TempDir::Make("granary_merge_row_test_").ValueOrDie(), nullptr, nullptr});
  auto clock = [s = s.get()] { return s->now; };
  s->filter = std::make_unique<SectionExpiryFilter>(clock);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.merge_operator = std::make_shared<SectionMergeOperator>(clock);
  options.compaction_filter = s->filter.get();
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status st = rocksdb::DB::Open(options, s->dir.path().string(), &raw);
  EXPECT_TRUE(st.ok()) << st.ToString();
  s->db.reset(raw);
  return s;
}

// A write whose section expires before the compaction that meets it alone at the bottom level:
// the full merge drops the section and writes a row of none (a merge operator cannot delete the
// key), which the next compaction's filter must remove as it removes a row of expired sections.
// (The random test below met it in CI, for one seed.)
TEST(SectionMerge, ACompactionRemovesTheEmptyRowAFullMergeLeft) {
  std::unique_ptr<SectionDb> s = OpenSectionDb(100);
  ASSERT_NE(s->db, nullptr);
  int64_t& now = s->now;
  rocksdb::DB* db = s->db.get();
  Write w;
  w.written = now;
  w.ttl = 150;
  ASSERT_TRUE(db->Merge(rocksdb::WriteOptions(), "e1", w.Operand()).ok());
  ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
  now = 1000;
  ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok());
  std::string value;
  ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), "e1", &value).ok());
  ASSERT_EQ(value, std::string(1, kMergeRowVersion));  // the full merge's row of no section
  ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok());
  EXPECT_TRUE(db->Get(rocksdb::ReadOptions(), "e1", &value).IsNotFound());
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
}

// Through RocksDB: operands in the memtable, in level-0 files and compacted (with the expiry
// filter), read with Get, MultiGet and an iterator as a reader does (sections live at now), equal
// the oracle after every step; once compacted at the end, rows hold only live sections.
TEST(SectionMerge, RocksDbReadsAndCompactionsEqualWriteIfNewer) {
  std::unique_ptr<SectionDb> s = OpenSectionDb(0);
  ASSERT_NE(s->db, nullptr);
  int64_t& now = s->now;
  rocksdb::DB* db = s->db.get();

  const uint64_t seed = testing::TestSeed();
  SCOPED_TRACE(testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  constexpr int kEntities = 200;
  std::vector<std::vector<Write>> history(kEntities);
  auto key = [](int e) { return "e" + std::to_string(1000 + e); };
  // `exact`: the stored rows hold no expired section (after a full compaction).
  auto check = [&](const char* step, bool exact) {
    SCOPED_TRACE(step);
    const std::optional<int64_t> at = exact ? std::nullopt : std::optional<int64_t>(now);
    std::map<std::string, Rows> iterated;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      iterated[it->key().ToString()] =
          Decode(std::string_view(it->value().data(), it->value().size()), at);
    }
    ASSERT_TRUE(it->status().ok());
    std::vector<std::string> keys;
    for (int e = 0; e < kEntities; ++e) keys.push_back(key(e));
    std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
    std::vector<std::string> values;
    const auto statuses = db->MultiGet(rocksdb::ReadOptions(), slices, &values);
    for (int e = 0; e < kEntities; ++e) {
      const Rows expected = Oracle(history[e], now);
      std::string value;
      const rocksdb::Status st = db->Get(rocksdb::ReadOptions(), key(e), &value);
      ASSERT_TRUE(st.ok() || st.IsNotFound()) << st.ToString();
      ASSERT_EQ(st.code(), statuses[e].code()) << "Get and MultiGet, entity " << e;
      if (st.IsNotFound()) {
        // Only a row whose every section expired is removed.
        EXPECT_TRUE(expected.empty()) << "entity " << e << ": " << Describe(history[e]);
        EXPECT_EQ(iterated.count(key(e)), 0u);
        continue;
      }
      EXPECT_EQ(Decode(value, at), expected) << "entity " << e << ": " << Describe(history[e]);
      EXPECT_EQ(Decode(values[e], at), expected) << "MultiGet, entity " << e;
      EXPECT_EQ(iterated[key(e)], expected) << "iterator, entity " << e;
    }
    EXPECT_EQ(iterated.size() <= static_cast<size_t>(kEntities), true);
  };
  auto write_round = [&](int tag) {
    rocksdb::WriteBatch batch;
    for (int e = 0; e < kEntities; ++e) {
      if (tag > 0 && rng() % 3 == 0) continue;  // the first round writes every entity
      Write w;
      w.view = 1 + static_cast<uint32_t>(rng() % 4);
      w.written = now;
      w.ttl = rng() % 6 == 0 ? 150 : 10'000;
      w.fingerprint = rng() % 10 == 0 ? 8 : 7;
      w.order.event_micros = static_cast<int64_t>(rng() % 5);
      w.order.has_created = rng() % 2 == 0;
      w.order.created_micros = w.order.has_created ? static_cast<int64_t>(rng() % 3) : 0;
      w.tag = tag;
      history[e].push_back(w);
      ASSERT_TRUE(batch.Merge(key(e), w.Operand()).ok());
    }
    ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
  };
  for (int round = 0; round < 12; ++round) {
    now += 100;
    write_round(round);
    check("memtable", false);
    if (round % 3 == 2) {
      ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
      check("flushed", false);
    }
    if (round % 4 == 3) {
      ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok());
      check("compacted", false);
    }
  }
  // The short ttls have expired, the long ones not: a full compaction leaves only live sections.
  now += 500;
  ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok());
  check("compacted after the short ttls", true);
  // Everything expired: the compaction removes every row.
  now += 20'000;
  ASSERT_TRUE(db->CompactRange(rocksdb::CompactRangeOptions(), nullptr, nullptr).ok());
  check("all expired and compacted", true);
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions()));
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
}

}  // namespace
}  // namespace granary::bench
