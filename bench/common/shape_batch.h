// The rows of Feast's benchmark shape that bench/online and bench/serve load into an online
// store: customer_id in [begin, end), one event time, and each feature of the view (int64 or
// float64) from a generator seeded by the view and the first id, so every run writes the same.
#pragma once

#include <arrow/api.h>

#include <memory>

#include "granary/common/time.h"
#include "granary/online/view_layout.h"

namespace granary {

std::shared_ptr<arrow::RecordBatch> MakeShapeBatch(const ViewLayout& view, int64_t begin,
                                                   int64_t end, Timestamp event);

}  // namespace granary
