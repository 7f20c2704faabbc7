// Fuzzes the online tiles of window aggregations as serving reads them: a tile body read back from
// RocksDB or Redis (docs/ONLINE_LAYOUT.md, "Tiles"), which a corrupt store, another Granary
// version or anyone with write access to Redis may have written, is folded into values at a read's
// `now` (aggregation::FoldTiles) and encoded as the view's body (EncodeBody), and merged with new
// records as a write does (aggregation::MergeTileBody). No body may crash the server: the fold
// returns values or Corruption.
//
// The view has every aggregation function over int64, float64, string and bool columns, with and
// without `where`, at 1 h with roll-ups (its longest window is 2 days: 6 h roll-ups). The input's
// first byte chooses how the body is made:
//   even: a raw body. Bytes 1-8: `now` (int64 LE, UTC us); the rest: the body, after the view's
//         fingerprint when bit 1 is set (so that mutations reach the records, not only the
//         fingerprint).
//   odd:  a body written by Granary, then damaged. Bytes 1-2: `now` in minutes (uint16 LE); byte 3:
//         the number of events n (at most 64); byte 4: the roll-up range's end in hours (0: no
//         roll-ups); then n events of 6 bytes (time in minutes (uint16 LE), v (int8, -128: null),
//         x (uint8: (x - 128) / 4, 0: null), s (uint8: one of 8 strings, >= 8: null), flag (0
//         false, 1 true, else null)); then damage, 3 bytes each: position (uint16 LE, modulo the
//         body's size) and a byte XORed into it, or, when that byte is 0, the body cut there.
//
// Properties beyond "no crash":
//   - a body Granary wrote folds without error, and the values encode as the view's body;
//   - any body that folds without error encodes, and merging it with no new record and nothing
//     to drop gives it back unchanged (a writer keeps every record it can read).
#include <arrow/api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fixed_definitions.h"
#include "granary/aggregation/tiles.h"
#include "granary/online/value_codec.h"
#include "granary/online/view_layout.h"

namespace {

constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: events, path: data/events.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: windows
    entities: [customer]
    source: events
    granularity: 1h
    aggregations:
      - {name: n_3h, function: count, window: 3h}
      - {name: n_flag_5h, function: count, where: flag, window: 5h}
      - {name: n_x_1d, function: count, column: x, window: 1d}
      - {name: sum_v_4h, function: sum, column: v, window: 4h, type: int64}
      - {name: sum_x_2h, function: sum, column: x, where: flag, window: 2h, type: float64}
      - {name: mean_x_6h, function: mean, column: x, window: 6h}
      - {name: sd_x_2d, function: stddev, column: x, window: 2d}
      - {name: min_v_3h, function: min, column: v, where: flag, window: 3h, type: int64}
      - {name: max_s_1d, function: max, column: s, window: 1d, type: string}
      - {name: first_s_8h, function: first, column: s, window: 8h, type: string}
      - {name: last_v_1h, function: last, column: v, window: 1h, type: int64}
      - {name: last_flag_2d, function: last, column: flag, window: 2d, type: bool}
      - {name: distinct_s_2d, function: count_distinct, column: s, window: 2d}
)yaml";

constexpr int64_t kMinute = 60'000'000;
constexpr int64_t kHour = 60 * kMinute;
constexpr const char* kStrings[] = {"", "a", "b", "card", "cash", "wallet", "\xff\xfez", "zz"};

struct Target {
  std::shared_ptr<const granary::ViewLayout> layout;
  const granary::aggregation::TileSpec* spec = nullptr;
  std::vector<granary::Aggregation> aggregations;
};

const Target& TheTarget() {
  static const Target target = [] {
    const granary::Definitions defs = granary::fuzz::FixedDefinitions(kDefinitions);
    Target t;
    auto view =
        granary::ViewLayout::Make(defs, defs.feature_views.at(0), granary::Duration::Days(90))
            .ValueOrDie();
    t.layout = view->tile_layout();  // what serving reads and encodes the tiles with
    if (t.layout == nullptr || t.layout->tiles() == nullptr) {
      std::fprintf(stderr, "the fuzz view keeps no tiles: %s\n", view->tile_error().c_str());
      std::abort();
    }
    t.spec = t.layout->tiles();
    if (t.spec->rollup.micros == 0) {
      std::fprintf(stderr, "the fuzz view has no roll-ups\n");
      std::abort();
    }
    t.aggregations = defs.feature_views.at(0).aggregations;
    return t;
  }();
  return target;
}

