#include "granary/aggregation/tiles.h"

#include <arrow/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "granary/aggregation/tile_partial.h"
#include "granary/aggregation/window_kernel.h"
#include "granary/common/hash.h"
#include "granary/types/arrow_convert.h"

namespace granary::aggregation {
namespace {

// t rounded down to a multiple of `span` (> 0), also before 1970.
int64_t FloorTo(int64_t t, int64_t span) {
  int64_t q = t / span * span;
  if (q > t) q -= span;
  return q;
}

}  // namespace

Duration RollupSpan(Duration granularity, Duration longest) {
  const int64_t g = granularity.micros;
  if (g <= 0 || longest.micros <= 0) return Duration();
  const Duration candidates[] = {Duration::Minutes(15), Duration::Hours(1), Duration::Hours(6),
                                 Duration::Days(1), Duration::Days(7)};
  const int64_t fine_only = (longest.micros + g - 1) / g;
  Duration best;
  int64_t best_cost = fine_only;
  for (Duration r : candidates) {
    if (r.micros <= g || r.micros % g != 0) continue;
    const int64_t cost = 2 * (r.micros / g) + (longest.micros + r.micros - 1) / r.micros;
    if (cost < best_cost) {
      best = r;
      best_cost = cost;
    }
  }
  return best;
}

int64_t TileSpec::ExpireBefore(int64_t now_micros) const {
  return WindowStart(now_micros, longest_window, granularity);
}

uint32_t TileSpec::Fingerprint() const {
  std::string text = fmt::format("granary.tiles.v1|{}", granularity.micros);
  for (const Item& item : items) {
    text += fmt::format("|{}:{}:{}", AggregationFunctionName(item.function), item.window.micros,
                        item.output.ToString());
  }
  const uint64_t h = Fnv1a64(text);
  return static_cast<uint32_t>(h ^ (h >> 32));
}

Result<TileSpec> TileSpecOf(const FeatureView& view) {
  TileSpec spec;
  spec.granularity = view.granularity.micros > 0 ? view.granularity : kDefaultGranularity;
  for (const Aggregation& a : view.aggregations) {
    if (!a.type) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': the type of aggregation '{}' is not known yet (its source has no "
          "data); give it `type:` or apply again once the source has data",
          view.name, a.name));
    }
    if (a.type->is_list) {
      return Status::InvalidArgument(fmt::format(
          "feature view '{}': aggregation '{}' is of a list type, which online tiles do not "
          "keep; read it offline",
          view.name, a.name));
    }
    spec.items.push_back({a.name, a.function, a.window, *a.type});
    if (a.window.micros > spec.longest_window.micros) spec.longest_window = a.window;
  }
  spec.rollup = RollupSpan(spec.granularity, spec.longest_window);
  return spec;
}

