#include "granary/testing/golden_case.h"

#include <arrow/api.h>
#include <arrow/csv/api.h>
#include <arrow/io/api.h>
#include <fmt/format.h>
#include <parquet/arrow/writer.h>

#include <fstream>
#include <sstream>

#include "granary/types/arrow_convert.h"

namespace granary::golden {
namespace {

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string> Split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(Trim(s.substr(start, pos == std::string_view::npos ? pos : pos - start)));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

struct Reader {
  std::string file;
  std::vector<std::string> lines;
  size_t next = 0;

  Status Error(size_t line, const std::string& what) const {
    return Status::InvalidArgument(fmt::format("{}:{}: {}", file, line, what));
  }
  // "key: value" lines indented under a section.
  Result<std::vector<std::pair<std::string, std::string>>> Properties() {
    std::vector<std::pair<std::string, std::string>> out;
    while (next < lines.size() && !lines[next].empty() &&
           (lines[next][0] == ' ' || lines[next][0] == '\t')) {
      std::string line = Trim(lines[next]);
      size_t colon = line.find(':');
      if (colon == std::string::npos) return Error(next + 1, "expected 'key: value'");
      out.emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
      ++next;
    }
    return out;
  }
  // A header line and rows, up to a blank line or the next section.
  Result<TextTable> Table() {
    TextTable t;
    t.line = static_cast<int>(next + 1);
    if (next >= lines.size() || Trim(lines[next]).empty())
      return Error(next + 1, "expected a header row");
    t.columns = Split(lines[next++], '|');
    while (next < lines.size() && !Trim(lines[next]).empty() && lines[next][0] != '#') {
      auto cells = Split(lines[next], '|');
      if (cells.size() != t.columns.size()) {
        return Error(next + 1,
                     fmt::format("{} cells for {} columns", cells.size(), t.columns.size()));
      }
      t.rows.push_back(std::move(cells));
      ++next;
    }
    return t;
  }
};

// "driver(driver_id:int64), pair(a:int64, b:string)"
Result<std::vector<Entity>> ParseEntities(const std::string& text, const Reader& r, size_t line) {
  std::vector<Entity> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t open = text.find('(', pos), close = text.find(')', pos);
    if (open == std::string::npos || close == std::string::npos) {
      return r.Error(line, "entities: write name(key:type, ...)");
    }
    Entity e;
    e.name = Trim(std::string_view(text).substr(pos, open - pos));
    if (!e.name.empty() && e.name[0] == ',') e.name = Trim(e.name.substr(1));
    for (const auto& key : Split(std::string_view(text).substr(open + 1, close - open - 1), ',')) {
      auto parts = Split(key, ':');
      if (parts.size() != 2) return r.Error(line, "entity key: write key:type");
      GRANARY_ASSIGN_OR_RAISE(ValueType type, ValueType::Parse(parts[1]));
      e.join_keys.push_back(parts[0]);
      e.join_key_types.push_back(type);
    }
    out.push_back(std::move(e));
    pos = close + 1;
  }
  return out;
}

bool Truthy(const std::string& v) { return v == "true" || v == "yes"; }

// A column of text cells typed as `type` (strings parsed by CastToValueType).
Result<std::shared_ptr<arrow::Array>> TypedColumn(const TextTable& t, size_t c,
                                                  std::optional<ValueType> type) {
  arrow::StringBuilder b;
  for (const auto& row : t.rows) {
    if (row[c] == "null") {
      (void)b.AppendNull();
    } else {
      (void)b.Append(row[c]);
    }
  }
  std::shared_ptr<arrow::Array> strings;
  if (!b.Finish(&strings).ok()) return Status::Internal("builder");
  if (!type) return strings;
  return CastToValueType(strings, *type, t.columns[c]);
}

std::string FormatDouble(double v) { return fmt::format("{}", v); }

// "NAME = FUNCTION(COLUMN) over WINDOW where COLUMN" (the column and the where optional).
Result<Aggregation> ParseAggregation(const std::string& text, const Reader& r, size_t at) {
  const std::string usage =
      "aggregation: write NAME = FUNCTION(COLUMN) over WINDOW [where COLUMN], e.g. "
      "spend_2h = sum(amount) over 2h where failed";
  Aggregation a;
  size_t eq = text.find('=');
  size_t over = text.find(" over ");
  if (eq == std::string::npos || over == std::string::npos || over < eq) return r.Error(at, usage);
  a.name = Trim(text.substr(0, eq));
  std::string call = Trim(text.substr(eq + 1, over - eq - 1));
  std::string rest = Trim(text.substr(over + 6));
  std::string function = call;
  size_t open = call.find('(');
  if (open != std::string::npos) {
    if (call.back() != ')') return r.Error(at, usage);
    function = Trim(call.substr(0, open));
    a.column = Trim(call.substr(open + 1, call.size() - open - 2));
  }
  GRANARY_ASSIGN_OR_RAISE(a.function, ParseAggregationFunction(function));
  size_t where = rest.find(" where ");
  std::string window = where == std::string::npos ? rest : Trim(rest.substr(0, where));
  if (where != std::string::npos) a.where = Trim(rest.substr(where + 7));
  GRANARY_ASSIGN_OR_RAISE(a.window, ParseDuration(window));
  a.location = SourceLocation{r.file, static_cast<int>(at)};
  return a;
}

}  // namespace

