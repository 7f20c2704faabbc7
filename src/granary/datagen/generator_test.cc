// Tests of a whole generated data set: files, schemas, row counts, determinism, no timestamp after
// the snapshot, the customer window features against a brute-force recomputation from the raw
// tables, and the Delta log.
#include "granary/datagen/generator.h"

#include <arrow/api.h>
#include <arrow/io/api.h>
#include <gtest/gtest.h>
#include <parquet/arrow/reader.h>

#include <fstream>
#include <map>
#include <set>

#include "granary/common/temp_dir.h"
#include "granary/datagen/bay_simulator.h"
#include "granary/datagen/tables.h"
#include "granary/datagen/world.h"
#include "granary/offline/delta_log.h"

namespace granary::datagen {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kDay = 86'400'000'000LL;

DatagenOptions TestOptions(const fs::path& out, int threads) {
  DatagenOptions o;
  o.scale = ScaleParams{"test", 600, 12, 8, 40, 100, 4};
  o.seed = 11;
  o.end = ParseTimestamp("2026-03-02").ValueOrDie();
  o.out = out;
  o.threads = threads;
  o.progress.mode = ProgressOptions::Mode::kSilent;
  return o;
}

std::shared_ptr<arrow::Table> ReadParquet(const fs::path& path) {
  std::vector<fs::path> files;
  if (fs::is_directory(path)) {
    for (const auto& e : fs::recursive_directory_iterator(path)) {
      if (e.path().extension() == ".parquet") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  std::vector<std::shared_ptr<arrow::Table>> tables;
  for (const auto& f : files) {
    auto in = arrow::io::ReadableFile::Open(f.string()).ValueOrDie();
    auto reader = parquet::arrow::OpenFile(in, arrow::default_memory_pool()).ValueOrDie();
    tables.push_back(reader->ReadTable().ValueOrDie());
  }
  return arrow::ConcatenateTables(tables).ValueOrDie()->CombineChunks().ValueOrDie();
}

template <typename ArrayType>
const ArrayType& Col(const arrow::Table& t, const std::string& name) {
  auto c = t.GetColumnByName(name);
  EXPECT_NE(c, nullptr) << name;
  return static_cast<const ArrayType&>(*c->chunk(0));
}
using I64 = arrow::Int64Array;
using Ts = arrow::TimestampArray;

class GeneratedDataSet : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir(TempDir::Make("granary-datagen-").ValueOrDie());
    auto summary = Generate(TestOptions(dir_->path() / "out", 2));
    ASSERT_TRUE(summary.ok()) << summary.status().ToString();
    summary_ = new DatagenSummary(*summary);
  }
  static void TearDownTestSuite() {
    delete summary_;
    delete dir_;
  }
  static fs::path Out() { return dir_->path() / "out"; }
  static const TableSummary& Table(const std::string& name) {
    for (const auto& t : summary_->tables) {
      if (t.name == name) return t;
    }
    ADD_FAILURE() << "no table " << name;
    return summary_->tables.front();
  }
  static TempDir* dir_;
  static DatagenSummary* summary_;
};
TempDir* GeneratedDataSet::dir_ = nullptr;
DatagenSummary* GeneratedDataSet::summary_ = nullptr;

TEST_F(GeneratedDataSet, WritesEveryTableWithItsSchemaAndTheReportedRowCounts) {
  const std::map<std::string, std::shared_ptr<arrow::Schema>> schemas = {
      {"customers.parquet", CustomersSchema()},
      {"parking_sessions.parquet", SessionsSchema()},
      {"payments.parquet", PaymentsSchema()},
      {"disputes.parquet", DisputesSchema()},
      {"violations.parquet", ViolationsSchema()},
      {"customer_profiles.parquet", CustomerProfilesSchema()},
      {"customer_payments.parquet", CustomerPaymentsSchema()},
      {"bays.parquet", BaysSchema()},
      {"local_events.parquet", LocalEventsSchema()},
      {"holidays.parquet", HolidaysSchema()},
      {"customer_risk_labels.parquet", CustomerRiskLabelsSchema()},
      {"bay_occupancy", BayOccupancySchema(true)},
      {"bay_demand_labels", BayDemandLabelsSchema()}};
  for (const auto& [path, schema] : schemas) {
    SCOPED_TRACE(path);
    auto table = ReadParquet(Out() / path);
    EXPECT_TRUE(table->schema()->Equals(*schema)) << table->schema()->ToString();
    bool reported = false;
    for (const auto& t : summary_->tables) {
      if (t.path == path) {
        EXPECT_EQ(t.rows, table->num_rows());
        reported = true;
      }
    }
    EXPECT_TRUE(reported);
  }
  EXPECT_TRUE(fs::exists(Out() / "datagen.json"));
  for (const auto& e : fs::directory_iterator(Out())) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp-datagen", 0), 0u) << "left behind";
  }
}

