// Fuzzes the Delta deletion vector decoder (src/granary/offline/deletion_vector.h), the reader of
// bytes that Spark and Databricks write. An input is one of:
//   - a DV file (first byte 1, the format version): every stored DV in it (big-endian size,
//     bitmap, CRC-32) is decoded as DeletionVector::Load decodes it;
//   - Z85 text (first byte 'i'): decoded, then read as an inline bitmap;
//   - anything else: a serialized RoaringBitmapArray.
// Property: decoding returns Corruption or a vector whose rows are strictly ascending, as many as
// its cardinality, and found again by Contains and ForEachInRange.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include "granary/offline/deletion_vector.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "deletion vector invariant broken: %s\n", what);
    std::abort();
  }
}

void CheckDecoded(const granary::Result<granary::DeletionVector>& dv) {
  if (!dv.ok()) {
    Check(dv.status().code() == granary::StatusCode::kCorruption, "errors are Corruption");
    return;
  }
  const std::vector<uint64_t> rows = dv->ToVector();
  Check(static_cast<int64_t>(rows.size()) == dv->cardinality(), "cardinality counts the rows");
  for (size_t i = 1; i < rows.size(); ++i) Check(rows[i - 1] < rows[i], "rows ascend");
  if (rows.empty()) return;
  Check(dv->max() == rows.back(), "max is the last row");
  Check(dv->Contains(rows.front()) && dv->Contains(rows.back()), "Contains finds the rows");
  // A window around the middle row sees exactly the rows in it.
  const uint64_t first = rows[rows.size() / 2] > 100 ? rows[rows.size() / 2] - 100 : 0;
  size_t expected = 0;
  for (uint64_t r : rows) expected += r >= first && r < first + 70000;
  size_t seen = 0;
  dv->ForEachInRange(first, 70000, [&](uint64_t r) {
    Check(r >= first && r < first + 70000, "ForEachInRange stays in its range");
    ++seen;
  });
  Check(seen == expected, "ForEachInRange sees every row of its range");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  if (size > 0 && data[0] == 1) {
    size_t at = 1;
    while (at + 4 <= size) {
      const uint32_t n = (uint32_t{data[at]} << 24) | (uint32_t{data[at + 1]} << 16) |
                         (uint32_t{data[at + 2]} << 8) | data[at + 3];
      if (uint64_t{n} + 8 > size - at) {
        CheckDecoded(granary::DeletionVector::DecodeStored(bytes.subspan(at), n, "fuzz"));
        break;
      }
      CheckDecoded(granary::DeletionVector::DecodeStored(bytes.subspan(at, n + 8), n, "fuzz"));
      at += n + 8;
    }
    return 0;
  }
  if (size > 0 && data[0] == 'i') {
    auto decoded =
        granary::Z85Decode(std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
    if (decoded.ok()) CheckDecoded(granary::DeletionVector::Decode(*decoded, "fuzz"));
    return 0;
  }
  CheckDecoded(granary::DeletionVector::Decode(bytes, "fuzz"));
  return 0;
}
