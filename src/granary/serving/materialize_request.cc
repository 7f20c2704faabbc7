#include "granary/serving/materialize_request.h"

#include <fmt/format.h>

#include "granary/common/json.h"
#include "granary/common/strings.h"

namespace granary {
namespace {

Status BadBody(std::string_view what) {
  return Status::InvalidArgument(
      fmt::format("{}; the body is {{\"end\": \"2026-11-25T10:00:00Z\", \"views\": [\"name\", "
                  "...], \"wait\": true}}, every field optional",
                  what));
}

const char* KindOf(const boost::json::value& v) {
  if (v.is_null()) return "null";
  if (v.is_bool()) return "true or false";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list";
  return "an object";
}

}  // namespace

Result<MaterializeIncrementalBody> ParseMaterializeRequest(std::string_view json) {
  MaterializeIncrementalBody body;
  if (json.find_first_not_of(" \t\r\n") == std::string_view::npos) return body;
  auto parsed = ParseJson(json);
  if (!parsed.ok()) {
    return Status::InvalidArgument("the request is not valid JSON: " + parsed.status().message());
  }
  const boost::json::value& doc = *parsed;
  if (!doc.is_object()) {
    return BadBody(fmt::format("the request must be a JSON object, not {}", KindOf(doc)));
  }
  static const std::vector<std::string> kKeys = {"end",    "views",    "wait",         "start",
                                                 "end_ts", "start_ts", "feature_views"};
  std::optional<bool> wait;
  bool feast_names = false;
  std::string start_key, end_key, views_key;  // the names used, to refuse both spellings at once
  for (const auto& member : doc.get_object()) {
    std::string key(member.key().data(), member.key().size());
    const boost::json::value& v = member.value();
    if (key == "start" || key == "start_ts") {
      if (key == "start_ts") feast_names = true;
      if (!start_key.empty()) {
        return BadBody(fmt::format(
            "{} and {} are the same field (Feast's name and Granary's); give one", start_key, key));
      }
      start_key = key;
      if (!v.is_string()) {
        return BadBody(fmt::format("{}: must be a string, not {}", key, KindOf(v)));
      }
      const std::string_view text = JsonStringView(v.get_string());
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
      if (!v.is_string()) {
        return BadBody(fmt::format("{}: must be a string, not {}", end_key, KindOf(v)));
      }
      const std::string_view text = JsonStringView(v.get_string());
      auto end = ParseTimeOrNow(text);  // the CLI's parser: "now" leaves `end` unset
      if (!end.ok()) {
        return BadBody(
            fmt::format("{}: '{}' is not a time ({}); write an ISO 8601 time such as "
                        "\"2026-11-25T10:00:00Z\"",
                        end_key, text, end.status().message()));
      }
      body.end = *end;
    } else if (key == "views") {
      if (!v.is_array()) {
        return BadBody(
            fmt::format("{}: must be a list of feature view names, not {}", views_key, KindOf(v)));
      }
      const boost::json::array& views = v.get_array();
      if (views.empty()) {
        return BadBody(fmt::format(
            "{}: the list is empty; leave it out to materialize every online view", views_key));
      }
      for (size_t i = 0; i < views.size(); ++i) {
        if (!views[i].is_string()) {
          return BadBody(fmt::format("{}[{}]: must be a feature view's name, not {}", views_key, i,
                                     KindOf(views[i])));
        }
        body.views.emplace_back(JsonStringView(views[i].get_string()));
      }
    } else if (key == "wait") {
      if (!v.is_bool())
        return BadBody(fmt::format("wait: must be true or false, not {}", KindOf(v)));
      wait = v.get_bool();
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