TEST_F(GeneratedDataSet, RowCountsFollowTheScale) {
  const DatagenOptions o = TestOptions(Out(), 2);
  EXPECT_EQ(Table("customers").rows, o.scale.customers);
  EXPECT_EQ(Table("bay_occupancy").rows, o.scale.bays * o.scale.days * kTicksPerDay);
  EXPECT_EQ(Table("bay_occupancy_delta").rows, Table("bay_occupancy").rows);
  // One Delta file per day per group of bays (12 bays in groups of 4), one Parquet file per
  // month per group.
  EXPECT_EQ(Table("bay_occupancy_delta").files, o.scale.days * 3);
  auto bays = ReadParquet(Out() / "bays.parquet");
  std::set<int64_t> ids;
  const auto& id = Col<I64>(*bays, "parking_bay_id");
  for (int64_t i = 0; i < id.length(); ++i) ids.insert(id.Value(i));
  EXPECT_EQ(static_cast<int64_t>(ids.size()), o.scale.bays);
  for (const char* t : {"parking_sessions", "payments", "disputes", "violations",
                        "customer_profiles", "customer_payments"}) {
    EXPECT_GT(Table(t).rows, 0) << t;
  }
}

TEST_F(GeneratedDataSet, NoTimestampIsLaterThanTheSnapshot) {
  const Timestamp end = TestOptions(Out(), 2).end;
  for (const char* path : {"customers.parquet", "parking_sessions.parquet", "payments.parquet",
                           "disputes.parquet", "violations.parquet", "customer_profiles.parquet",
                           "customer_payments.parquet", "bays.parquet", "local_events.parquet",
                           "customer_risk_labels.parquet", "bay_occupancy", "bay_demand_labels"}) {
    auto table = ReadParquet(Out() / path);
    for (const auto& field : table->schema()->fields()) {
      if (field->type()->id() != arrow::Type::TIMESTAMP) continue;
      const auto& ts = Col<Ts>(*table, field->name());
      for (int64_t i = 0; i < ts.length(); ++i) {
        if (ts.IsValid(i)) {
          ASSERT_LE(ts.Value(i), end.micros) << path << "." << field->name() << " row " << i;
        }
      }
    }
  }
}