Result<GoldenCase> ParseGoldenCase(const std::filesystem::path& file) {
  std::ifstream in(file);
  if (!in) return Status::NotFound("cannot read " + file.string());
  Reader r;
  r.file = file.filename().string();
  for (std::string line; std::getline(in, line);) r.lines.push_back(line);
  GoldenCase g;
  g.file = r.file;
  while (r.next < r.lines.size()) {
    const std::string raw = r.lines[r.next];
    const std::string line = Trim(raw);
    const size_t at = r.next + 1;
    if (line.empty() || line[0] == '#') {
      ++r.next;
      continue;
    }
    ++r.next;
    if (line.starts_with("case:")) {
      g.title = Trim(line.substr(5));
    } else if (line.starts_with("view ")) {
      GoldenView v;
      v.view.name = Trim(line.substr(5));
      v.source.name = v.view.name + "_source";
      v.view.source = v.source.name;
      v.source.timestamp_field = "event_timestamp";
      GRANARY_ASSIGN_OR_RAISE(auto props, r.Properties());
      for (const auto& [key, value] : props) {
        if (key == "entities") {
          GRANARY_ASSIGN_OR_RAISE(auto entities, ParseEntities(value, r, at));
          for (auto& e : entities) {
            v.view.entities.push_back(e.name);
            bool known = false;
            for (const auto& existing : g.entities) known = known || existing.name == e.name;
            if (!known) g.entities.push_back(std::move(e));
          }
        } else if (key == "ttl") {
          GRANARY_ASSIGN_OR_RAISE(v.view.ttl, ParseDuration(value));
        } else if (key == "features") {
          for (const auto& f : Split(value, ',')) {
            auto parts = Split(f, ':');
            if (parts.size() != 2) return r.Error(at, "features: write name:type, ...");
            GRANARY_ASSIGN_OR_RAISE(ValueType type, ValueType::Parse(parts[1]));
            v.view.schema.push_back(Field{parts[0], type, "", {}});
          }
        } else if (key == "timestamp_field") {
          v.source.timestamp_field = value;
        } else if (key == "created_timestamp_column") {
          v.source.created_timestamp_column = value;
        } else if (key == "field_mapping") {
          for (const auto& m : Split(value, ',')) {
            size_t arrow_pos = m.find("->");
            if (arrow_pos == std::string::npos) return r.Error(at, "field_mapping: write a -> b");
            v.source.field_mapping[Trim(m.substr(0, arrow_pos))] = Trim(m.substr(arrow_pos + 2));
          }
        } else if (key == "columns") {
          // Source columns that are not features (what aggregations read), typed.
          for (const auto& c : Split(value, ',')) {
            auto parts = Split(c, ':');
            if (parts.size() != 2) return r.Error(at, "columns: write name:type, ...");
            GRANARY_ASSIGN_OR_RAISE(ValueType type, ValueType::Parse(parts[1]));
            v.columns.push_back(Field{parts[0], type, "", {}});
          }
        } else if (key == "granularity") {
          GRANARY_ASSIGN_OR_RAISE(v.view.granularity, ParseDuration(value));
        } else if (key == "aggregation") {
          GRANARY_ASSIGN_OR_RAISE(Aggregation a, ParseAggregation(value, r, at));
          v.view.aggregations.push_back(std::move(a));
        } else if (key == "format") {
          v.format = value;
        } else if (key == "files") {
          v.files = std::stoi(value);
        } else {
          return r.Error(at, "unknown view property '" + key + "'");
        }
      }
      g.views.push_back(std::move(v));
    } else if (line.starts_with("rows ")) {
      const std::string name = Trim(line.substr(5));
      GoldenView* view = nullptr;
      for (auto& v : g.views) view = v.view.name == name ? &v : view;
      if (view == nullptr) return r.Error(at, "rows of unknown view '" + name + "'");
      GRANARY_ASSIGN_OR_RAISE(view->rows, r.Table());
    } else if (line == "entities") {
      GRANARY_ASSIGN_OR_RAISE(g.entity_rows, r.Table());
    } else if (line == "request") {
      GRANARY_ASSIGN_OR_RAISE(auto props, r.Properties());
      for (const auto& [key, value] : props) {
        if (key == "features") {
          for (const auto& f : Split(value, ',')) {
            GRANARY_ASSIGN_OR_RAISE(FeatureRef ref, FeatureRef::Parse(f));
            g.request.features.push_back(ref);
          }
        } else if (key == "full_feature_names") {
          g.request.full_feature_names = Truthy(value);
        } else if (key == "created_timestamp_cutoff") {
          g.request.created_timestamp_cutoff = Truthy(value);
        } else if (key == "memory_budget_bytes") {
          g.memory_budget_bytes = std::stoll(value);
        } else {
          return r.Error(at, "unknown request property '" + key + "'");
        }
      }
    } else if (line == "expect") {
      GRANARY_ASSIGN_OR_RAISE(g.expected, r.Table());
    } else if (line.starts_with("expect_error:")) {
      g.expect_error = true;
      g.error_substring = Trim(line.substr(13));
    } else {
      return r.Error(at, "unknown section '" + line + "'");
    }
  }
  if (g.views.empty()) return r.Error(1, "a case needs at least one view");
  if (g.request.features.empty()) return r.Error(1, "a case needs request features");
  return g;
}

