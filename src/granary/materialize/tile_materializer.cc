#include "granary/materialize/tile_materializer.h"

#include <arrow/api.h>
#include <arrow/compute/api.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "granary/materialize/online_writer.h"
#include "granary/materialize/run_context.h"
#include "granary/offline/key_hash.h"
#include "granary/offline/partitioner.h"
#include "granary/online/tile_events.h"
#include "granary/online/view_layout.h"

namespace granary {
namespace {

// The online tiles of a view's aggregations (docs/ONLINE_LAYOUT.md, "Tiles"). A full run reads
// every event of the window any read at `end` or later needs, [ExpireBefore(end), end], and its
// tiles replace the stored records up to `end`: the tiles are then exactly what the source says
// (late and corrected events included). An incremental run after a watermark (`incremental_after`,
// reached under the same tile spec) reads only from the coarse tile holding the watermark's
// next microsecond (IncrementalTileStart) and replaces only the records from there on; the older
// ones are what the earlier runs read in full. Records pushed for events after `end` stay.
//
// Memory: the tiles are built in memory (a tile per entity and granularity step with events,
// about 150 bytes per aggregation), up to a quarter of the run's memory budget. Past it the run
// starts the read again and partitions the events by entity (EntityPartitioner, spilled past the
// other three quarters of the budget), then builds and writes the tiles of a group of entities at a
// time: every entity's events are in one group, so each entity's records are written once, whole,
// as in one pass. The events read before the switch are read twice.
class TileBuilder {
 public:
  TileBuilder(const RunContext& ctx, const FeatureView& view, const ViewLayout& tiles,
              const EventsRequest& request, std::optional<Timestamp> replace_from,
              ViewMaterialization* out)
      : ctx_(ctx),
        view_(view),
        tiles_(tiles),
        spec_(*tiles.tiles()),
        request_(request),
        replace_from_(replace_from),
        out_(out) {
    budget_ = std::max<int64_t>(int64_t{1} << 20, ctx.options.offline.embedded.memory_budget_bytes);
  }

  Status Run() {
    GRANARY_ASSIGN_OR_RAISE(auto events, ctx_.engine.ReadEvents(ctx_.defs, request_));
    auto progress = std::make_unique<Progress>(fmt::format("{}: tiles", view_.name), 0, "events",
                                               ctx_.options.progress);
    auto acc = std::make_unique<aggregation::TileAccumulator>(spec_);
    int64_t events_read = 0;
    while (true) {
      GRANARY_ASSIGN_OR_RAISE(auto batch, events->Next());
      if (batch == nullptr) break;
      GRANARY_RETURN_NOT_OK(AddEventsToTiles(tiles_, view_, *batch, acc.get()));
      events_read += batch->num_rows();
      progress->Add(batch->num_rows());
      Peak(*acc);
      if (acc->ApproximateBytes() > TileShare()) {
        // Outgrown: what an event costs in tiles, for sizing the groups.
        bytes_per_event_ = static_cast<double>(acc->ApproximateBytes()) /
                           static_cast<double>(std::max<int64_t>(1, events_read));
        out_->tile_events_read_twice = events_read;
        acc.reset();
        events.reset();
        progress.reset();
        ReleaseFreedMemory();
        return RunPartitioned();
      }
    }
    out_->tile_events = events_read;
    GRANARY_ASSIGN_OR_RAISE(int64_t written, Write(*acc));
    out_->tile_entities = written;
    return Status::OK();
  }

 private:
  // The accumulator's share; the partitioner (or, in one pass, the batch read) has the rest. A
  // quarter, because the estimate counts the blocks the tiles take, not what the allocator keeps
  // around them (measured: RSS grows by about 1.5x the estimate).
  int64_t TileShare() const { return budget_ / 4; }

  void Peak(const aggregation::TileAccumulator& acc) {
    out_->tile_peak_state_bytes = std::max(out_->tile_peak_state_bytes, acc.ApproximateBytes());
  }

  Result<int64_t> Write(const aggregation::TileAccumulator& acc) {
    EntityKeyColumn keys;
    std::vector<std::string> records;
    // Every event of [start, end] was read and the stored records up to `end` are replaced, so
    // the coarse tiles wholly inside get roll-ups (aggregation/tiles.h).
    TileWrites(spec_, acc, &keys, &records,
               aggregation::RollupRange{request_.start.micros, request_.end.micros});
    TileWriteOptions write;
    write.replace_through = request_.end;
    write.expire_before =
        Timestamp::FromMicros(spec_.ExpireBefore(ctx_.options.clock->Now().micros));
    write.replace_from = replace_from_;
    return ctx_.store.WriteTiles(tiles_, keys, records, write);
  }

