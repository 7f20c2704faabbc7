// Fuzzes the decoding of stored online values: bytes read back from RocksDB or Redis, which a
// corrupt store, another Granary version or anyone with write access to Redis may have written.
// The input is decoded as a body (docs/ONLINE_LAYOUT.md, "Body") of two views, one with a
// feature of every type and list type and one of fixed-width features (IndexBody's fast path),
// and as a Redis entity value whose sections are such bodies. Reading every value as serving
// does must stay inside the input. Property: a decoded body encodes to a canonical body that
// decodes and encodes to itself.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fixed_definitions.h"
#include "granary/online/redis/entity_value.h"
#include "granary/online/value_codec.h"
#include "granary/online/view_layout.h"

namespace {

constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: customer, join_keys: [customer_id], value_type: int64}
data_sources:
  - {name: src, path: data/src.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: every_type
    entities: [customer]
    source: src
    schema:
      - {name: f_bool, type: bool}
      - {name: f_int32, type: int32}
      - {name: f_int64, type: int64}
      - {name: f_float32, type: float32}
      - {name: f_float64, type: float64}
      - {name: f_string, type: string}
      - {name: f_bytes, type: bytes}
      - {name: f_timestamp, type: timestamp}
      - {name: l_bool, type: list<bool>}
      - {name: l_int32, type: list<int32>}
      - {name: l_int64, type: list<int64>}
      - {name: l_float32, type: list<float32>}
      - {name: l_float64, type: list<float64>}
      - {name: l_string, type: list<string>}
      - {name: l_bytes, type: list<bytes>}
      - {name: l_timestamp, type: list<timestamp>}
  - name: fixed
    entities: [customer]
    source: src
    schema:
      - {name: score, type: float64}
      - {name: failures, type: int64}
      - {name: ok, type: bool}
      - {name: level, type: int32}
      - {name: seen, type: timestamp}
)yaml";

std::vector<std::shared_ptr<const granary::ViewLayout>> MakeLayouts() {
  const granary::Definitions defs = granary::fuzz::FixedDefinitions(kDefinitions);
  std::vector<std::shared_ptr<const granary::ViewLayout>> out;
  for (const auto& view : defs.feature_views) {
    out.push_back(granary::ViewLayout::Make(defs, view, granary::Duration::Days(90)).ValueOrDie());
  }
  return out;
}

// Decodes `body` as serving reads it; false when it is not a body of `view`. Fills `values`.
bool Decode(const granary::ViewLayout& view, std::string_view body, granary::BodyHeader* header,
            std::vector<granary::Value>* values) {
  if (!granary::ParseBodyHeader(body, view.features().size(), header)) return false;
  std::vector<uint32_t> offsets(view.features().size());
  if (!granary::IndexBody(view, body, *header, offsets.data())) return false;
  values->clear();
  for (size_t f = 0; f < view.features().size(); ++f) {
    granary::ValueRef ref;
    ref.type = view.features()[f].type;
    if (offsets[f] != granary::kNullOffset) {
      if (offsets[f] > body.size()) std::abort();
      ref.data = body.data() + offsets[f];
    }
    values->push_back(ref.ToValue());
    if (!ref.is_null() && !ref.type.is_list &&
        (ref.type.scalar == granary::ScalarType::kString ||
         ref.type.scalar == granary::ScalarType::kBytes)) {
      std::string_view bytes = ref.AsBytes();
      if (bytes.data() < body.data() || bytes.data() + bytes.size() > body.data() + body.size()) {
        std::fprintf(stderr, "feature %zu reads outside the body\n", f);
        std::abort();
      }
    }
  }
  return true;
}

void CheckCanonical(const granary::ViewLayout& view, std::string_view body) {
  granary::BodyHeader header;
  std::vector<granary::Value> values;
  if (!Decode(view, body, &header, &values)) return;
  std::string canonical;
  if (!granary::EncodeBody(view, header.order, values, &canonical).ok()) {
    std::fprintf(stderr, "decoded values of '%s' do not encode\n", view.name().c_str());
    std::abort();
  }
  granary::BodyHeader header2;
  std::vector<granary::Value> values2;
  std::string again;
  if (!Decode(view, canonical, &header2, &values2) || header2.order.Compare(header.order) != 0 ||
      !granary::EncodeBody(view, header2.order, values2, &again).ok() || again != canonical) {
    std::fprintf(stderr, "the canonical body of '%s' is not a fixed point\n", view.name().c_str());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto layouts = MakeLayouts();
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // A copy of exactly the input's size, so that ASan sees any read past its end.
  const std::string body(in);
  for (const auto& view : layouts) CheckCanonical(*view, body);
  (void)granary::redis::ForEachSection(body, [&](uint32_t view_id, std::string_view section) {
    CheckCanonical(*layouts[view_id % layouts.size()], section);
  });
  return 0;
}
