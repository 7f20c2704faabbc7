#include "granary/serving/materialize_report.h"

#include <fmt/format.h>

#include "granary/common/json.h"

namespace granary {
namespace {

void String(JsonWriter& w, std::string_view s) { w.String(s); }

void Time(JsonWriter& w, const std::optional<Timestamp>& t) {
  if (t) {
    String(w, FormatTimestamp(*t));
  } else {
    w.Null();
  }
}

void Int(JsonWriter& w, const char* key, int64_t value) {
  w.Key(key);
  w.Int64(value);
}

void WriteView(JsonWriter& w, const ViewMaterialization& v) {
  w.StartObject();
  w.Key("view");
  String(w, v.view);
  w.Key("status");
  String(w, v.up_to_date && v.status.ok() ? "up_to_date" : MaterializeOutcomeName(v.status));
  w.Key("code");
  String(w, StatusCodeName(v.status.code()));
  if (!v.status.ok()) {
    w.Key("error");
    String(w, v.status.message());
  }
  w.Key("start");
  Time(w, v.start);
  w.Key("end");
  Time(w, v.end);
  Int(w, "run_id", v.run_id);
  Int(w, "files_total", v.scan.files_total);
  Int(w, "files_pruned", v.scan.files_pruned);
  Int(w, "row_groups_total", v.scan.row_groups_total);
  Int(w, "row_groups_pruned", v.scan.row_groups_pruned);
  Int(w, "rows_scanned", v.scan.rows_scanned);
  Int(w, "rows_in_range", v.rows_in_range);
  Int(w, "null_key_rows", v.null_key_rows);
  Int(w, "entities", v.entities);
  Int(w, "entities_written", v.entities_written);
  Int(w, "entities_skipped", v.entities_skipped);
  Int(w, "partitions", v.partitions);
  Int(w, "bytes_spilled", v.bytes_spilled);
  w.Key("started_over");
  w.Bool(v.started_over);
  w.Key("watermark_before");
  Time(w, v.watermark_before);
  w.Key("watermark_after");
  Time(w, v.watermark_after);
  if (!v.watermark_note.empty()) {
    w.Key("watermark_note");
    String(w, v.watermark_note);
  }
  w.Key("seconds");
  w.Double(v.seconds);
  w.EndObject();
}

// Reading: each helper names the field it found wrong.
Status Bad(std::string_view field, std::string_view what) {
  return Status::InvalidArgument(
      fmt::format("the server's materialization report: {}: {}", field, what));
}

Result<std::string> GetString(const boost::json::value& o, const char* key, bool required) {
  const boost::json::value* v = JsonMember(o, key);
  if (v == nullptr || v->is_null()) {
    if (required) return Bad(key, "missing");
    return std::string();
  }
  if (!v->is_string()) return Bad(key, "not a string");
  return std::string(JsonStringView(v->get_string()));
}

Result<int64_t> GetInt(const boost::json::value& o, const char* key) {
  const boost::json::value* v = JsonMember(o, key);
  if (v == nullptr) return int64_t{0};  // a field an older server does not write
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return Bad(key, "not an integer");
}

Result<std::optional<Timestamp>> GetTime(const boost::json::value& o, const char* key) {
  GRANARY_ASSIGN_OR_RAISE(std::string text, GetString(o, key, false));
  if (text.empty()) return std::optional<Timestamp>();
  auto t = ParseTimestamp(text);
  if (!t.ok()) return Bad(key, t.status().message());
  return std::optional<Timestamp>(*t);
}

StatusCode CodeNamed(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(StatusCode::kInternal); ++c) {
    if (StatusCodeName(static_cast<StatusCode>(c)) == name) return static_cast<StatusCode>(c);
  }
  return StatusCode::kInternal;
}

// The status of an object with "status" (an outcome name), "code" and "error", into `out`.
Status ReadStatus(const boost::json::value& o, Status* out) {
  GRANARY_ASSIGN_OR_RAISE(std::string outcome, GetString(o, "status", true));
  GRANARY_ASSIGN_OR_RAISE(std::string code, GetString(o, "code", false));
  GRANARY_ASSIGN_OR_RAISE(std::string error, GetString(o, "error", false));
  if (outcome == "succeeded" || outcome == "up_to_date") {
    *out = Status::OK();
    return Status::OK();
  }
  StatusCode c = outcome == "cancelled" ? StatusCode::kCancelled : CodeNamed(code);
  if (c == StatusCode::kOk) c = StatusCode::kInternal;
  *out = Status(c, error.empty() ? outcome : error);
  return Status::OK();
}

Result<ViewMaterialization> ReadView(const boost::json::value& o) {
  if (!o.is_object()) return Bad("views[]", "not an object");
  ViewMaterialization v;
  GRANARY_ASSIGN_OR_RAISE(v.view, GetString(o, "view", true));
  GRANARY_ASSIGN_OR_RAISE(std::string outcome, GetString(o, "status", true));
  v.up_to_date = outcome == "up_to_date";
  GRANARY_RETURN_NOT_OK(ReadStatus(o, &v.status));
  GRANARY_ASSIGN_OR_RAISE(v.start, GetTime(o, "start"));
  GRANARY_ASSIGN_OR_RAISE(std::optional<Timestamp> end, GetTime(o, "end"));
  if (end) v.end = *end;
  GRANARY_ASSIGN_OR_RAISE(v.run_id, GetInt(o, "run_id"));
  GRANARY_ASSIGN_OR_RAISE(v.scan.files_total, GetInt(o, "files_total"));
  GRANARY_ASSIGN_OR_RAISE(v.scan.files_pruned, GetInt(o, "files_pruned"));
  GRANARY_ASSIGN_OR_RAISE(v.scan.row_groups_total, GetInt(o, "row_groups_total"));
  GRANARY_ASSIGN_OR_RAISE(v.scan.row_groups_pruned, GetInt(o, "row_groups_pruned"));
  GRANARY_ASSIGN_OR_RAISE(v.scan.rows_scanned, GetInt(o, "rows_scanned"));
  GRANARY_ASSIGN_OR_RAISE(v.rows_in_range, GetInt(o, "rows_in_range"));
  GRANARY_ASSIGN_OR_RAISE(v.null_key_rows, GetInt(o, "null_key_rows"));
  GRANARY_ASSIGN_OR_RAISE(v.entities, GetInt(o, "entities"));
  GRANARY_ASSIGN_OR_RAISE(v.entities_written, GetInt(o, "entities_written"));
  GRANARY_ASSIGN_OR_RAISE(v.entities_skipped, GetInt(o, "entities_skipped"));
  GRANARY_ASSIGN_OR_RAISE(int64_t partitions, GetInt(o, "partitions"));
  v.partitions = static_cast<int>(partitions);
  GRANARY_ASSIGN_OR_RAISE(v.bytes_spilled, GetInt(o, "bytes_spilled"));
  if (const boost::json::value* b = JsonMember(o, "started_over"); b && b->is_bool()) {
    v.started_over = b->get_bool();
  }
  GRANARY_ASSIGN_OR_RAISE(v.watermark_before, GetTime(o, "watermark_before"));
  GRANARY_ASSIGN_OR_RAISE(v.watermark_after, GetTime(o, "watermark_after"));
  GRANARY_ASSIGN_OR_RAISE(v.watermark_note, GetString(o, "watermark_note", false));
  if (const boost::json::value* d = JsonMember(o, "seconds"); d && d->is_number()) {
    v.seconds = JsonNumberAsDouble(*d);
  }
  return v;
}

}  // namespace