TEST_F(GeneratedDataSet, SameSeedGivesTheSameBytesWhateverTheThreadCount) {
  auto other = TempDir::Make("granary-datagen-").ValueOrDie();
  ASSERT_TRUE(Generate(TestOptions(other.path(), 1)).ok());
  size_t compared = 0;
  for (const auto& e : fs::recursive_directory_iterator(Out())) {
    if (!e.is_regular_file()) continue;
    const fs::path rel = fs::relative(e.path(), Out());
    auto slurp = [](const fs::path& p) {
      std::ifstream in(p, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    };
    ASSERT_TRUE(fs::exists(other.path() / rel)) << rel;
    EXPECT_EQ(slurp(e.path()), slurp(other.path() / rel)) << rel;
    ++compared;
  }
  EXPECT_GT(compared, 70u);

  // Another seed gives other data.
  auto third = TempDir::Make("granary-datagen-").ValueOrDie();
  DatagenOptions o = TestOptions(third.path(), 2);
  o.seed = 12;
  ASSERT_TRUE(Generate(o).ok());
  auto a = ReadParquet(Out() / "payments.parquet");
  auto b = ReadParquet(third.path() / "payments.parquet");
  EXPECT_FALSE(a->Equals(*b));
}

// Every customer_payments row equals the windows recomputed from the raw event tables, counting
// only events ingested by the row's `created`; and the rows are complete: at every midnight the
// latest row holds the windows as of that midnight.
TEST_F(GeneratedDataSet, EventTablesAreInTimeOrderAndNoSpillIsLeft) {
  for (const char* file :
       {"parking_sessions.parquet", "payments.parquet", "disputes.parquet", "violations.parquet",
        "customer_profiles.parquet", "customer_payments.parquet", "customer_risk_labels.parquet"}) {
    auto t = ReadParquet(Out() / file);
    const auto& ts = Col<Ts>(*t, "event_timestamp");
    ASSERT_GT(t->num_rows(), 0) << file;
    for (int64_t i = 1; i < t->num_rows(); ++i) {
      ASSERT_LE(ts.Value(i - 1), ts.Value(i)) << file << " row " << i;
    }
  }
  for (const auto& e : fs::recursive_directory_iterator(Out())) {
    EXPECT_EQ(e.path().string().find(".spill"), std::string::npos) << e.path();
  }
}

TEST_F(GeneratedDataSet, CustomerWindowsEqualABruteForceRecomputationFromTheRawEvents) {
  struct Ev {
    int64_t ts, ingested;
    int kind;  // 0 payment ok, 1 payment failed, 2 dispute, 3 chargeback, 4 violation, 5 session
    int64_t length;
  };
  std::map<int64_t, std::vector<Ev>> events;
  {
    auto t = ReadParquet(Out() / "payments.parquet");
    const auto& status = Col<arrow::StringArray>(*t, "status");
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      events[Col<I64>(*t, "customer_id").Value(i)].push_back(
          {Col<Ts>(*t, "event_timestamp").Value(i), Col<Ts>(*t, "ingested_at").Value(i),
           status.GetView(i) == "failed" ? 1 : 0, 0});
    }
    t = ReadParquet(Out() / "disputes.parquet");
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      events[Col<I64>(*t, "customer_id").Value(i)].push_back(
          {Col<Ts>(*t, "event_timestamp").Value(i), Col<Ts>(*t, "ingested_at").Value(i),
           Col<arrow::StringArray>(*t, "kind").GetView(i) == "chargeback" ? 3 : 2, 0});
    }
    t = ReadParquet(Out() / "violations.parquet");
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      events[Col<I64>(*t, "customer_id").Value(i)].push_back(
          {Col<Ts>(*t, "event_timestamp").Value(i), Col<Ts>(*t, "ingested_at").Value(i), 4, 0});
    }
    t = ReadParquet(Out() / "parking_sessions.parquet");
    for (int64_t i = 0; i < t->num_rows(); ++i) {
      const int64_t end = Col<Ts>(*t, "event_timestamp").Value(i);
      events[Col<I64>(*t, "customer_id").Value(i)].push_back(
          {end, Col<Ts>(*t, "ingested_at").Value(i), 5,
           end - Col<Ts>(*t, "start_timestamp").Value(i)});
    }
  }
  struct Expected {
    int64_t p30 = 0, f30 = 0, p90 = 0, f90 = 0, cb = 0, disputes = 0, violations = 0, sessions = 0,
            length = 0;
    bool operator==(const Expected&) const = default;
  };
  auto brute = [&](int64_t customer, int64_t t, int64_t created) {
    Expected e;
    for (const Ev& ev : events[customer]) {
      if (ev.ts > t || ev.ts <= t - 90 * kDay || ev.ingested > created) continue;
      const bool in30 = ev.ts > t - 30 * kDay;
      switch (ev.kind) {
        case 1:
          ++e.f90;
          if (in30) ++e.f30;
          [[fallthrough]];
        case 0:
          ++e.p90;
          if (in30) ++e.p30;
          break;
        case 2:
          ++e.disputes;
          break;
        case 3:
          ++e.cb;
          break;
        case 4:
          ++e.violations;
          break;
        case 5:
          ++e.sessions;
          e.length += ev.length;
          break;
      }
    }
    return e;
  };

  auto stats = ReadParquet(Out() / "customer_payments.parquet");
  const auto& customer = Col<I64>(*stats, "customer_id");
  const auto& ts = Col<Ts>(*stats, "event_timestamp");
  const auto& created = Col<Ts>(*stats, "created");
  const auto& rate30 = Col<arrow::DoubleArray>(*stats, "failure_rate_30d");
  const auto& avg = Col<arrow::DoubleArray>(*stats, "avg_session_minutes_90d");
  // Latest row per (customer, midnight) by created: the final values of that day.
  std::map<std::pair<int64_t, int64_t>, std::pair<int64_t, Expected>> final_rows;
  int64_t backfills = 0, late_backfills = 0;
  for (int64_t i = 0; i < stats->num_rows(); ++i) {
    SCOPED_TRACE(testing::Message() << "row " << i);
    const int64_t c = customer.Value(i), t = ts.Value(i), cr = created.Value(i);
    ASSERT_EQ(t % kDay, 0);
    ASSERT_GE(cr, t + 2 * 3'600'000'000LL);
    Expected got{Col<I64>(*stats, "payments_30d").Value(i),
                 Col<I64>(*stats, "payment_failures_30d").Value(i),
                 Col<I64>(*stats, "payments_90d").Value(i),
                 Col<I64>(*stats, "payment_failures_90d").Value(i),
                 Col<I64>(*stats, "chargebacks_90d").Value(i),
                 Col<I64>(*stats, "disputes_90d").Value(i),
                 Col<I64>(*stats, "violations_90d").Value(i),
                 Col<I64>(*stats, "sessions_90d").Value(i),
                 0};
    const Expected want = brute(c, t, cr);
    got.length = want.length;  // compared through the average below
    ASSERT_EQ(got, want);
    ASSERT_EQ(rate30.IsValid(i), want.p30 > 0);
    if (want.p30 > 0) {
      ASSERT_EQ(rate30.Value(i), static_cast<double>(want.f30) / static_cast<double>(want.p30));
    }
    ASSERT_EQ(avg.IsValid(i), want.sessions > 0);
    if (want.sessions > 0) {
      ASSERT_EQ(avg.Value(i),
                static_cast<double>(want.length) / static_cast<double>(want.sessions) / 60e6);
    }
    auto [it, inserted] = final_rows.try_emplace({c, t}, cr, want);
    if (!inserted) {
      ++backfills;
      if (cr > t + kDay) ++late_backfills;
      ASSERT_GT(cr, it->second.first) << "rows of one day are in created order";
      it->second = {cr, want};
    }
  }
  EXPECT_GT(backfills, 0) << "late events should cause backfilled rows";
  EXPECT_GT(late_backfills, 0);

  // Completeness: at each midnight up to 5 days before the end (late events arrive within 4
  // days), the latest row at or before it equals the windows at that midnight.
  const World w = MakeWorld(TestOptions(Out(), 2));
  int64_t checked = 0;
  for (int64_t c = 1; c <= 600; c += 7) {
    for (int64_t t = w.start.micros; t <= w.end.micros - 5 * kDay; t += kDay) {
      auto it = final_rows.upper_bound({c, t});
      const bool has_row = it != final_rows.begin() && std::prev(it)->first.first == c;
      const Expected want = brute(c, t, INT64_MAX);
      if (!has_row) {
        EXPECT_EQ(want, Expected{}) << "customer " << c << " has events but no row at " << t;
        continue;
      }
      EXPECT_EQ(std::prev(it)->second.second, want) << "customer " << c << " at " << t;
      ++checked;
    }
  }
  EXPECT_GT(checked, 500);
}