Status TileAccumulator::Add(const std::vector<std::string>& keys, const int64_t* times,
                            const std::vector<std::shared_ptr<arrow::Array>>& values,
                            const std::vector<std::shared_ptr<arrow::Array>>& wheres) {
  const size_t n_items = spec_.items.size();
  if (values.size() != n_items || wheres.size() != n_items) {
    return Status::Internal("TileAccumulator::Add: one values and where column per item");
  }
  std::vector<ValueType> types(n_items);
  for (size_t k = 0; k < n_items; ++k) {
    if (values[k] == nullptr) continue;
    GRANARY_ASSIGN_OR_RAISE(types[k], FromArrowType(*values[k]->type()));
    if (types[k].is_list) {
      return Status::InvalidArgument(
          fmt::format("aggregation '{}' reads a list column, which online tiles do not keep",
                      spec_.items[k].name));
    }
  }
  const int64_t g = spec_.granularity.micros;
  // The heap a map or set node takes beside its value (three pointers and a color), what the
  // allocator adds to every block (a header, rounding), and a std::string's own heap when its
  // bytes do not fit inline.
  constexpr int64_t kAlloc = 16;
  constexpr int64_t kNode = 32 + kAlloc;
  auto heap_of = [](const std::string& s) -> int64_t {
    return s.size() > 15 ? static_cast<int64_t>(s.capacity()) + 1 + kAlloc : 0;
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    const int64_t t = times[i];
    int64_t tile_start = (t / g) * g;
    if (t % g != 0 && t < 0) tile_start -= g;
    auto [entity, new_entity] = entities_.try_emplace(keys[i]);
    if (new_entity) {
      bytes_ += kNode +
                static_cast<int64_t>(sizeof(std::string) + sizeof(std::map<int64_t, Tile>)) +
                heap_of(entity->first);
    }
    std::map<int64_t, Tile>& tiles = entity->second;
    auto [it, fresh] = tiles.try_emplace(tile_start);
    Tile& tile = it->second;
    if (fresh) {
      tile.start = tile_start;
      tile.last_event = t;
      tile.parts.resize(n_items);
      ++tiles_;
      bytes_ +=
          kNode + kAlloc +
          static_cast<int64_t>(sizeof(int64_t) + sizeof(Tile) + n_items * sizeof(TilePartial));
    }
    tile.last_event = std::max(tile.last_event, t);
    for (size_t k = 0; k < n_items; ++k) {
      const arrow::Array* where = wheres[k].get();
      if (where != nullptr &&
          (where->IsNull(i) || !static_cast<const arrow::BooleanArray*>(where)->Value(i))) {
        continue;
      }
      Value v;
      if (values[k] != nullptr) {
        if (values[k]->IsNull(i)) continue;
        GRANARY_ASSIGN_OR_RAISE(v, ValueAt(*values[k], static_cast<int64_t>(i), types[k]));
      }
      TilePartial& part = tile.parts[k];
      const size_t distinct_before = part.distinct.size();
      MergePartial(spec_.items[k], &part, PartialOfEvent(spec_.items[k], v, t));
      if (part.distinct.size() != distinct_before) {
        // One value more (an event adds at most one): its node and its bytes.
        const int64_t value_bytes = v.is_null() ? 0 : static_cast<int64_t>(DistinctBytes(v).size());
        bytes_ += kNode + static_cast<int64_t>(sizeof(std::string)) +
                  (value_bytes > 15 ? value_bytes + 1 + kAlloc : 0);
      }
    }
  }
  return Status::OK();
}

void EncodeTileRecords(const TileSpec& spec, const std::map<int64_t, Tile>& tiles, std::string* out,
                       std::optional<RollupRange> rollups) {
  const size_t n_items = spec.items.size();
  std::string payload;
  for (const auto& [start, tile] : tiles) {
    payload.clear();
    for (size_t k = 0; k < n_items; ++k) EncodePartial(spec.items[k], tile.parts[k], &payload);
    PutLE(out, tile.start);
    PutLE(out, tile.last_event);
    PutLE(out, static_cast<uint32_t>(payload.size()));
    out->append(payload);
  }
  const int64_t r = spec.rollup.micros;
  if (!rollups || r <= 0) return;
  // One roll-up per coarse tile of the range: its tiles merged in time order, as a read of the
  // fine records would merge them.
  auto it = tiles.begin();
  while (it != tiles.end()) {
    const int64_t coarse = FloorTo(it->first, r);
    auto end = it;
    while (end != tiles.end() && FloorTo(end->first, r) == coarse) ++end;
    if (coarse >= rollups->from && coarse + (r - 1) <= rollups->through) {
      std::vector<TilePartial> merged(n_items);
      int64_t earliest_last = it->second.last_event;
      uint32_t covers = 0;
      for (auto t = it; t != end; ++t, ++covers) {
        earliest_last = std::min(earliest_last, t->second.last_event);
        for (size_t k = 0; k < n_items; ++k)
          MergePartial(spec.items[k], &merged[k], t->second.parts[k]);
      }
      payload.clear();
      PutLE(&payload, r);
      PutLE(&payload, covers);
      for (size_t k = 0; k < n_items; ++k) EncodePartial(spec.items[k], merged[k], &payload);
      PutLE(out, coarse);
      PutLE(out, earliest_last);
      PutLE(out, static_cast<uint32_t>(payload.size()) | kRollupBit);
      out->append(payload);
    }
    it = end;
  }
}

