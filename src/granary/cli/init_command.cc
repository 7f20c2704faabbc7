// init: scaffolds a feature repository that applies as is, with a small sample data set.
#include <arrow/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <parquet/arrow/writer.h>

#include <filesystem>
#include <fstream>

#include "granary/cli/cli.h"
#include "granary/common/clock.h"
#include "granary/types/arrow_convert.h"

namespace granary::cli {
namespace {

constexpr const char* kConfig = R"(# Granary repository configuration. See docs/CONCEPTS.md.
project: {project}
registry: data/registry.db
offline_store: {{type: file}}
online_store: {{type: rocksdb, path: data/online}}
# online_store: {{type: redis, connection_string: "127.0.0.1:6379,password=${{REDIS_PASSWORD}}"}}
# online_store: {{type: redis_cluster, nodes: ["127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"]}}
)";

constexpr const char* kDefinitions =
    R"(# Definitions: entities, data sources, feature views and feature services.
entities:
  - name: customer
    join_keys: [customer_id]
    value_type: int64
    description: A parking customer

data_sources:
  - name: customer_stats_source
    type: file
    path: data/customer_stats.parquet
    timestamp_field: event_timestamp
    created_timestamp_column: created

feature_views:
  - name: customer_stats
    entities: [customer]
    source: customer_stats_source
    ttl: 90d
    online: true
    schema:
      - {name: payment_failures_30d, type: int64, description: Failed payments in the last 30 days}
      - {name: failure_rate_90d, type: float64, description: Share of failed payments over 90 days}
      - {name: tenure_days, type: int64}
    tags: {team: risk}

feature_services:
  - name: customer_risk_v1
    features:
      - customer_stats
)";

// Five customers, one row a day for the three days up to today (midnight UTC), so that the rows
// are inside the view's 90-day ttl and `materialize-incremental now` serves them.
Status WriteSampleData(const std::filesystem::path& path, Timestamp now) {
  std::vector<Value> ids, ts, created, failures, rates, tenure;
  const int64_t day_micros = Duration::Days(1).micros;
  const Timestamp today{now.micros - ((now.micros % day_micros) + day_micros) % day_micros};
  const Timestamp start = today - Duration::Days(2);
  for (int day = 0; day < 3; ++day) {
    for (int64_t c = 1001; c <= 1005; ++c) {
      ids.emplace_back(c);
      Timestamp t = start + Duration::Days(day);
      ts.emplace_back(t);
      created.emplace_back(t + Duration::Minutes(5));
      failures.emplace_back(int64_t{(c * 7 + day) % 4});
      rates.emplace_back(static_cast<double>((c * 13 + day) % 10) / 100.0);
      tenure.emplace_back(int64_t{100 + (c - 1000) * 30 + day});
    }
  }
  using S = ScalarType;
  std::vector<std::pair<std::string, std::pair<ValueType, std::vector<Value>*>>> columns = {
      {"customer_id", {ValueType::Scalar(S::kInt64), &ids}},
      {"event_timestamp", {ValueType::Scalar(S::kTimestamp), &ts}},
      {"created", {ValueType::Scalar(S::kTimestamp), &created}},
      {"payment_failures_30d", {ValueType::Scalar(S::kInt64), &failures}},
      {"failure_rate_90d", {ValueType::Scalar(S::kFloat64), &rates}},
      {"tenure_days", {ValueType::Scalar(S::kInt64), &tenure}}};
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (auto& [name, column] : columns) {
    GRANARY_ASSIGN_OR_RAISE(auto array, MakeArray(column.first, *column.second));
    fields.push_back(arrow::field(name, ToArrowType(column.first)));
    arrays.push_back(array);
  }
  auto table = arrow::Table::Make(arrow::schema(fields), arrays);
  auto out = arrow::io::FileOutputStream::Open(path.string());
  if (!out.ok()) return Status::IOError(out.status().ToString());
  auto st = parquet::arrow::WriteTable(*table, arrow::default_memory_pool(), *out, 1 << 20);
  if (st.ok()) st = (*out)->Close();
  if (!st.ok())
    return Status::IOError(fmt::format("cannot write {}: {}", path.string(), st.ToString()));
  return Status::OK();
}

void RunInit(Context& ctx, const std::string& name) {
  if (name.empty() || name.find_first_of("/ \\") != std::string::npos) {
    return ctx.Fail(Status::InvalidArgument(
        fmt::format("invalid project name '{}': use letters, digits, '_' or '-'", name)));
  }
  std::filesystem::path dir = std::filesystem::path(ctx.repo) / name;
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return ctx.Fail(Status::AlreadyExists(
        fmt::format("{} exists and is not empty; choose another name or remove it", dir.string())));
  }
  std::filesystem::create_directories(dir / "data", ec);
  if (ec)
    return ctx.Fail(
        Status::IOError(fmt::format("cannot create {}: {}", dir.string(), ec.message())));
  std::ofstream(dir / "granary.yaml")
      << fmt::format(fmt::runtime(kConfig), fmt::arg("project", name));
  std::ofstream(dir / "features.yaml") << kDefinitions;
  std::ofstream(dir / ".gitignore") << "data/registry.db*\ndata/online/\n";
  Status st = WriteSampleData(dir / "data/customer_stats.parquet", SystemClock::Default().Now());
  if (!st.ok()) return ctx.Fail(st);
  fmt::print(
      "Created feature repository {}:\n  granary.yaml\n  features.yaml\n"
      "  data/customer_stats.parquet (sample data: customers 1001-1005, the last three days)\n"
      "Next:\n"
      "  cd {}\n"
      "  granary apply                           # store the definitions in the registry\n"
      "  granary materialize-incremental now     # load the latest values into the online store\n"
      "  granary get-online-features --feature-service customer_risk_v1 "
      "--entity customer_id=1001,1002\n",
      dir.string(), dir.string());
}

}  // namespace

void RegisterInitCommand(CLI::App& app, Context& ctx) {
  auto name = std::make_shared<std::string>();
  auto* init = app.add_subcommand("init", "Create a new feature repository NAME (under -C DIR)");
  init->add_option("name", *name, "Project and folder name")->required();
  init->callback([&ctx, name] { RunInit(ctx, *name); });
}

}  // namespace granary::cli
