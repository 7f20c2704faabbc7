// Delta deletion vectors: Z85, the RoaringBitmapArray decoder (array, bitset and run
// containers, several buckets), DV files (version, size, CRC-32), corrupt input, and Spark's and
// Databricks' tables in ../shared/testdata read without their deleted rows.
#include "granary/offline/deletion_vector.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/writer.h>

#include <fstream>
#include <map>
#include <random>
#include <set>

#include "granary/common/temp_dir.h"
#include "granary/offline/delta_log.h"
#include "granary/offline/pit_join.h"
#include "granary/offline/source_scan.h"
#include "granary/registry/loader.h"

namespace granary {
namespace {

const std::filesystem::path kTestData = GRANARY_TESTDATA_DIR;

#define SKIP_WITHOUT_TESTDATA()                                                               \
  if (!std::filesystem::is_directory(kTestData)) {                                            \
    GTEST_SKIP() << "test data folder " << kTestData.string()                                 \
                 << " is absent (shared/testdata beside the checkout); skipping real tables"; \
  }

// ---- A test encoder for the formats (independent of the decoder under test) -----------------

enum class Kind { kArray, kBitset, kRun };

void Put16(std::vector<uint8_t>* out, uint32_t v) {
  out->push_back(v & 0xFF);
  out->push_back((v >> 8) & 0xFF);
}
void Put32(std::vector<uint8_t>* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back((v >> (8 * i)) & 0xFF);
}
void Put64(std::vector<uint8_t>* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back((v >> (8 * i)) & 0xFF);
}
void PutBigEndian32(std::vector<uint8_t>* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back((v >> (8 * i)) & 0xFF);
}

// One container's serialized body.
std::vector<uint8_t> ContainerBody(const std::vector<uint16_t>& values, Kind kind) {
  std::vector<uint8_t> body;
  if (kind == Kind::kArray) {
    for (uint16_t v : values) Put16(&body, v);
  } else if (kind == Kind::kBitset) {
    std::vector<uint64_t> words(1024, 0);
    for (uint16_t v : values) words[v / 64] |= uint64_t{1} << (v % 64);
    for (uint64_t w : words) Put64(&body, w);
  } else {
    std::vector<std::pair<uint16_t, uint16_t>> runs;
    for (uint16_t v : values) {
      if (!runs.empty() && runs.back().first + runs.back().second + 1 == v) {
        ++runs.back().second;
      } else {
        runs.push_back({v, 0});
      }
    }
    Put16(&body, static_cast<uint32_t>(runs.size()));
    for (auto [start, length_minus_one] : runs) {
      Put16(&body, start);
      Put16(&body, length_minus_one);
    }
  }
  return body;
}

// A RoaringBitmapArray of `rows`, each 16-bit container of kind kind(container key).
std::vector<uint8_t> Serialize(const std::set<uint64_t>& rows,
                               const std::function<Kind(uint64_t)>& kind) {
  std::map<uint32_t, std::map<uint16_t, std::vector<uint16_t>>> buckets;
  for (uint64_t r : rows) buckets[r >> 32][(r >> 16) & 0xFFFF].push_back(r & 0xFFFF);
  std::vector<uint8_t> out;
  Put32(&out, 1681511377);
  Put64(&out, buckets.size());
  for (const auto& [key, containers] : buckets) {
    Put32(&out, key);
    std::vector<uint8_t> bitmap;
    bool any_run = false;
    std::vector<Kind> kinds;
    for (const auto& [ckey, values] : containers) {
      kinds.push_back(kind((uint64_t{key} << 16) | ckey));
      any_run |= kinds.back() == Kind::kRun;
    }
    const uint32_t size = static_cast<uint32_t>(containers.size());
    size_t header = 0;
    if (any_run) {
      Put32(&bitmap, 12347 | ((size - 1) << 16));
      std::vector<uint8_t> flags((size + 7) / 8, 0);
      for (uint32_t i = 0; i < size; ++i) {
        if (kinds[i] == Kind::kRun) flags[i / 8] |= 1 << (i % 8);
      }
      bitmap.insert(bitmap.end(), flags.begin(), flags.end());
      header = 4 + flags.size() + 4 * size + (size >= 4 ? 4 * size : 0);
    } else {
      Put32(&bitmap, 12346);
      Put32(&bitmap, size);
      header = 8 + 8 * size;
    }
    std::vector<std::vector<uint8_t>> bodies;
    size_t i = 0;
    for (const auto& [ckey, values] : containers) {
      Put16(&bitmap, ckey);
      Put16(&bitmap, static_cast<uint32_t>(values.size() - 1));
      bodies.push_back(ContainerBody(values, kinds[i++]));
    }
    if (!any_run || size >= 4) {
      size_t offset = header;
      for (const auto& b : bodies) {
        Put32(&bitmap, static_cast<uint32_t>(offset));
        offset += b.size();
      }
    }
    for (const auto& b : bodies) bitmap.insert(bitmap.end(), b.begin(), b.end());
    out.insert(out.end(), bitmap.begin(), bitmap.end());
  }
  return out;
}

// A DV file: version 1, then each bitmap with its big-endian size and CRC-32; returns the offset
// of each DV.
std::vector<int64_t> WriteDvFile(const std::filesystem::path& path,
                                 const std::vector<std::vector<uint8_t>>& bitmaps) {
  std::vector<uint8_t> bytes = {1};
  std::vector<int64_t> offsets;
  for (const auto& b : bitmaps) {
    offsets.push_back(static_cast<int64_t>(bytes.size()));
    PutBigEndian32(&bytes, static_cast<uint32_t>(b.size()));
    bytes.insert(bytes.end(), b.begin(), b.end());
    PutBigEndian32(&bytes, DeletionVectorCrc32(b));
  }
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  return offsets;
}

std::string Z85Encode(const std::vector<uint8_t>& bytes) {
  static const char* kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  std::vector<uint8_t> padded = bytes;
  while (padded.size() % 4 != 0) padded.push_back(0);
  std::string out;
  for (size_t i = 0; i < padded.size(); i += 4) {
    uint64_t v =
        (uint64_t{padded[i]} << 24) | (padded[i + 1] << 16) | (padded[i + 2] << 8) | padded[i + 3];
    char group[5];
    for (int k = 4; k >= 0; --k) {
      group[k] = kAlphabet[v % 85];
      v /= 85;
    }
    out.append(group, 5);
  }
  return out;
}

std::vector<uint64_t> Decoded(const std::vector<uint8_t>& bytes) {
  auto dv = DeletionVector::Decode(bytes, "test");
  EXPECT_TRUE(dv.ok()) << dv.status().ToString();
  return dv.ok() ? dv->ToVector() : std::vector<uint64_t>{};
}

// ---- Encodings ------------------------------------------------------------------------------

TEST(Z85, DecodesTheSpecExampleAndRejectsBadText) {
  // ZeroMQ RFC 32's test vector.
  auto hello = Z85Decode("HelloWorld");
  ASSERT_TRUE(hello.ok());
  EXPECT_EQ(*hello, (std::vector<uint8_t>{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}));
  EXPECT_EQ(Z85Decode("Hell").status().code(), StatusCode::kCorruption);    // not 5k long
  EXPECT_EQ(Z85Decode("Hell\"").status().code(), StatusCode::kCorruption);  // not in alphabet
  EXPECT_EQ(Z85Decode("#####").status().code(), StatusCode::kCorruption);   // above 2^32
  EXPECT_EQ(DeletionVectorCrc32(std::vector<uint8_t>{'1', '2', '3', '4', '5', '6', '7', '8', '9'}),
            0xCBF43926u);  // the standard CRC-32 check value
}

TEST(DeletionVector, TheProtocolsInlineExampleDecodesToItsRows) {
  DeletionVectorDescriptor inline_dv{'i', "wi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L",
                                     std::nullopt, 40, 6};
  auto dv = DeletionVector::Load(inline_dv, "/nowhere", "/nowhere/part-0.parquet");
  ASSERT_TRUE(dv.ok()) << dv.status().ToString();
  EXPECT_EQ(dv->ToVector(), (std::vector<uint64_t>{3, 4, 7, 11, 18, 29}));
  EXPECT_TRUE(dv->Contains(18));
  EXPECT_FALSE(dv->Contains(19));
  EXPECT_EQ(dv->max(), 29u);
  EXPECT_EQ(inline_dv.UniqueId(), "iwi5b=000010000siXQKl0rr91000f55c8Xg0@@D72lkbi5=-{L");
}

TEST(DeletionVector, RelativeFileNamesComeFromTheZ85UuidAndItsPrefix) {
  DeletionVectorDescriptor with_prefix{'u', "ab^-aqEH.-t@S}K{vb[*k^", 4, 40, 6};
  auto file = DeletionVectorFile(with_prefix, "/t");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(*file, "/t/ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin");
  EXPECT_EQ(with_prefix.UniqueId(), "uab^-aqEH.-t@S}K{vb[*k^@4");
  DeletionVectorDescriptor absolute{'p', "file:///data/t/deletion_vector_x.bin", 1, 40, 6};
  EXPECT_EQ(*DeletionVectorFile(absolute, "/t"), "/data/t/deletion_vector_x.bin");
  DeletionVectorDescriptor bad_uuid{'u', "short", 1, 40, 6};
  EXPECT_EQ(DeletionVectorFile(bad_uuid, "/t").status().code(), StatusCode::kCorruption);
  DeletionVectorDescriptor relative{'p', "relative/dv.bin", 1, 40, 6};
  EXPECT_EQ(DeletionVectorFile(relative, "/t").status().code(), StatusCode::kCorruption);
}

TEST(DeletionVector, DecodesArrayBitsetAndRunContainersInSeveralBuckets) {
  std::set<uint64_t> rows;
  for (uint64_t r = 0; r < 10; ++r) rows.insert(r * 7);                          // key 0: array
  for (uint64_t r = 65536; r < 65536 + 20000; r += 3) rows.insert(r);            // key 1: bitset
  for (uint64_t r = 3 * 65536 + 100; r < 3 * 65536 + 9000; ++r) rows.insert(r);  // key 3: run
  rows.insert(3 * 65536 + 9500);                                                 // a second run
  rows.insert(5 * 65536 + 65535);        // the last value of a key
  rows.insert((uint64_t{7} << 32) + 1);  // a second bucket
  rows.insert((uint64_t{7} << 32) + 65536 * 2 + 5);
  for (int variant = 0; variant < 2; ++variant) {
    auto kind = [&](uint64_t key) {
      if (key == 1) return Kind::kBitset;
      if (key == 3 || (variant == 1 && key == 0)) return Kind::kRun;
      return Kind::kArray;
    };
    auto bytes = Serialize(rows, kind);
    EXPECT_EQ(Decoded(bytes), std::vector<uint64_t>(rows.begin(), rows.end())) << variant;
  }
  auto dv = DeletionVector::Decode(Serialize(rows, [](uint64_t) { return Kind::kRun; }), "t");
  ASSERT_TRUE(dv.ok()) << dv.status().ToString();
  EXPECT_EQ(dv->cardinality(), static_cast<int64_t>(rows.size()));
  EXPECT_EQ(dv->max(), (uint64_t{7} << 32) + 65536 * 2 + 5);
  // ForEachInRange sees exactly the rows of a window that straddles containers.
  std::vector<uint64_t> window;
  dv->ForEachInRange(65536 - 10, 200, [&](uint64_t r) { window.push_back(r); });
  std::vector<uint64_t> expected;
  for (uint64_t r : rows) {
    if (r >= 65536 - 10 && r < 65536 + 190) expected.push_back(r);
  }
  EXPECT_EQ(window, expected);
  // A run container of more than 4096 rows (kept as a bitset) reads back whole.
  EXPECT_TRUE(dv->Contains(3 * 65536 + 8999));
  EXPECT_FALSE(dv->Contains(3 * 65536 + 9000));
  // An empty vector: no buckets.
  EXPECT_TRUE(Decoded(Serialize({}, [](uint64_t) { return Kind::kArray; })).empty());
}

TEST(DeletionVector, FileBasedVectorsAreCheckedForVersionSizeAndChecksum) {
  auto dir = TempDir::Make("granary-dv-file-").ValueOrDie();
  const std::set<uint64_t> first = {0, 2, 4}, second = {1, 65537};
  auto kind = [](uint64_t) { return Kind::kArray; };
  const auto a = Serialize(first, kind), b = Serialize(second, kind);
  // A 'u' descriptor for the UUID d2c639aa-... under prefix "ab".
  std::filesystem::create_directories(dir.path() / "ab");
  const auto file = dir.path() / "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin";
  auto offsets = WriteDvFile(file, {a, b});
  DeletionVectorDescriptor second_dv{'u', "ab^-aqEH.-t@S}K{vb[*k^", offsets[1],
                                     static_cast<int64_t>(b.size()), 2};
  auto dv = DeletionVector::Load(second_dv, dir.path(), "data.parquet");
  ASSERT_TRUE(dv.ok()) << dv.status().ToString();
  EXPECT_EQ(dv->ToVector(), (std::vector<uint64_t>{1, 65537}));

  auto expect_corruption = [&](DeletionVectorDescriptor d, const std::string& message) {
    auto loaded = DeletionVector::Load(d, dir.path(), "data.parquet");
    ASSERT_FALSE(loaded.ok()) << message;
    EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption) << loaded.status().ToString();
    EXPECT_NE(loaded.status().message().find(file.string()), std::string::npos)
        << loaded.status().message();
    EXPECT_NE(loaded.status().message().find(message), std::string::npos)
        << loaded.status().message();
  };
  DeletionVectorDescriptor wrong_cardinality = second_dv;
  wrong_cardinality.cardinality = 3;
  expect_corruption(wrong_cardinality, "the log says cardinality 3");
  DeletionVectorDescriptor wrong_size = second_dv;
  wrong_size.size_in_bytes -= 1;
  expect_corruption(wrong_size, "the file says the DV has");
  DeletionVectorDescriptor past_end = second_dv;
  past_end.offset = 1 << 20;
  expect_corruption(past_end, "does not fit in the file");