std::string MergeTileBody(std::string_view stored, uint32_t fingerprint,
                          std::optional<int64_t> replace_through, int64_t expire_before,
                          std::string_view records, int64_t replace_from) {
  std::string out;
  PutLE(&out, fingerprint);
  TileReader in(stored);
  uint32_t stored_fingerprint = 0;
  if (in.Get(&stored_fingerprint) && stored_fingerprint == fingerprint) {
    while (!in.done()) {
      const size_t at = in.pos();
      int64_t start, last;
      bool rollup;
      std::string_view payload;
      if (!in.GetRecord(&start, &last, &rollup, &payload)) break;  // a malformed tail: dropped
      if (start < expire_before ||
          (replace_through && last <= *replace_through && start >= replace_from)) {
        continue;
      }
      out.append(stored.substr(at, in.pos() - at));
    }
  }
  out.append(records);
  return out;
}

int64_t IncrementalTileStart(const TileSpec& spec, int64_t watermark) {
  const int64_t unit = spec.rollup.micros > 0 ? spec.rollup.micros : spec.granularity.micros;
  const int64_t next = watermark + 1;
  int64_t q = next / unit;
  if (next % unit != 0 && next < 0) --q;  // floor division before 1970
  return q * unit;
}

Status FoldTiles(const TileSpec& spec, std::string_view body, int64_t now_micros,
                 std::vector<Value>* values, int64_t* last_event, bool* matches) {
  values->clear();
  *last_event = 0;
  TileReader in(body);
  uint32_t fingerprint;
  if (!in.Get(&fingerprint)) {
    return Status::Corruption(
        fmt::format("a stored tile value of {} bytes has no fingerprint", body.size()));
  }
  *matches = fingerprint == spec.Fingerprint();
  if (!*matches) return Status::OK();
  const size_t n_items = spec.items.size();
  const int64_t g = spec.granularity.micros;
  const int64_t r = spec.rollup.micros;

  // Pass 1: the record headers, each with its place in stored order: fine records; roll-ups of
  // the spec's span.
  struct Fine {
    int64_t start;
    std::string_view payload;
    int64_t seq;  // place in stored order
    int coarse;   // index into `coarse` of its coarse tile when that has roll-ups, else -1
  };
  struct Rollup {
    int64_t start;
    uint32_t covers;
    std::string_view payload;  // the partials
    int64_t seq;
  };
  std::vector<Fine> fine;
  std::vector<Rollup> rollups;  // in stored order
  fine.reserve(body.size() / 64);
  for (int64_t seq = 0; !in.done(); ++seq) {
    int64_t start, last;
    bool rollup;
    std::string_view payload;
    if (!in.GetRecord(&start, &last, &rollup, &payload)) {
      return Status::Corruption(fmt::format(
          "a stored tile value of {} bytes is truncated at byte {}", body.size(), in.pos()));
    }
    if (!rollup) {
      fine.push_back({start, payload, seq, -1});  // counted for validity even when after now
      if (start <= now_micros) *last_event = std::max(*last_event, last);
      continue;
    }
    TileReader p(payload);
    int64_t span;
    uint32_t covers;
    if (!p.Get(&span) || !p.Get(&covers)) {
      return Status::Corruption(
          fmt::format("a stored tile roll-up of {} bytes has no span", payload.size()));
    }
    if (r <= 0 || span != r) continue;  // written under another roll-up span: not used
    rollups.push_back({start, covers, payload.substr(kRollupPrefix), seq});
  }

  // The valid roll-up of each coarse tile: one that covers as many fine records as are stored
  // before it in its coarse tile (tiles.h: then it covers exactly them). Among several, the last
  // stored. The fine records of its coarse tile stored after it (pushes since the
  // materialization that wrote it) are merged after it.
  struct Coarse {
    int64_t start;
    uint32_t seen = 0;  // fine records of the tile met so far in stored order
    const Rollup* valid = nullptr;
    int64_t valid_seq = -1;
  };
  std::vector<Coarse> coarse;
  bool any_after = false;  // a fine record stored after its coarse tile's valid roll-up
  if (!rollups.empty()) {
    std::vector<int64_t> starts;
    for (const Rollup& u : rollups) starts.push_back(u.start);
    std::sort(starts.begin(), starts.end());
    starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
    for (int64_t c : starts) coarse.push_back({c});
    auto index_of = [&](int64_t c) {
      auto at = std::lower_bound(starts.begin(), starts.end(), c);
      return at != starts.end() && *at == c ? static_cast<int>(at - starts.begin()) : -1;
    };
    for (Fine& f : fine) f.coarse = index_of(FloorTo(f.start, r));
    size_t i = 0;
    for (const Rollup& u : rollups) {
      for (; i < fine.size() && fine[i].seq < u.seq; ++i) {
        if (fine[i].coarse >= 0) ++coarse[fine[i].coarse].seen;
      }
      Coarse& c = coarse[index_of(u.start)];
      if (u.covers == c.seen) {
        c.valid = &u;
        c.valid_seq = u.seq;
      }
    }
    for (const Fine& f : fine) {
      any_after = any_after || (f.coarse >= 0 && coarse[f.coarse].valid != nullptr &&
                                f.seq > coarse[f.coarse].valid_seq);
    }
  }

  // Pass 2: per aggregation, the fine records of its window outside the coarse tiles that a
  // valid roll-up covers and that lie wholly in the window, then those roll-ups, then the fine
  // records stored after them in their coarse tiles. Only the last two sets share tiles, and
  // they are merged in stored order, so ties of first/last (events of one time share a tile)
  // go to the later record as in a fold of fine records alone.
  std::vector<int64_t> starts(n_items);
  for (size_t k = 0; k < n_items; ++k) {
    starts[k] = WindowStart(now_micros, spec.items[k].window, spec.granularity);
  }
  auto whole_in_window = [&](int64_t c, size_t k) {
    return c >= starts[k] && c + (r - g) <= now_micros;
  };
  std::vector<TilePartial> acc(n_items);
  std::vector<char> wanted(n_items);
  auto fold_payload = [&](std::string_view payload, int64_t bytes) -> Status {
    TileReader p(payload);
    for (size_t k = 0; k < n_items; ++k) {
      TilePartial part;
      if (!DecodePartial(spec.items[k], &p, &part)) {
        return Status::Corruption(fmt::format(
            "a stored tile of {} bytes does not match its aggregations' layout", bytes));
      }
      if (wanted[k]) MergePartial(spec.items[k], &acc[k], part);
    }
    return Status::OK();
  };
  auto valid_coarse_of = [&](const Fine& f) -> const Coarse* {
    return f.coarse >= 0 && coarse[f.coarse].valid != nullptr ? &coarse[f.coarse] : nullptr;
  };
  for (const Fine& f : fine) {
    if (f.start > now_micros) continue;  // a tile after now: not yet in any window
    const Coarse* c = valid_coarse_of(f);
    bool any = false;
    for (size_t k = 0; k < n_items; ++k) {
      wanted[k] = f.start >= starts[k] && (c == nullptr || !whole_in_window(c->start, k));
      any = any || wanted[k];
    }
    if (any) GRANARY_RETURN_NOT_OK(fold_payload(f.payload, static_cast<int64_t>(f.payload.size())));
  }
  for (const Coarse& c : coarse) {
    if (c.valid == nullptr) continue;
    bool any = false;
    for (size_t k = 0; k < n_items; ++k) {
      wanted[k] = whole_in_window(c.start, k);
      any = any || wanted[k];
    }
    if (any) {
      GRANARY_RETURN_NOT_OK(
          fold_payload(c.valid->payload, static_cast<int64_t>(c.valid->payload.size())));
    }
  }
  for (const Fine& f : fine) {
    if (!any_after) break;
    const Coarse* c = valid_coarse_of(f);
    if (c == nullptr || f.seq < c->valid_seq || f.start > now_micros) continue;
    bool any = false;
    for (size_t k = 0; k < n_items; ++k) {
      wanted[k] = whole_in_window(c->start, k);
      any = any || wanted[k];
    }
    if (any) GRANARY_RETURN_NOT_OK(fold_payload(f.payload, static_cast<int64_t>(f.payload.size())));
  }
  values->reserve(n_items);
  for (size_t k = 0; k < n_items; ++k) values->push_back(FinishPartial(spec.items[k], acc[k]));
  return Status::OK();
}

}  // namespace granary::aggregation
