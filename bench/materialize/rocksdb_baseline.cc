// The raw RocksDB baseline of bench/materialize: N values of S bytes under random 8-byte keys,
// written with plain WriteBatch + Put from T threads, 256 per batch (the chunk size of Granary's
// write-if-newer), with the options of Granary's store (LZ4, bloom filters, 256 MiB block cache).
// No read-compare, no encoding: the rate a blind loader reaches. Prints values/s.
//
//   materialize_rocksdb_baseline DIR N S T
#include <fmt/format.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 5) {
    fmt::print(stderr, "usage: {} DIR VALUES VALUE_BYTES THREADS\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int64_t n = std::atoll(argv[2]);
  const size_t size = std::strtoull(argv[3], nullptr, 10);
  const int threads = std::atoi(argv[4]);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.IncreaseParallelism(2);
  options.compression = rocksdb::kLZ4Compression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(256 << 20);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  rocksdb::DB* raw = nullptr;
  auto st = rocksdb::DB::Open(options, dir, &raw);
  if (!st.ok()) {
    fmt::print(stderr, "open {}: {}\n", dir, st.ToString());
    return 1;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(t + 1);
      std::string value(size, 'x');
      for (auto& c : value) c = static_cast<char>(rng());
      rocksdb::WriteBatch batch;
      for (int64_t i = t; i < n; i += threads) {
        const uint64_t key = rng();
        value[i % size] ^= 1;
        batch.Put(rocksdb::Slice(reinterpret_cast<const char*>(&key), sizeof(key)), value);
        if (batch.Count() == 256) {
          if (!db->Write(rocksdb::WriteOptions(), &batch).ok()) std::abort();
          batch.Clear();
        }
      }
      if (batch.Count() > 0 && !db->Write(rocksdb::WriteOptions(), &batch).ok()) std::abort();
    });
  }
  for (auto& w : workers) w.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("{:.0f}\n", static_cast<double>(n) / seconds);
  return 0;
}