  // One flipped bit in the bitmap: the checksum catches it.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(offsets[1] + 4 + 10);
    char c = 0;
    f.seekg(offsets[1] + 4 + 10);
    f.get(c);
    f.seekp(offsets[1] + 4 + 10);
    f.put(static_cast<char>(c ^ 0x10));
  }
  expect_corruption(second_dv, "checksum mismatch");
  // Another format version.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.put(2);
  }
  expect_corruption(second_dv, "format version 2");

  DeletionVectorDescriptor missing{'p', (dir.path() / "gone.bin").string(), 1, 10, 1};
  auto gone = DeletionVector::Load(missing, dir.path(), "data.parquet");
  EXPECT_EQ(gone.status().code(), StatusCode::kIOError) << gone.status().ToString();
  EXPECT_NE(gone.status().message().find("gone.bin"), std::string::npos);
}

TEST(DeletionVector, InlineVectorsRoundTripAndBadOnesAreCorruption) {
  const std::set<uint64_t> rows = {5, 6, 7, 100000};
  auto bytes = Serialize(rows, [](uint64_t) { return Kind::kRun; });
  DeletionVectorDescriptor d{'i', Z85Encode(bytes), std::nullopt,
                             static_cast<int64_t>(bytes.size()), 4};
  auto dv = DeletionVector::Load(d, "/t", "/t/f.parquet");
  ASSERT_TRUE(dv.ok()) << dv.status().ToString();
  EXPECT_EQ(dv->ToVector(), std::vector<uint64_t>(rows.begin(), rows.end()));
  DeletionVectorDescriptor bad = d;
  bad.path_or_inline_dv[3] = '"';
  auto loaded = DeletionVector::Load(bad, "/t", "/t/f.parquet");
  EXPECT_EQ(loaded.status().code(), StatusCode::kCorruption);
  EXPECT_NE(loaded.status().message().find("the inline deletion vector of /t/f.parquet"),
            std::string::npos)
      << loaded.status().message();
}