const char* MaterializeOutcomeName(const Status& status) {
  if (status.ok()) return "succeeded";
  return status.code() == StatusCode::kCancelled ? "cancelled" : "failed";
}

std::string MaterializeReportJson(const MaterializeRequest& run, const MaterializeReport& report) {
  JsonWriter w;
  w.StartObject();
  w.Key("status");
  String(w, MaterializeOutcomeName(report.status));
  w.Key("code");
  String(w, StatusCodeName(report.status.code()));
  if (!report.status.ok()) {
    w.Key("error");
    String(w, report.status.message());
  }
  w.Key("end");
  String(w, FormatTimestamp(run.end));
  w.Key("views");
  w.StartArray();
  for (const ViewMaterialization& v : report.views) WriteView(w, v);
  w.EndArray();
  w.EndObject();
  return w.Release();
}

Result<MaterializeReport> ParseMaterializeReport(std::string_view json) {
  auto parsed = ParseJson(json);
  if (!parsed.ok() || !parsed->is_object()) return Bad("the body", "not a JSON object");
  const boost::json::value& doc = *parsed;
  const boost::json::value* views = JsonMember(doc, "views");
  if (views == nullptr || !views->is_array()) return Bad("views", "not a list");
  MaterializeReport report;
  GRANARY_RETURN_NOT_OK(ReadStatus(doc, &report.status));
  for (const boost::json::value& v : views->get_array()) {
    GRANARY_ASSIGN_OR_RAISE(ViewMaterialization view, ReadView(v));
    report.views.push_back(std::move(view));
  }
  return report;
}

}  // namespace granary
