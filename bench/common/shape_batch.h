// The rows of Feast's benchmark shape that bench/online and bench/serve load into an online
// store: customer_id in [begin, end), one event time, and each feature of the view (int64 or
// float64) from a generator seeded by the view and the first id, so every run writes the same.
// MakeShapeDefinitions gives the shape's definitions: project "bench", entity customer
// (customer_id, int64), views view_00, view_01, ... of features f00, f01, ... (the first half
// int64, the rest float64), all online.
#pragma once

#include <arrow/api.h>

#include <memory>

#include "granary/common/time.h"
#include "granary/online/view_layout.h"
#include "granary/registry/definitions.h"

namespace granary {

std::shared_ptr<arrow::RecordBatch> MakeShapeBatch(const ViewLayout& view, int64_t begin,
                                                   int64_t end, Timestamp event);

Definitions MakeShapeDefinitions(int views, int features);

}  // namespace granary
