// Fuzzes the entity rows that any Arrow Flight client uploads to `granary serve-offline` (Feast's
// remote offline store, get_historical_features' DoExchange): the bytes of an Arrow IPC stream
// (a schema message, then record batches, as Flight carries them), decoded by Arrow's IPC reader,
// made one table by the server's own check (UploadedEntityTable), then answered as the server
// answers it: a training set from the embedded engine, over a small Parquet source written once
// per process, with the view's features asked by name. Property beyond "never crash": a
// retrieval that succeeds has one output row per entity row.
#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "fixed_definitions.h"
#include "granary/offline/embedded/embedded_engine.h"
#include "granary/offline/table_io.h"
#include "granary/serving/flight/feast_offline_command.h"
#include "scratch_dir.h"

namespace {

constexpr const char* kDefinitions = R"yaml(
entities:
  - {name: driver, join_keys: [driver_id], value_type: int64}
  - {name: city, join_keys: [city], value_type: string}
data_sources:
  - {name: trips, path: trips.parquet, timestamp_field: event_timestamp}
feature_views:
  - name: driver_city
    entities: [driver, city]
    source: trips
    ttl: 30d
    schema:
      - {name: trips, type: int64}
      - {name: rating, type: float64}
      - {name: tags, type: list<string>}
)yaml";

struct Fixture {
  granary::Definitions defs;
  std::unique_ptr<granary::OfflineEngine> engine;
};

const Fixture& GetFixture() {
  static const Fixture fixture = [] {
    const auto& repo = granary::fuzz::ScratchDir("granary-fuzz-flight-").path();
    arrow::Int64Builder ids, trips;
    arrow::StringBuilder cities;
    arrow::TimestampBuilder times(arrow::timestamp(arrow::TimeUnit::MICRO, "UTC"),
                                  arrow::default_memory_pool());
    arrow::DoubleBuilder ratings;
    auto tags = std::make_shared<arrow::StringBuilder>();
    arrow::ListBuilder tag_lists(arrow::default_memory_pool(), tags);
    for (int i = 0; i < 24; ++i) {
      (void)ids.Append(1001 + i % 4);
      (void)cities.Append(i % 3 == 0 ? "Oslo" : "Lima");
      (void)times.Append(int64_t{1'700'000'000'000'000} + int64_t{i} * 3'600'000'000);
      (void)trips.Append(i);
      (void)ratings.Append(4.5 - i * 0.1);
      (void)tag_lists.Append();
      (void)tags->Append(i % 2 ? "airport" : "city");
    }
    auto column = [](arrow::ArrayBuilder& b) { return b.Finish().ValueOrDie(); };
    auto table = arrow::Table::Make(
        arrow::schema(
            {arrow::field("driver_id", arrow::int64()), arrow::field("city", arrow::utf8()),
             arrow::field("event_timestamp", times.type()), arrow::field("trips", arrow::int64()),
             arrow::field("rating", arrow::float64()),
             arrow::field("tags", arrow::list(arrow::utf8()))}),
        {column(ids), column(cities), column(times), column(trips), column(ratings),
         column(tag_lists)});
    granary::Status written = granary::WriteTableFile(*table, repo / "trips.parquet");
    if (!written.ok()) {
      std::fprintf(stderr, "cannot write the fuzz source: %s\n", written.ToString().c_str());
      std::abort();
    }
    Fixture f;
    f.defs = granary::fuzz::FixedDefinitions(kDefinitions);
    granary::EmbeddedEngineOptions options;
    options.threads = 1;
    options.spill_dir = repo;
    f.engine = granary::MakeEmbeddedEngine(repo, options);
    return f;
  }();
  return fixture;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = GetFixture();
  auto input = std::make_shared<arrow::io::BufferReader>(
      std::make_shared<arrow::Buffer>(data, static_cast<int64_t>(size)));
  auto reader = arrow::ipc::RecordBatchStreamReader::Open(input);
  if (!reader.ok()) return 0;
  std::vector<std::shared_ptr<arrow::RecordBatch>> batches;
  while (true) {
    std::shared_ptr<arrow::RecordBatch> batch;
    if (!(*reader)->ReadNext(&batch).ok()) return 0;  // Flight fails the call the same way
    if (batch == nullptr) break;
    batches.push_back(std::move(batch));
  }
  auto entities = granary::serving::UploadedEntityTable((*reader)->schema(), batches);
  if (!entities.ok() || granary::serving::IsFeastPlaceholder(**entities)) return 0;
  granary::HistoricalRequest request;
  request.entities = *entities;
  request.entities_name = "the entity_df the client uploaded";
  request.features = {{"driver_city", "trips"}, {"driver_city", "rating"}, {"driver_city", "tags"}};
  auto stream = f.engine->GetHistoricalFeatures(f.defs, request);
  if (!stream.ok()) return 0;
  int64_t rows = 0;
  while (true) {
    auto batch = (*stream)->Next();
    if (!batch.ok()) return 0;
    if (*batch == nullptr) break;
    rows += (*batch)->num_rows();
  }
  if (rows != (*entities)->num_rows()) {
    std::fprintf(stderr, "%lld entity rows gave %lld output rows\n",
                 static_cast<long long>((*entities)->num_rows()), static_cast<long long>(rows));
    std::abort();
  }
  return 0;
}