  Status RunPartitioned() {
    GRANARY_ASSIGN_OR_RAISE(auto events, ctx_.engine.ReadEvents(ctx_.defs, request_));
    std::vector<std::string> key_names;
    for (const auto& k : tiles_.join_keys()) key_names.push_back(k.name);
    PartitionerOptions options;
    options.num_partitions = kPartitions;
    options.memory_budget_bytes = budget_ - TileShare();
    options.spill_parent = ctx_.options.offline.embedded.spill_dir;
    GRANARY_ASSIGN_OR_RAISE(auto partitioner,
                            EntityPartitioner::Make(events->schema(), key_names, options));
    int64_t events_read = 0;
    {
      Progress progress(fmt::format("{}: tiles, partitioning events", view_.name), 0, "events",
                        ctx_.options.progress);
      while (true) {
        GRANARY_ASSIGN_OR_RAISE(auto batch, events->Next());
        if (batch == nullptr) break;
        GRANARY_RETURN_NOT_OK(partitioner->Append(batch));
        events_read += batch->num_rows();
        progress.Add(batch->num_rows());
      }
    }
    GRANARY_RETURN_NOT_OK(partitioner->Finish());
    events.reset();
    out_->tile_events = events_read;
    out_->tile_partitions = kPartitions;
    out_->tile_bytes_spilled = partitioner->stats().bytes_spilled;

    // Partitions in order, as many at a time as their estimated tiles fit the share; a
    // partition larger than the share alone is split again by the low bits of the key hash.
    int64_t written = 0;
    auto acc = std::make_unique<aggregation::TileAccumulator>(spec_);
    auto flush = [&]() -> Status {
      if (acc->entities().empty()) return Status::OK();
      GRANARY_ASSIGN_OR_RAISE(int64_t n, Write(*acc));
      written += n;
      ++out_->tile_groups;
      acc = std::make_unique<aggregation::TileAccumulator>(spec_);
      return Status::OK();
    };
    for (int p = 0; p < kPartitions; ++p) {
      if (IsCancelled(ctx_.cancelled)) return Status::Cancelled("materialization cancelled");
      GRANARY_ASSIGN_OR_RAISE(auto table, partitioner->ReadPartition(p));
      partitioner->Release(p);
      if (table->num_rows() == 0) continue;
      const double estimate = bytes_per_event_ * static_cast<double>(table->num_rows());
      const auto share = static_cast<double>(TileShare());
      if (static_cast<double>(acc->ApproximateBytes()) + estimate > share) {
        GRANARY_RETURN_NOT_OK(flush());
      }
      const int splits = std::max(1, static_cast<int>(std::ceil(estimate / share)));
      auto combined_or = table->CombineChunksToBatch();
      if (!combined_or.ok()) return Status::Internal(combined_or.status().ToString());
      std::shared_ptr<arrow::RecordBatch> combined = *std::move(combined_or);
      table.reset();
      if (splits == 1) {
        GRANARY_RETURN_NOT_OK(AddEventsToTiles(tiles_, view_, *combined, acc.get()));
        Peak(*acc);
        continue;
      }
      GRANARY_ASSIGN_OR_RAISE(auto parts, SplitByKeyHash(combined, key_names, splits));
      combined.reset();
      for (auto& part : parts) {
        if (part->num_rows() == 0) continue;
        GRANARY_RETURN_NOT_OK(AddEventsToTiles(tiles_, view_, *part, acc.get()));
        part.reset();
        Peak(*acc);
        GRANARY_RETURN_NOT_OK(flush());
      }
    }
    GRANARY_RETURN_NOT_OK(flush());
    out_->tile_entities = written;
    return Status::OK();
  }

  // The rows of `batch` in `splits` groups by the low half of their key hash (the partitioner
  // used the high half), each group's rows in their order.
  static Result<std::vector<std::shared_ptr<arrow::RecordBatch>>> SplitByKeyHash(
      const std::shared_ptr<arrow::RecordBatch>& batch, const std::vector<std::string>& key_names,
      int splits) {
    std::vector<std::shared_ptr<arrow::Array>> key_arrays;
    for (const auto& name : key_names) {
      auto column = batch->GetColumnByName(name);
      if (column == nullptr) {
        return Status::Internal(fmt::format("the events have no join key column '{}'", name));
      }
      key_arrays.push_back(std::move(column));
    }
    GRANARY_ASSIGN_OR_RAISE(KeyColumns keys, KeyColumns::Make(std::move(key_arrays)));
    std::vector<uint64_t> hashes(static_cast<size_t>(batch->num_rows()));
    keys.HashRows(hashes.data());
    std::vector<arrow::Int64Builder> rows(static_cast<size_t>(splits));
    for (int64_t i = 0; i < batch->num_rows(); ++i) {
      const auto group = static_cast<size_t>((hashes[static_cast<size_t>(i)] & 0xffffffffu) %
                                             static_cast<uint64_t>(splits));
      if (!rows[group].Append(i).ok()) return Status::Internal("out of memory");
    }
    std::vector<std::shared_ptr<arrow::RecordBatch>> out;
    for (auto& builder : rows) {
      std::shared_ptr<arrow::Array> indices;
      if (!builder.Finish(&indices).ok()) return Status::Internal("out of memory");
      auto taken = arrow::compute::Take(arrow::Datum(batch), arrow::Datum(indices));
      if (!taken.ok()) return Status::Internal(taken.status().ToString());
      out.push_back(taken->record_batch());
    }
    return out;
  }

  static constexpr int kPartitions = 64;
  const RunContext& ctx_;
  const FeatureView& view_;
  const ViewLayout& tiles_;
  const aggregation::TileSpec& spec_;
  const EventsRequest& request_;
  std::optional<Timestamp> replace_from_;
  ViewMaterialization* out_;
  int64_t budget_ = 0;
  double bytes_per_event_ = 0;
};

}  // namespace

Status MaterializeTiles(const RunContext& ctx, const FeatureView& view, const ViewLayout& tiles,
                        std::optional<Timestamp> incremental_after, ViewMaterialization* out) {
  const aggregation::TileSpec& spec = *tiles.tiles();
  CancelFlag cancel(ctx.cancelled);
  EventsRequest request;
  request.view = &view;
  request.start = Timestamp::FromMicros(spec.ExpireBefore(out->end.micros));
  std::optional<Timestamp> replace_from;
  if (incremental_after) {
    const int64_t from = aggregation::IncrementalTileStart(spec, incremental_after->micros);
    if (from > request.start.micros) {
      request.start = Timestamp::FromMicros(from);
      replace_from = request.start;
    }
  }
  out->tiles_from = replace_from;
  request.end = out->end;
  request.cancel = &cancel;
  return TileBuilder(ctx, view, tiles, request, replace_from, out).Run();
}

}  // namespace granary