TEST(DeletionVector, MalformedBitmapsAreCorruptionNamingWhereNeverACrash) {
  auto kind = [](uint64_t key) { return key % 3 == 0 ? Kind::kRun : Kind::kArray; };
  std::set<uint64_t> rows;
  for (uint64_t r = 0; r < 300000; r += 997) rows.insert(r);
  const auto good = Serialize(rows, kind);
  ASSERT_EQ(Decoded(good).size(), rows.size());
  // Every truncation.
  for (size_t n = 0; n < good.size(); ++n) {
    auto dv = DeletionVector::Decode(std::span(good.data(), n), "dv.bin");
    ASSERT_FALSE(dv.ok()) << n;
    EXPECT_EQ(dv.status().code(), StatusCode::kCorruption);
    EXPECT_NE(dv.status().message().find("dv.bin"), std::string::npos);
  }
  // Specific invariants.
  auto with = [&](size_t at, uint8_t value) {
    auto bytes = good;
    bytes[at] = value;
    return DeletionVector::Decode(bytes, "dv.bin");
  };
  EXPECT_NE(with(0, 0).status().message().find("magic number"), std::string::npos);
  EXPECT_NE(with(15, 0x80).status().message().find("top bit"), std::string::npos);
  EXPECT_NE(with(16, 0).status().message().find("cookie"), std::string::npos);
  auto trailing = good;
  trailing.push_back(0);
  EXPECT_NE(DeletionVector::Decode(trailing, "dv.bin").status().message().find("follow the bitmap"),
            std::string::npos);
  // Unsorted array values and overlapping runs.
  {
    auto bytes = Serialize({1, 2, 3}, [](uint64_t) { return Kind::kArray; });
    std::swap(bytes[bytes.size() - 2], bytes[bytes.size() - 4]);
    EXPECT_NE(DeletionVector::Decode(bytes, "x").status().message().find("not strictly ascending"),
              std::string::npos);
    auto runs = Serialize({1, 2, 5}, [](uint64_t) { return Kind::kRun; });
    runs[runs.size() - 4] = 2;  // the second run starts at 2, inside the first
    EXPECT_NE(DeletionVector::Decode(runs, "x").status().message().find("overlap"),
              std::string::npos);
    auto count = Serialize({1, 2, 3}, [](uint64_t) { return Kind::kRun; });
    count[count.size() - 1 - 4 - 2] = 5;  // header cardinality 6 for a 3-value run
    EXPECT_EQ(DeletionVector::Decode(count, "x").status().code(), StatusCode::kCorruption);
  }
  // Random mutations: an error or a valid vector, never a crash (ASan checks the reads).
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 2000; ++trial) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
    auto dv = DeletionVector::Decode(bytes, "dv.bin");
    if (!dv.ok()) {
      EXPECT_EQ(dv.status().code(), StatusCode::kCorruption) << trial;
    }
  }
}