TEST_F(GeneratedDataSet, TrainingLabelsLookForwardFromTheirTimestamp) {
  const World w = MakeWorld(TestOptions(Out(), 2));
  // Demand: the mean occupancy of the next 4 ticks of the same bay, recomputed from telemetry.
  auto occupancy = ReadParquet(Out() / "bay_occupancy");
  std::map<std::pair<int64_t, int64_t>, int32_t> occupied;
  for (int64_t i = 0; i < occupancy->num_rows(); ++i) {
    occupied[{Col<I64>(*occupancy, "parking_bay_id").Value(i),
              Col<Ts>(*occupancy, "event_timestamp").Value(i)}] =
        Col<arrow::Int32Array>(*occupancy, "occupied").Value(i);
  }
  auto demand = ReadParquet(Out() / "bay_demand_labels");
  EXPECT_EQ(demand->num_rows(), 12 * 40);
  for (int64_t i = 0; i < demand->num_rows(); ++i) {
    const int64_t bay = Col<I64>(*demand, "parking_bay_id").Value(i);
    const int64_t t = Col<Ts>(*demand, "event_timestamp").Value(i);
    int64_t sum = 0;
    for (int k = 1; k <= 4; ++k) {
      auto it = occupied.find({bay, t + k * kTick.micros});
      ASSERT_NE(it, occupied.end()) << "label at " << t << " looks past the telemetry";
      sum += it->second;
    }
    ASSERT_EQ(Col<arrow::DoubleArray>(*demand, "occupancy_next_1h").Value(i),
              static_cast<double>(sum) / (4.0 * w.bays[bay - 1].capacity));
  }

  // Risk: a failed payment, dispute or chargeback in (t, t + 30 days], from the raw tables.
  std::map<int64_t, std::vector<int64_t>> problems;
  auto payments = ReadParquet(Out() / "payments.parquet");
  for (int64_t i = 0; i < payments->num_rows(); ++i) {
    if (Col<arrow::StringArray>(*payments, "status").GetView(i) == "failed") {
      problems[Col<I64>(*payments, "customer_id").Value(i)].push_back(
          Col<Ts>(*payments, "event_timestamp").Value(i));
    }
  }
  auto disputes = ReadParquet(Out() / "disputes.parquet");
  for (int64_t i = 0; i < disputes->num_rows(); ++i) {
    problems[Col<I64>(*disputes, "customer_id").Value(i)].push_back(
        Col<Ts>(*disputes, "event_timestamp").Value(i));
  }
  auto risk = ReadParquet(Out() / "customer_risk_labels.parquet");
  ASSERT_GT(risk->num_rows(), 600);
  int64_t positives = 0;
  for (int64_t i = 0; i < risk->num_rows(); ++i) {
    const int64_t c = Col<I64>(*risk, "customer_id").Value(i);
    const int64_t t = Col<Ts>(*risk, "event_timestamp").Value(i);
    ASSERT_GE(t, w.start.micros);
    ASSERT_LE(t, w.end.micros - 30 * kDay);
    bool want = false;
    for (int64_t p : problems[c]) want = want || (p > t && p <= t + 30 * kDay);
    const bool got = Col<arrow::BooleanArray>(*risk, "payment_problem_next_30d").Value(i);
    ASSERT_EQ(got, want) << "customer " << c << " at " << t;
    positives += got;
  }
  EXPECT_GT(positives, 0);
  EXPECT_LT(positives, risk->num_rows());
}

