#include "merge_row_shape.h"

#include <rocksdb/compaction_filter.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>

#include "granary/online/value_codec.h"

namespace granary::bench {
namespace {

// The per-view store's expiry filter (rocksdb_store.cc): drops an expired record.
struct RecordExpiryFilter final : public rocksdb::CompactionFilter {
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    if (value.size() < kRecordHeader || value[0] != kRecordVersion) return false;
    return layout::LoadFixed<int64_t>(value.data() + 1) <= NowMicros();
  }
  const char* Name() const override { return "granary.expiry"; }
};

}  // namespace

rocksdb::Options StoreOptions(bool merge) {
  static RecordExpiryFilter record_filter;
  static SectionExpiryFilter section_filter(NowMicros);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(256u << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.compression = rocksdb::kLZ4Compression;
  if (merge) options.merge_operator = std::make_shared<SectionMergeOperator>(NowMicros);
  options.compaction_filter =
      merge ? static_cast<const rocksdb::CompactionFilter*>(&section_filter) : &record_filter;
  return options;
}

std::unique_ptr<rocksdb::DB> OpenDb(const std::filesystem::path& path,
                                    const rocksdb::Options& options) {
  rocksdb::DB* raw = nullptr;
  Check(rocksdb::DB::Open(options, path.string(), &raw), "open");
  return std::unique_ptr<rocksdb::DB>(raw);
}

void FlushAndWait(rocksdb::DB* db) {
  rocksdb::FlushOptions flush;
  flush.wait = true;
  Check(db->Flush(flush), "flush");
  for (;;) {
    uint64_t pending = 0, compactions = 0, flushes = 0, memtables = 0;
    db->GetIntProperty("rocksdb.compaction-pending", &pending);
    db->GetIntProperty("rocksdb.num-running-compactions", &compactions);
    db->GetIntProperty("rocksdb.num-running-flushes", &flushes);
    db->GetIntProperty("rocksdb.num-immutable-mem-table", &memtables);
    if (pending + compactions + flushes + memtables == 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void WriteChunkPerView(rocksdb::DB* db, const ViewLayout& view, const arrow::RecordBatch& rows) {
  const EntityKeyColumn keys = EncodeEntityKeys(view, rows).ValueOrDie();
  const BodyEncoder encoder = BodyEncoder::Make(view, rows).ValueOrDie();
  const size_t n = keys.size();
  std::vector<std::string> record_keys(n);
  for (size_t i = 0; i < n; ++i) {
    record_keys[i].assign(keys.key(i));
    layout::PutBigEndian32(&record_keys[i], view.view_id());
  }
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](uint32_t a, uint32_t b) { return record_keys[a] < record_keys[b]; });
  std::vector<rocksdb::Slice> slices(n);
  for (size_t i = 0; i < n; ++i) slices[i] = record_keys[order[i]];
  std::vector<rocksdb::PinnableSlice> stored(n);
  std::vector<rocksdb::Status> statuses(n);
  db->MultiGet(rocksdb::ReadOptions(), db->DefaultColumnFamily(), n, slices.data(), stored.data(),
               statuses.data(), /*sorted_input=*/true);
  const int64_t now = NowMicros();
  const int64_t expiry = ExpiryFor(view, now);
  rocksdb::WriteBatch batch;
  std::string record;
  for (size_t i = 0; i < n; ++i) {
    if (!statuses[i].ok() && !statuses[i].IsNotFound()) Check(statuses[i], "read");
    std::optional<WriteOrder> current;
    std::string_view stored_body;
    if (statuses[i].ok() && stored[i].size() >= kRecordHeader && stored[i][0] == kRecordVersion) {
      const std::string_view rec(stored[i].data(), stored[i].size());
      stored_body = rec.substr(kRecordHeader);
      BodyHeader header;
      if (layout::LoadFixed<int64_t>(rec.data() + 1) > now &&
          ParseBodyHeader(stored_body, view.features().size(), &header) &&
          header.fingerprint == view.fingerprint()) {
        current = header.order;
      }
    }
    const int64_t row = order[i];
    record.clear();
    record.push_back(kRecordVersion);
    layout::PutFixed<int64_t>(&record, expiry);
    if (current && encoder.Order(row).Compare(*current) < 0) {
      record.append(stored_body);
    } else {
      Check(encoder.Append(row, &record), "encode");
    }
    Check(batch.Put(slices[i], record), "batch");
  }
  Check(db->Write(rocksdb::WriteOptions(), &batch), "write");
}

void WriteChunkMerge(rocksdb::DB* db, const ViewLayout& view, const arrow::RecordBatch& rows) {
  const EntityKeyColumn keys = EncodeEntityKeys(view, rows).ValueOrDie();
  const BodyEncoder encoder = BodyEncoder::Make(view, rows).ValueOrDie();
  const int64_t now = NowMicros();
  const int64_t expiry = ExpiryFor(view, now);
  rocksdb::WriteBatch batch;
  std::string body, operand;
  for (size_t i = 0; i < keys.size(); ++i) {
    body.clear();
    Check(encoder.Append(static_cast<int64_t>(i), &body), "encode");
    operand.clear();
    AppendWriteOperand(view.view_id(), now, expiry, body, &operand);
    const std::string_view key = keys.key(i);
    Check(batch.Merge(rocksdb::Slice(key.data(), key.size()), operand), "batch");
  }
  Check(db->Write(rocksdb::WriteOptions(), &batch), "write");
}

int64_t WritePass(const std::vector<std::shared_ptr<arrow::RecordBatch>>& batches,
                  const std::function<void(const ViewLayout&, const arrow::RecordBatch&)>& write) {
  const Shape& shape = Shape::Get();
  int64_t chunks = 0;
  for (int v = 0; v < kViews; ++v) {
    for (int64_t begin = 0; begin < kEntities; begin += kChunkRows) {
      write(*shape.views[v], *batches[v]->Slice(begin, std::min(kChunkRows, kEntities - begin)));
      ++chunks;
    }
  }
  return chunks;
}

std::vector<std::pair<uint32_t, uint32_t>> RequestedViews() {
  std::vector<std::pair<uint32_t, uint32_t>> out;
  const Shape& shape = Shape::Get();
  for (int v = 0; v < kViews; ++v) out.emplace_back(shape.views[v]->view_id(), v);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace granary::bench