// ---- Reading tables with deletion vectors -----------------------------------------------------

TEST(DeletionVectorTables, DatabricksAndSparkTablesReadWithoutTheirDeletedRows) {
  SKIP_WITHOUT_TESTDATA();
  // Databricks: DELETE WHERE value IN (0, 9) on values 0..9.
  auto small = ReadDeltaSnapshot(kTestData / "delta-rs/table-with-dv-small");
  ASSERT_TRUE(small.ok()) << small.status().ToString();
  ASSERT_EQ(small->files.size(), 1u);
  ASSERT_TRUE(small->files[0].deletion_vector.has_value());
  auto table = ReadDeltaTable(*small);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  auto values = arrow::Concatenate((*table)->GetColumnByName("value")->chunks()).ValueOrDie();
  std::vector<int32_t> seen;
  for (int64_t i = 0; i < values->length(); ++i) {
    seen.push_back(static_cast<const arrow::Int32Array&>(*values).Value(i));
  }
  EXPECT_EQ(seen, (std::vector<int32_t>{1, 2, 3, 4, 5, 6, 7, 8}));

  // Spark: three DELETEs, each replacing the file's DV (remove old pair, add new pair).
  auto keys = ReadDeltaSnapshot(kTestData / "delta-golden/log-replay-dv-key-cases/delta");
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  ASSERT_EQ(keys->files.size(), 1u);
  EXPECT_EQ(keys->files[0].deletion_vector->cardinality, 3);
  auto ids = ReadDeltaTable(*keys);
  ASSERT_TRUE(ids.ok()) << ids.status().ToString();
  EXPECT_EQ((*ids)->num_rows(), 47);
  auto id_column = arrow::Concatenate((*ids)->GetColumnByName("id")->chunks()).ValueOrDie();
  for (int64_t i = 0; i < id_column->length(); ++i) {
    const int64_t id = static_cast<const arrow::Int64Array&>(*id_column).Value(i);
    EXPECT_TRUE(id != 0 && id != 7 && id != 14) << id;
  }
}

