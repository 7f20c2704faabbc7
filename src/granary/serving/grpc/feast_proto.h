// Feast's gRPC serving messages (feast.serving.GetOnlineFeaturesRequest / Response, generated at
// build time from the pinned feast package: cmake/FeastProtos.cmake) to and from the
// transport-free get-online-features service (serving/online_features.h).
//
// Request: `features` (FeatureList) or `feature_service`, `entities` (join key to RepeatedValue),
// `full_feature_names`, `include_feature_view_version_metadata`. Entity columns come out sorted by
// join key name (a protobuf map keeps no order). `request_context` feeds Feast's on-demand views,
// which Granary has not: a non-empty one is refused.
//
// Response: the JSON answer's shape in Feast's types: entity columns first (PRESENT, event time
// the epoch), then one FeatureVector per feature; statuses are FieldStatus (same numbering as
// FeatureStatus); a null or missing value is an empty Value; timestamps are
// unix_timestamp_val in whole seconds (Feast's type; the microseconds are dropped, toward the
// past); bytes stay bytes.
#pragma once

#include "feast/serving/ServingService.pb.h"
#include "granary/common/result.h"
#include "granary/online/online_features.h"
#include "granary/serving/online_features.h"

namespace granary::serving {

// InvalidArgument naming the entity and position of a value that cannot be a join key (lists,
// maps, sets), or a non-empty request_context.
Result<OnlineFeaturesRequest> FromFeastProto(const feast::serving::GetOnlineFeaturesRequest& req);

// Fills `out` for a resolved request and what the store returned (the request must come from the
// service that resolved it).
void ToFeastProto(const ResolvedOnlineRequest& request, const OnlineFeatures& features,
                  feast::serving::GetOnlineFeaturesResponse* out);

}  // namespace granary::serving
