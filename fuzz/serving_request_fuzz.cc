// Fuzzes the feature server's request decoders with arbitrary bytes: get-online-features (parse,
// resolve against definitions, and the response written for an all-NOT_FOUND read) and push
// (parse and type the df by the views), write-to-online-store (parse and build the view's rows)
// and materialize-incremental (parse, check the views).
// Properties beyond "never crash": a resolved request has one key per entity row and view; the
// response is valid JSON with one result per column and one value per row, with statuses and
// event times exactly when asked for (include_statuses, include_event_timestamps); a parsed push is
// a valid Arrow table with at least one row; a parsed write is a valid record batch with the view's
// join keys, event time and features; views that pass the check are online views; any
// document the JSON reader accepts is written back and read again to the same value.
// Run with -max_len up to the server's body limit and fuzz/json.dict (scripts/fuzz does).
#include <arrow/api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "granary/common/json.h"
#include "granary/online/online_features.h"
#include "granary/serving/materialize_request.h"
#include "granary/serving/online_features.h"
#include "granary/serving/online_write.h"
#include "granary/serving/push.h"
#include "serving_fixture.h"

namespace {

[[noreturn]] void Fail(const char* what, std::string_view input) {
  std::fprintf(stderr, "%s\ninput: %.*s\n", what, static_cast<int>(input.size()), input.data());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const granary::fuzz::ServingFixture& f = granary::fuzz::GetServingFixture();

  if (auto doc = granary::ParseJson(text); doc.ok()) {
    granary::JsonWriter w;
    w.Value(*doc);
    auto again = granary::ParseJson(w.str());
    if (!again.ok()) Fail(("written JSON does not read back: " + w.str()).c_str(), text);
    if (*again != *doc) Fail(("written JSON reads back differently: " + w.str()).c_str(), text);
  }

  if (auto request = granary::ParseOnlineFeaturesRequest(text); request.ok()) {
    if (auto resolved = f.service->Resolve(*request); resolved.ok()) {
      for (const granary::ViewRead& read : resolved->read.views) {
        if (read.keys->size() != resolved->num_rows) Fail("a key per entity row", text);
      }
      granary::OnlineFeaturesBuilder builder(resolved->read);
      auto features = builder.Finish(granary::Timestamp::FromSeconds(1'800'000'000));
      if (!features.ok()) Fail("an empty read must finish", text);
      std::string json;
      granary::OnlineFeaturesService::WriteResponse(*resolved, *features, &json);
      auto doc = granary::ParseJson(json);
      const boost::json::value* results = doc.ok() ? granary::JsonMember(*doc, "results") : nullptr;
      if (results == nullptr || !results->is_array()) {
        Fail(("the response is not valid JSON: " + json).c_str(), text);
      }
      if (results->get_array().size() != resolved->entities.size() + resolved->columns.size()) {
        Fail("one result per column", text);
      }
      // Each result has one value per row, and its statuses and event times (one per row)
      // exactly when the request asked for them (the compact form leaves them out).
      auto rows_or_absent = [&](const boost::json::value& column, const char* name, bool wanted) {
        const boost::json::value* array = granary::JsonMember(column, name);
        if (!wanted) return array == nullptr;
        return array != nullptr && array->is_array() &&
               array->get_array().size() == resolved->num_rows;
      };
      for (const auto& column : results->get_array()) {
        if (!rows_or_absent(column, "values", true) ||
            !rows_or_absent(column, "statuses", resolved->include_statuses) ||
            !rows_or_absent(column, "event_timestamps", resolved->include_event_timestamps)) {
          Fail("one value per row, statuses and times as asked", text);
        }
        if (column.as_object().size() !=
            1u + resolved->include_statuses + resolved->include_event_timestamps) {
          Fail("no other keys in a result", text);
        }
      }
    }
  }

  if (auto push = granary::ParsePushRequest(text, *f.defs); push.ok()) {
    if (push->rows == nullptr || push->rows->num_rows() <= 0) Fail("a push has rows", text);
    if (!push->rows->ValidateFull().ok()) Fail("the pushed table is invalid", text);
  }

  if (auto write = granary::ParseOnlineWriteRequest(text, *f.defs, f.service->layouts());
      write.ok()) {
    if (write->rows == nullptr || write->rows->num_rows() != write->num_rows) {
      Fail("a write has its rows", text);
    }
    if (!write->rows->ValidateFull().ok()) Fail("the written batch is invalid", text);
    const auto& layout = *f.service->layouts().at(write->feature_view_name);
    for (const auto& k : layout.join_keys()) {
      if (write->rows->GetColumnByName(k.name) == nullptr) Fail("a write has its keys", text);
    }
    if (write->rows->GetColumnByName("event_timestamp") == nullptr) {
      Fail("a write has its event time", text);
    }
  }

  if (auto body = granary::ParseMaterializeRequest(text); body.ok()) {
    if (granary::CheckMaterializeViews(*f.defs, *body).ok()) {
      for (const std::string& name : body->views) {
        const granary::FeatureView* view = f.defs->FindFeatureView(name);
        if (view == nullptr || !view->online) Fail("a checked view is an online view", text);
      }
    }
  }
  return 0;
}