TEST(DeletionVectorTables, EveryDvGoldenTableCarriesVectorsThatLoad) {
  SKIP_WITHOUT_TESTDATA();
  int vectors = 0;
  for (const char* name :
       {"dv-partitioned-with-checkpoint", "dv-with-columnmapping", "log-replay-dv-key-cases"}) {
    const auto table = kTestData / "delta-golden" / name / "delta";
    auto snapshot = ReadDeltaSnapshot(table);
    ASSERT_TRUE(snapshot.ok()) << name << ": " << snapshot.status().ToString();
    for (const DeltaDataFile& file : snapshot->files) {
      if (!file.deletion_vector) continue;
      auto dv = DeletionVector::Load(*file.deletion_vector, table, file.path);
      ASSERT_TRUE(dv.ok()) << name << ": " << dv.status().ToString();
      EXPECT_EQ(dv->cardinality(), file.deletion_vector->cardinality);
      ++vectors;
    }
  }
  EXPECT_EQ(vectors, 5);  // live files with a vector, counted from the logs
}

Definitions LoadDefs(const std::string& yaml) {
  Diagnostics diag;
  Definitions defs;
  LoadDefinitionsText("defs.yaml", yaml, &defs, &diag);
  EXPECT_FALSE(diag.has_errors()) << diag.ToStatus().ToString();
  return defs;
}

