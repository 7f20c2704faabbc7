// Feast's GetOnlineFeaturesResponse written straight into protobuf's wire format from a store's
// answer, without building the message. The bytes are exactly those of the message ToFeastProto
// (feast_proto.h) fills, serialized (feast_wire_test compares them for every value type, nulls,
// lists and statuses): a client cannot tell the two apart. What it saves is the message itself: a
// 100 x 250 answer is 25,000 Value and 25,000 Timestamp messages, each built, measured and
// serialized by protobuf (docs/PERFORMANCE.md, "gRPC: the answer written as bytes").
//
// Field numbers come from the generated code of the pinned feast package (its k...FieldNumber
// constants), not from this file; the wire rules are protobuf's: fields in field-number order,
// packed repeated scalars, oneof members written even when zero, proto3 scalars outside a oneof
// left out when zero.
//
// Thread-safe: a function of its arguments, which it only reads.
#pragma once

#include <string>

#include "granary/common/fork_join.h"
#include "granary/online/online_features.h"
#include "granary/serving/online_features.h"

namespace granary::serving {

// Appends to `out` the serialized GetOnlineFeaturesResponse of a resolved request and what the
// store returned (the request must come from the service that resolved it). With `split`, an
// answer of at least OnlineFeaturesService::kSplitAnswerValues values has its feature columns
// written in parts on the pool's threads and joined, to the same bytes (as the JSON answer).
void WriteFeastResponse(const ResolvedOnlineRequest& request, const OnlineFeatures& features,
                        std::string* out, ForkJoinPool* split = nullptr);

}  // namespace granary::serving
