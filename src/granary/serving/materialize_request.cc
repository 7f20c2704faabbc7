#include "granary/serving/materialize_request.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "granary/common/strings.h"
#include "granary/serving/json_format.h"

namespace granary {
namespace {

Status BadBody(std::string_view what) {
  return Status::InvalidArgument(
      fmt::format("{}; the body is {{\"end\": \"2026-11-25T10:00:00Z\", \"views\": [\"name\", "
                  "...], \"wait\": true}}, every field optional",
                  what));
}

const char* KindOf(const rapidjson::Value& v) {
  if (v.IsNull()) return "null";
  if (v.IsBool()) return "true or false";
  if (v.IsNumber()) return "a number";
  if (v.IsString()) return "a string";
  if (v.IsArray()) return "a list";
  return "an object";
}

}  // namespace

Result<MaterializeIncrementalBody> ParseMaterializeRequest(std::string_view json) {
  MaterializeIncrementalBody body;
  if (json.find_first_not_of(" \t\r\n") == std::string_view::npos) return body;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(json.data(), json.size());
  if (doc.HasParseError()) {
    return Status::InvalidArgument(fmt::format("the request is not valid JSON: {}: {}",
                                               serving::LineAndColumn(json, doc.GetErrorOffset()),
                                               rapidjson::GetParseError_En(doc.GetParseError())));
  }
  if (!doc.IsObject()) {
    return BadBody(fmt::format("the request must be a JSON object, not {}", KindOf(doc)));
  }
  static const std::vector<std::string> kKeys = {"end",    "views",    "wait",         "start",
                                                 "end_ts", "start_ts", "feature_views"};
  std::optional<bool> wait;
  bool feast_names = false;
  std::string start_key, end_key, views_key;  // the names used, to refuse both spellings at once
  for (const auto& member : doc.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& v = member.value;
    if (key == "start" || key == "start_ts") {
      if (key == "start_ts") feast_names = true;
      if (!start_key.empty()) {
        return BadBody(fmt::format(
            "{} and {} are the same field (Feast's name and Granary's); give one", start_key, key));
      }
      start_key = key;
      if (!v.IsString()) {
        return BadBody(fmt::format("{}: must be a string, not {}", key, KindOf(v)));
      }
      const std::string_view text(v.GetString(), v.GetStringLength());
      auto start = ParseTimestamp(text);
      if (!start.ok()) {
        return BadBody(fmt::format(
            "{}: '{}' is not a time ({}); write an ISO 8601 time such as \"2026-11-25T10:00:00Z\"",
            key, text, start.status().message()));
      }
      body.start = *start;
      continue;
    }
    if (key == "end_ts" || key == "feature_views") {
      feast_names = true;
      std::string& seen = key == "end_ts" ? end_key : views_key;
      if (!seen.empty()) {
        return BadBody(
            fmt::format("{} and {} are the same field (Feast's name and Granary's); "
                        "give one",
                        seen, key));
      }
      seen = key;
      key = key == "end_ts" ? "end" : "views";
    } else if (key == "end" || key == "views") {
      std::string& seen = key == "end" ? end_key : views_key;
      if (!seen.empty()) {
        return BadBody(
            fmt::format("{} and {} are the same field (Feast's name and Granary's); "
                        "give one",
                        seen, key));
      }
      seen = key;
    }
    if (key == "end") {
      if (!v.IsString()) {
        return BadBody(fmt::format("{}: must be a string, not {}", end_key, KindOf(v)));
      }
      const std::string_view text(v.GetString(), v.GetStringLength());
      auto end = ParseTimestamp(text);
      if (!end.ok()) {
        return BadBody(
            fmt::format("{}: '{}' is not a time ({}); write an ISO 8601 time such as "
                        "\"2026-11-25T10:00:00Z\"",
                        end_key, text, end.status().message()));
      }
      body.end = *end;
    } else if (key == "views") {
      if (!v.IsArray()) {
        return BadBody(
            fmt::format("{}: must be a list of feature view names, not {}", views_key, KindOf(v)));
      }
      if (v.Empty()) {
        return BadBody(fmt::format(
            "{}: the list is empty; leave it out to materialize every online view", views_key));
      }
      for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
        if (!v[i].IsString()) {
          return BadBody(fmt::format("{}[{}]: must be a feature view's name, not {}", views_key, i,
                                     KindOf(v[i])));
        }
        body.views.emplace_back(v[i].GetString(), v[i].GetStringLength());
      }
    } else if (key == "wait") {
      if (!v.IsBool())
        return BadBody(fmt::format("wait: must be true or false, not {}", KindOf(v)));
      wait = v.GetBool();
    } else {
      return BadBody(fmt::format("unknown field '{}'{}", key, DidYouMean(key, kKeys)));
    }
  }
  body.wait = wait.value_or(feast_names);
  if (!views_key.empty()) body.views_key = views_key;
  return body;
}

Status CheckMaterializeViews(const Definitions& defs, const MaterializeIncrementalBody& body) {
  const std::vector<std::string>& names = body.views;
  const std::string& key = body.views_key;
  std::vector<std::string> online;
  for (const FeatureView& v : defs.feature_views) {
    if (v.online) online.push_back(v.name);
  }
  if (online.empty()) {
    return Status::FailedPrecondition(
        "no feature view is online (every view has online: false); nothing to materialize");
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const FeatureView* view = defs.FindFeatureView(names[i]);
    if (view == nullptr) {
      return Status::InvalidArgument(fmt::format("{}[{}]: no feature view '{}'{}; online views: {}",
                                                 key, i, names[i], DidYouMean(names[i], online),
                                                 Join(online, ", ")));
    }
    if (!view->online) {
      return Status::InvalidArgument(
          fmt::format("{}[{}]: feature view '{}' is not online (online: false), so it is never "
                      "materialized; leave it out",
                      key, i, names[i]));
    }
  }
  return Status::OK();
}

}  // namespace granary