Result<Definitions> MaterializeCase(GoldenCase* g, const std::filesystem::path& root) {
  Definitions defs;
  defs.project = "golden";
  defs.entities = g->entities;
  for (GoldenView& v : g->views) {
    // Source column -> its declared type (through field_mapping).
    std::map<std::string, ValueType> types;
    for (const auto& e : g->entities) {
      for (size_t k = 0; k < e.join_keys.size(); ++k) types[e.join_keys[k]] = e.join_key_types[k];
    }
    types[v.source.timestamp_field] = ValueType::Scalar(ScalarType::kTimestamp);
    if (!v.source.created_timestamp_column.empty()) {
      types[v.source.created_timestamp_column] = ValueType::Scalar(ScalarType::kTimestamp);
    }
    for (const Field& f : v.view.schema) types[f.name] = f.type;
    for (const Field& f : v.columns) types[f.name] = f.type;
    if (!v.view.aggregations.empty() && v.view.granularity.micros == 0) {
      v.view.granularity = kDefaultGranularity;
    }
    for (Aggregation& a : v.view.aggregations) {
      ValueType column_type = ValueType::Scalar(ScalarType::kInt64);
      if (!a.column.empty()) {
        auto it = types.find(a.column);
        if (it == types.end()) {
          return Status::InvalidArgument(fmt::format(
              "{}: view '{}': aggregation '{}' reads column '{}', which `columns:` does not "
              "declare",
              g->file, v.view.name, a.name, a.column));
        }
        column_type = it->second;
      }
      GRANARY_ASSIGN_OR_RAISE(a.type, AggregationOutputType(a.function, column_type));
    }
    arrow::FieldVector fields;
    arrow::ArrayVector arrays;
    for (size_t c = 0; c < v.rows.columns.size(); ++c) {
      std::string def_name = v.rows.columns[c];
      auto mapped = v.source.field_mapping.find(def_name);
      if (mapped != v.source.field_mapping.end()) def_name = mapped->second;
      std::optional<ValueType> type;
      // CSV keeps the text as written (timestamps with offsets exercise the CSV reader).
      if (types.count(def_name) && v.format != "csv") type = types[def_name];
      GRANARY_ASSIGN_OR_RAISE(auto array, TypedColumn(v.rows, c, type));
      fields.push_back(arrow::field(v.rows.columns[c], array->type()));
      arrays.push_back(array);
    }
    auto table =
        arrow::Table::Make(arrow::schema(fields), arrays, static_cast<int64_t>(v.rows.rows.size()));
    const auto folder = root / v.view.name;
    std::filesystem::create_directories(folder);
    const int64_t n = table->num_rows();
    const int files = std::max(1, v.files);
    for (int f = 0; f < files; ++f) {
      const int64_t begin = n * f / files, end = n * (f + 1) / files;
      auto part = table->Slice(begin, end - begin);
      const auto path = folder / fmt::format("part-{:03}.{}", f, v.format);
      auto out = arrow::io::FileOutputStream::Open(path.string());
      if (!out.ok()) return Status::IOError(out.status().ToString());
      arrow::Status st;
      if (v.format == "csv") {
        auto options = arrow::csv::WriteOptions::Defaults();
        options.quoting_style = arrow::csv::QuotingStyle::None;
        st = arrow::csv::WriteCSV(*part, options, out->get());
      } else {
        st = parquet::arrow::WriteTable(*part, arrow::default_memory_pool(), *out,
                                        /*chunk_size=*/2);
      }
      if (!st.ok()) return Status::IOError(st.ToString());
      (void)(*out)->Close();
    }
    v.source.path = folder.string();
    v.source.format = v.format == "csv" ? SourceFormat::kCsv : SourceFormat::kParquet;
    defs.data_sources.push_back(v.source);
    defs.feature_views.push_back(v.view);
  }
  // Entity rows: join keys typed as declared, everything else as text (the engine parses
  // event_timestamp, offsets included).
  std::map<std::string, ValueType> key_types;
  for (const auto& e : g->entities) {
    for (size_t k = 0; k < e.join_keys.size(); ++k) key_types[e.join_keys[k]] = e.join_key_types[k];
  }
  arrow::FieldVector fields;
  arrow::ArrayVector arrays;
  for (size_t c = 0; c < g->entity_rows.columns.size(); ++c) {
    auto it = key_types.find(g->entity_rows.columns[c]);
    std::optional<ValueType> type;
    if (it != key_types.end()) type = it->second;
    GRANARY_ASSIGN_OR_RAISE(auto array, TypedColumn(g->entity_rows, c, type));
    fields.push_back(arrow::field(g->entity_rows.columns[c], array->type()));
    arrays.push_back(array);
  }
  g->request.entities = arrow::Table::Make(arrow::schema(fields), arrays,
                                           static_cast<int64_t>(g->entity_rows.rows.size()));
  return defs;
}