TEST_F(GeneratedDataSet, RiskyCustomersFailMorePaymentsThanCommuters) {
  auto customers = ReadParquet(Out() / "customers.parquet");
  std::map<int64_t, std::string> behaviour;
  for (int64_t i = 0; i < customers->num_rows(); ++i) {
    behaviour[Col<I64>(*customers, "customer_id").Value(i)] =
        std::string(Col<arrow::StringArray>(*customers, "behaviour_profile").GetView(i));
  }
  auto payments = ReadParquet(Out() / "payments.parquet");
  std::map<std::string, std::pair<int64_t, int64_t>> failed_total;
  for (int64_t i = 0; i < payments->num_rows(); ++i) {
    auto& [failed, total] = failed_total[behaviour[Col<I64>(*payments, "customer_id").Value(i)]];
    ++total;
    if (Col<arrow::StringArray>(*payments, "status").GetView(i) == "failed") ++failed;
  }
  auto rate = [&](const std::string& b) {
    return static_cast<double>(failed_total[b].first) / static_cast<double>(failed_total[b].second);
  };
  EXPECT_GT(rate("risky"), 3 * rate("commuter"));
  EXPECT_GT(rate("risky"), 0.05);
}

TEST_F(GeneratedDataSet, OccupancyHasDailyAndWeeklySeasonality) {
  auto bays = ReadParquet(Out() / "bays.parquet");
  std::map<int64_t, std::string> kind;
  for (int64_t i = 0; i < bays->num_rows(); ++i) {
    kind[Col<I64>(*bays, "parking_bay_id").Value(i)] =
        std::string(Col<arrow::StringArray>(*bays, "zone_kind").GetView(i));
  }
  auto t = ReadParquet(Out() / "bay_occupancy");
  double sums[2][2] = {}, counts[2][2] = {};  // [weekend][business hours]
  double night = 0, night_n = 0, noon = 0, noon_n = 0;
  const auto& id = Col<I64>(*t, "parking_bay_id");
  const auto& ts = Col<Ts>(*t, "event_timestamp");
  const auto& occ = Col<arrow::DoubleArray>(*t, "occupancy");
  for (int64_t i = 0; i < t->num_rows(); ++i) {
    const int64_t day = DayOf(Timestamp{ts.Value(i)});
    const int hour = static_cast<int>((ts.Value(i) - day * kDay) / 3'600'000'000LL);
    if (kind[id.Value(i)] == "business") {
      const int weekend = Weekday(day) >= 5;
      const int daytime = hour >= 10 && hour < 16;
      sums[weekend][daytime] += occ.Value(i);
      counts[weekend][daytime] += 1;
    }
    if (kind[id.Value(i)] == "centre" || kind[id.Value(i)] == "shopping") {
      if (hour >= 2 && hour < 5) night += occ.Value(i), night_n += 1;
      if (hour >= 11 && hour < 14) noon += occ.Value(i), noon_n += 1;
    }
  }
  ASSERT_GT(counts[0][1], 0);
  ASSERT_GT(counts[1][1], 0);
  const double weekday_day = sums[0][1] / counts[0][1], weekend_day = sums[1][1] / counts[1][1];
  EXPECT_GT(weekday_day, 2 * weekend_day) << weekday_day << " vs " << weekend_day;
  ASSERT_GT(night_n, 0);
  EXPECT_GT(noon / noon_n, 2 * (night / night_n));
}

TEST_F(GeneratedDataSet, DeltaLogDescribesTheDataFiles) {
  const fs::path table = Out() / "bay_occupancy_delta";
  auto schema = ReadDeltaSchema(table);
  ASSERT_TRUE(schema.ok()) << schema.status().ToString();
  EXPECT_TRUE((*schema)->Equals(*BayOccupancySchema(true), false)) << (*schema)->ToString();
  std::ifstream in(table / "_delta_log" / "00000000000000000000.json");
  std::string line;
  int adds = 0;
  while (std::getline(in, line)) {
    if (line.rfind("{\"add\":", 0) != 0) continue;
    ++adds;
    const size_t p = line.find("\"path\":\"") + 8;
    const std::string rel = line.substr(p, line.find('"', p) - p);
    EXPECT_TRUE(fs::exists(table / rel)) << rel;
    EXPECT_NE(line.find("\"partitionValues\":{\"event_date\":\"" + rel.substr(11, 10) + "\"}"),
              std::string::npos)
        << line;
    EXPECT_NE(line.find("numRecords"), std::string::npos);
  }
  EXPECT_EQ(adds, Table("bay_occupancy_delta").files);
}

TEST(Generate, RejectsBadOptionsWithoutWritingAnything) {
  auto dir = TempDir::Make("granary-datagen-").ValueOrDie();
  DatagenOptions o = TestOptions(dir.path() / "out", 1);
  o.end = ParseTimestamp("2026-03-02T10:00:00Z").ValueOrDie();
  auto r = Generate(o);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("not midnight UTC"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.path() / "out"));

  EXPECT_EQ(NamedScale("huge").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(NamedScale("huge").status().message().find("tiny"), std::string::npos);
  EXPECT_EQ(NamedScale("seed")->customers, 500'000);
  EXPECT_EQ(NamedScale("seed")->bays, 5'000);

  // An output path below a regular file cannot be created.
  std::ofstream(dir.path() / "file") << "x";
  o = TestOptions(dir.path() / "file" / "out", 1);
  r = Generate(o);
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find("--out"), std::string::npos) << r.status().message();
}

TEST(Generate, ReplacesItsOwnOutputsAndKeepsOtherFiles) {
  auto dir = TempDir::Make("granary-datagen-").ValueOrDie();
  DatagenOptions o = TestOptions(dir.path(), 2);
  o.scale.customers = 50;
  o.scale.days = 8;
  ASSERT_TRUE(Generate(o).ok());
  std::ofstream(dir.path() / "registry.db") << "keep me";
  o.seed = 99;
  ASSERT_TRUE(Generate(o).ok());
  EXPECT_TRUE(fs::exists(dir.path() / "registry.db"));
  std::ifstream manifest(dir.path() / "datagen.json");
  std::string text((std::istreambuf_iterator<char>(manifest)), {});
  EXPECT_NE(text.find("\"seed\": 99"), std::string::npos) << text;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    EXPECT_NE(e.path().filename().string().rfind(".tmp-datagen", 0), 0u);
  }
}

}  // namespace
}  // namespace granary::datagen