void Fail(const char* what, const granary::Status& status, std::string_view body) {
  std::fprintf(stderr, "%s: %s (body of %zu bytes)\n", what, status.ToString().c_str(),
               body.size());
  std::abort();
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// Folds `body` at `now` as serving does; with `must_fold`, a fold error is a bug (the body is
// Granary's own). Checks the properties above on every body that folds.
void ReadAsServing(const Target& t, std::string_view body, int64_t now, bool must_fold) {
  std::vector<granary::Value> values;
  int64_t last_event = 0;
  bool matches = false;
  granary::Status st =
      granary::aggregation::FoldTiles(*t.spec, body, now, &values, &last_event, &matches);
  if (!st.ok()) {
    if (must_fold || st.code() != granary::StatusCode::kCorruption) Fail("FoldTiles", st, body);
    return;
  }
  if (!matches) {
    if (must_fold) Fail("FoldTiles: Granary's body does not match", st, body);
    return;
  }
  if (values.size() != t.spec->items.size()) Fail("FoldTiles: one value per item", st, body);
  std::string encoded;
  st = granary::EncodeBody(*t.layout, granary::WriteOrder{last_event}, values, &encoded);
  if (!st.ok()) Fail("EncodeBody of the folded values", st, body);
  const std::string merged = granary::aggregation::MergeTileBody(
      body, t.spec->Fingerprint(), std::nullopt, std::numeric_limits<int64_t>::min(), {});
  if (merged != body) {
    Fail("MergeTileBody changed a readable body", granary::Status::OK(), body);
  }
}

// The events of the input, as columns, sorted by time; the body Granary writes for them.
std::string WriteBody(const Target& t, const uint8_t* data, size_t n_events,
                      std::optional<granary::aggregation::RollupRange> rollups) {
  std::vector<size_t> order(n_events);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return Load<uint16_t>(data + 6 * a) < Load<uint16_t>(data + 6 * b);
  });
  std::vector<int64_t> times;
  arrow::Int64Builder v;
  arrow::DoubleBuilder x;
  arrow::StringBuilder s;
  arrow::BooleanBuilder flag;
  for (size_t i : order) {
    const uint8_t* e = data + 6 * i;
    times.push_back(Load<uint16_t>(e) * kMinute);
    const auto vi = static_cast<int8_t>(e[2]);
    (void)(vi == -128 ? v.AppendNull() : v.Append(vi));
    (void)(e[3] == 0 ? x.AppendNull() : x.Append((static_cast<int>(e[3]) - 128) / 4.0));
    (void)(e[4] >= 8 ? s.AppendNull() : s.Append(kStrings[e[4]]));
    (void)(e[5] > 1 ? flag.AppendNull() : flag.Append(e[5] == 1));
  }
  std::shared_ptr<arrow::Array> columns[4];
  if (!v.Finish(&columns[0]).ok() || !x.Finish(&columns[1]).ok() || !s.Finish(&columns[2]).ok() ||
      !flag.Finish(&columns[3]).ok()) {
    std::abort();
  }
  auto column = [&](const std::string& name) -> std::shared_ptr<arrow::Array> {
    if (name.empty()) return nullptr;
    return columns[name == "v" ? 0 : name == "x" ? 1 : name == "s" ? 2 : 3];
  };
  std::vector<std::shared_ptr<arrow::Array>> values, wheres;
  for (const granary::Aggregation& a : t.aggregations) {
    values.push_back(column(a.column));
    wheres.push_back(column(a.where));
  }
  granary::aggregation::TileAccumulator accumulator(*t.spec);
  const std::vector<std::string> keys(n_events, "customer");
  granary::Status st = accumulator.Add(keys, times.data(), values, wheres);
  if (!st.ok()) Fail("TileAccumulator::Add", st, {});
  std::string body;
  const uint32_t fingerprint = t.spec->Fingerprint();
  body.append(reinterpret_cast<const char*>(&fingerprint), sizeof(fingerprint));
  for (const auto& [key, tiles] : accumulator.entities()) {
    granary::aggregation::EncodeTileRecords(*t.spec, tiles, &body, rollups);
  }
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Target& t = TheTarget();
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  if ((mode & 1) == 0) {
    if (size < 9) return 0;
    const int64_t now = Load<int64_t>(data + 1);
    std::string body;
    if (mode & 2) {
      const uint32_t fingerprint = t.spec->Fingerprint();
      body.append(reinterpret_cast<const char*>(&fingerprint), sizeof(fingerprint));
    }
    body.append(reinterpret_cast<const char*>(data + 9), size - 9);
    ReadAsServing(t, body, now, /*must_fold=*/false);
    return 0;
  }
  if (size < 5) return 0;
  const int64_t now = Load<uint16_t>(data + 1) * kMinute;
  const size_t n_events = std::min<size_t>({data[3], 64, (size - 5) / 6});
  std::optional<granary::aggregation::RollupRange> rollups;
  if (data[4] != 0) rollups = granary::aggregation::RollupRange{0, data[4] * kHour - 1};
  std::string body = WriteBody(t, data + 5, n_events, rollups);
  ReadAsServing(t, body, now, /*must_fold=*/true);
  // The damage, then the read a server would make of that body.
  for (size_t at = 5 + 6 * n_events; at + 3 <= size && !body.empty(); at += 3) {
    const size_t pos = Load<uint16_t>(data + at) % body.size();
    if (data[at + 2] == 0) {
      body.resize(pos);
    } else {
      body[pos] = static_cast<char>(body[pos] ^ data[at + 2]);
    }
  }
  ReadAsServing(t, body, now, /*must_fold=*/false);
  return 0;
}