Result<TextTable> TableAsText(const arrow::Table& table) {
  TextTable out;
  out.columns = table.schema()->field_names();
  out.rows.assign(table.num_rows(), std::vector<std::string>(table.num_columns()));
  for (int c = 0; c < table.num_columns(); ++c) {
    auto column = arrow::Concatenate(table.column(c)->chunks());
    if (!column.ok()) return Status::Internal(column.status().ToString());
    GRANARY_ASSIGN_OR_RAISE(ValueType type, FromArrowType(*(*column)->type()));
    for (int64_t i = 0; i < table.num_rows(); ++i) {
      GRANARY_ASSIGN_OR_RAISE(Value v, ValueAt(**column, i, type));
      std::string text;
      if (v.is_null()) {
        text = "null";
      } else if (v.is<Timestamp>()) {
        text = FormatTimestamp(v.get<Timestamp>());
      } else if (v.is<double>()) {
        text = FormatDouble(v.get<double>());
      } else if (v.is<float>()) {
        text = fmt::format("{}", v.get<float>());
      } else if (v.is<std::string>()) {
        text = v.get<std::string>();
      } else {
        text = v.ToString();
      }
      out.rows[i][c] = text;
    }
  }
  return out;
}

Result<TextTable> NormalizeExpected(const TextTable& expected, const arrow::Table& output) {
  TextTable out = expected;
  for (size_t c = 0; c < out.columns.size(); ++c) {
    auto field = output.schema()->GetFieldByName(out.columns[c]);
    if (field == nullptr) continue;
    GRANARY_ASSIGN_OR_RAISE(ValueType type, FromArrowType(*field->type()));
    for (auto& row : out.rows) {
      std::string& cell = row[c];
      if (cell == "null" || type.is_list) continue;
      if (type.scalar == ScalarType::kTimestamp) {
        GRANARY_ASSIGN_OR_RAISE(Timestamp ts, ParseTimestamp(cell));
        cell = FormatTimestamp(ts);
      } else if (type.scalar == ScalarType::kFloat64) {
        cell = FormatDouble(std::stod(cell));
      } else if (type.scalar == ScalarType::kFloat32) {
        cell = fmt::format("{}", std::stof(cell));
      }
    }
  }
  return out;
}

}  // namespace granary::golden