// A Delta table of one Parquet file of 300 hourly rows (id = row index) in row groups of 100,
// whose deletion vector deletes `deleted`.
void WriteTableWithDv(const std::filesystem::path& table, const std::set<uint64_t>& deleted,
                      bool inline_dv) {
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  arrow::DoubleBuilder rate;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(ids.Append(i).ok());
    ASSERT_TRUE(ts.Append(int64_t{i} * 3'600'000'000).ok());
    ASSERT_TRUE(rate.Append(i / 2.0).ok());
  }
  auto data = arrow::Table::Make(
      arrow::schema(
          {arrow::field("driver_id", arrow::int64()),
           arrow::field("event_timestamp", arrow::timestamp(arrow::TimeUnit::MICRO, "UTC")),
           arrow::field("rate", arrow::float64())}),
      {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie(), rate.Finish().ValueOrDie()});
  std::filesystem::create_directories(table / "_delta_log");
  auto out = arrow::io::FileOutputStream::Open((table / "part-0.parquet").string()).ValueOrDie();
  ASSERT_TRUE(parquet::arrow::WriteTable(*data, arrow::default_memory_pool(), out, 100).ok());
  ASSERT_TRUE(out->Close().ok());
  const auto bitmap = Serialize(deleted, [](uint64_t) { return Kind::kArray; });
  std::string dv;
  if (inline_dv) {
    dv = R"({"storageType":"i","pathOrInlineDv":")" + Z85Encode(bitmap) + R"(","sizeInBytes":)" +
         std::to_string(bitmap.size()) + R"(,"cardinality":)" + std::to_string(deleted.size()) +
         "}";
  } else {
    auto offsets =
        WriteDvFile(table / "deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin", {bitmap});
    dv = R"({"storageType":"u","pathOrInlineDv":"^-aqEH.-t@S}K{vb[*k^","offset":)" +
         std::to_string(offsets[0]) + R"(,"sizeInBytes":)" + std::to_string(bitmap.size()) +
         R"(,"cardinality":)" + std::to_string(deleted.size()) + "}";
  }
  std::ofstream commit(table / "_delta_log/00000000000000000000.json");
  commit
      << R"({"protocol":{"minReaderVersion":3,"minWriterVersion":7,)"
      << R"("readerFeatures":["deletionVectors"],"writerFeatures":["deletionVectors"]}})"
      << "\n"
      << R"({"metaData":{"id":"t","format":{"provider":"parquet","options":{}},)"
      << R"("schemaString":"{\"type\":\"struct\",\"fields\":[)"
      << R"({\"name\":\"driver_id\",\"type\":\"long\",\"nullable\":true,\"metadata\":{}},)"
      << R"({\"name\":\"event_timestamp\",\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}},)"
      << R"({\"name\":\"rate\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}}]}",)"
      << R"("partitionColumns":[],"configuration":{"delta.enableDeletionVectors":"true"}}})"
      << "\n"
      << R"({"add":{"path":"part-0.parquet","partitionValues":{},"size":1,)"
      << R"("modificationTime":0,"dataChange":true,"stats":"{\"numRecords\":300}",)"
      << R"("deletionVector":)" << dv << "}}\n";
}

std::vector<int64_t> ScanIds(const std::filesystem::path& repo, const std::string& table,
                             std::optional<Timestamp> start, std::optional<Timestamp> end,
                             SourceScanStats* stats, int64_t batch_rows = 64) {
  Definitions defs = LoadDefs(
      "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
      "data_sources:\n  - {name: src, path: '" +
      table +
      "', type: delta, timestamp_field: event_timestamp}\n"
      "feature_views:\n  - name: v\n    entities: [driver]\n    source: src\n"
      "    ttl: 1d\n    schema:\n      - {name: rate, type: float64}\n");
  SourceScanOptions options;
  options.start = start;
  options.end = end;
  options.batch_rows = batch_rows;  // batches that straddle row groups
  auto scan = FeatureSourceScan::Open(repo, defs, defs.feature_views[0], options);
  EXPECT_TRUE(scan.ok()) << scan.status().ToString();
  std::vector<int64_t> out;
  if (!scan.ok()) return out;
  while (true) {
    auto batch = (*scan)->Next();
    EXPECT_TRUE(batch.ok()) << batch.status().ToString();
    if (!batch.ok() || *batch == nullptr) break;
    const auto& column = static_cast<const arrow::Int64Array&>(*(*batch)->column(0));
    for (int64_t i = 0; i < column.length(); ++i) out.push_back(column.Value(i));
  }
  if (stats != nullptr) *stats = (*scan)->stats();
  return out;
}

TEST(DeletionVectorTables, ScansSkipDeletedRowsCountedFromTheFilesStartAcrossPrunedRowGroups) {
  auto dir = TempDir::Make("granary-dv-scan-").ValueOrDie();
  // Rows in each row group (0-99, 100-199, 200-299), at the group edges and in the middle.
  const std::set<uint64_t> deleted = {0, 1, 50, 99, 100, 150, 199, 200, 201, 250, 299};
  for (bool inline_dv : {false, true}) {
    const std::string name = inline_dv ? "inline" : "file";
    WriteTableWithDv(dir.path() / name, deleted, inline_dv);
    auto expected = [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> ids;
      for (int64_t i = lo; i <= hi; ++i) {
        if (!deleted.contains(static_cast<uint64_t>(i))) ids.push_back(i);
      }
      return ids;
    };
    SourceScanStats stats;
    EXPECT_EQ(ScanIds(dir.path(), name, std::nullopt, std::nullopt, &stats), expected(0, 299))
        << name;
    EXPECT_EQ(stats.rows_estimated, 300 - static_cast<int64_t>(deleted.size()));
    // Hours 120..260: the first row group is pruned, so positions must still count its rows.
    EXPECT_EQ(ScanIds(dir.path(), name, Timestamp::FromSeconds(120 * 3600),
                      Timestamp::FromSeconds(260 * 3600), &stats),
              expected(120, 260))
        << name;
    EXPECT_EQ(stats.row_groups_pruned, 1) << name;
    // Only the last row group.
    EXPECT_EQ(
        ScanIds(dir.path(), name, Timestamp::FromSeconds(200 * 3600), std::nullopt, &stats, 1000),
        expected(200, 299))
        << name;
    EXPECT_EQ(stats.row_groups_pruned, 2) << name;
  }
}

TEST(DeletionVectorTables, TheGatherReadsAFileWithAVectorWholeAndAnswersAsWithoutGatherMode) {
  // A file with a deletion vector: its rows' read positions are not the file's, so the join's
  // gather reads its row groups whole (Arrow's reader) rather than in gather mode; the answers
  // are the same either way, and no deleted row is chosen.
  auto dir = TempDir::Make("granary-dv-gather-").ValueOrDie();
  const std::set<uint64_t> deleted = {0, 3, 99, 100, 150, 299};
  WriteTableWithDv(dir.path() / "t", deleted, false);
  Definitions defs = LoadDefs(
      "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
      "data_sources:\n  - {name: src, path: t, type: delta, timestamp_field: event_timestamp}\n"
      "feature_views:\n  - name: v\n    entities: [driver]\n    source: src\n"
      "    schema:\n      - {name: rate, type: float64}\n");
  arrow::Int64Builder ids;
  arrow::TimestampBuilder ts(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                             arrow::default_memory_pool());
  for (int64_t i = 0; i < 300; i += 3) {  // every third driver, after its one row
    ASSERT_TRUE(ids.Append(i).ok());
    ASSERT_TRUE(ts.Append(int64_t{1000} * 3'600'000'000).ok());
  }
  auto entities =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                              arrow::field("event_timestamp", ts.type())}),
                               100, {ids.Finish().ValueOrDie(), ts.Finish().ValueOrDie()});
  ViewSource source{dir.path(), &defs, &defs.feature_views[0], {}};
  ViewJoinStats stats, whole_stats;
  auto picked = PointInTimeJoin(*entities, source, JoinOptions{}, &stats);
  ASSERT_TRUE(picked.ok()) << picked.status().ToString();
  JoinOptions whole_options;
  whole_options.TEST_read_whole_row_groups = true;
  auto whole = PointInTimeJoin(*entities, source, whole_options, &whole_stats);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  EXPECT_EQ(stats.row_groups_picked, 0);
  EXPECT_TRUE((*picked)[0]->Equals(*(*whole)[0]));
  auto rates = arrow::Concatenate((*picked)[0]->chunks()).ValueOrDie();
  const auto& rate = static_cast<const arrow::DoubleArray&>(*rates);
  for (int64_t row = 0; row < 100; ++row) {
    const int64_t id = row * 3;
    if (deleted.contains(static_cast<uint64_t>(id))) {
      EXPECT_TRUE(rate.IsNull(row)) << id;
    } else {
      EXPECT_EQ(rate.Value(row), id / 2.0) << id;
    }
  }
}

TEST(DeletionVectorTables, AFileWhoseRowsAreAllDeletedIsPrunedAndABadVectorNamesTheFile) {
  auto dir = TempDir::Make("granary-dv-all-").ValueOrDie();
  std::set<uint64_t> all;
  for (uint64_t i = 0; i < 300; ++i) all.insert(i);
  WriteTableWithDv(dir.path() / "all", all, false);
  SourceScanStats stats;
  EXPECT_TRUE(ScanIds(dir.path(), "all", std::nullopt, std::nullopt, &stats).empty());
  EXPECT_EQ(stats.files_pruned, 1);

  // A vector naming a row past the file's end.
  WriteTableWithDv(dir.path() / "past", {5, 300}, false);
  Definitions defs = LoadDefs(
      "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
      "data_sources:\n  - {name: src, path: past, type: delta, timestamp_field: "
      "event_timestamp}\nfeature_views:\n  - name: v\n    entities: [driver]\n    source: src\n"
      "    ttl: 1d\n    schema:\n      - {name: rate, type: float64}\n");
  auto scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  auto batch = (*scan)->Next();
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), StatusCode::kCorruption) << batch.status().ToString();
  EXPECT_NE(batch.status().message().find("deletes row 300 but the file has 300 rows"),
            std::string::npos)
      << batch.status().message();

  // A damaged DV file: Corruption naming it, through the scan.
  WriteTableWithDv(dir.path() / "damaged", {5, 6}, false);
  const auto dv_file =
      dir.path() / "damaged/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin";
  {
    std::fstream f(dv_file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(10);
    f.put('\x7f');
  }
  defs = LoadDefs(
      "entities:\n  - {name: driver, join_keys: [driver_id], value_type: int64}\n"
      "data_sources:\n  - {name: src, path: damaged, type: delta, timestamp_field: "
      "event_timestamp}\nfeature_views:\n  - name: v\n    entities: [driver]\n    source: src\n"
      "    ttl: 1d\n    schema:\n      - {name: rate, type: float64}\n");
  scan = FeatureSourceScan::Open(dir.path(), defs, defs.feature_views[0], {});
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  batch = (*scan)->Next();
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(batch.status().code(), StatusCode::kCorruption) << batch.status().ToString();
  EXPECT_NE(batch.status().message().find(dv_file.string()), std::string::npos)
      << batch.status().message();
  EXPECT_NE(batch.status().message().find("feature view 'v'"), std::string::npos)
      << batch.status().message();
}

}  // namespace
}  // namespace granary
