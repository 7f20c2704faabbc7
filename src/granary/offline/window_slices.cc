#include "granary/offline/window_slices.h"

#include <arrow/array.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>

#include "granary/aggregation/window_kernel.h"

namespace granary {
namespace {

std::string FormatMiB(int64_t bytes) {
  const double mib = static_cast<double>(bytes) / (1 << 20);
  return mib < 10 ? fmt::format("{:.1f} MiB", mib) : fmt::format("{:.0f} MiB", mib);
}

}  // namespace

Result<WindowSlicePlan> PlanWindowSlices(const arrow::Array& row_times,
                                         const WindowSliceInputs& inputs) {
  if (inputs.granularity.micros <= 0) {
    return Status::Internal("PlanWindowSlices: the granularity must be positive");
  }
  WindowSlicePlan plan;
  const int64_t hold = std::max<int64_t>(inputs.hold_budget, 0);
  if (inputs.events_bytes <= hold) {
    plan.hold_bytes = hold;
    plan.slice_bytes = inputs.events_bytes;
    plan.reason = fmt::format(
        "its events ({}) fit half ({}) of the join's share of the memory budget: held in one read, "
        "nothing to spill",
        FormatMiB(inputs.events_bytes), FormatMiB(hold));
    return plan;
  }
  const Duration lead{inputs.longest.micros + inputs.granularity.micros};
  const std::string one_read = fmt::format(
      "its events ({}) are more than half ({}) of the join's share of the memory budget",
      FormatMiB(inputs.events_bytes), FormatMiB(hold));
  if (inputs.end < inputs.start) {
    plan.slice_bytes = inputs.events_bytes;
    plan.reason = one_read +
                  ": read once, partitioned by key and spilled past what the "
                  "partitioners hold";
    return plan;
  }
  const double rate = static_cast<double>(inputs.events_bytes) /
                      static_cast<double>(inputs.end.micros - inputs.start.micros + 1);
  const double least_slice = rate * 5.0 * static_cast<double>(lead.micros);
  if (least_slice > static_cast<double>(hold)) {
    plan.slice_bytes = inputs.events_bytes;
    plan.reason = fmt::format(
        "{}, and a time slice of the entity rows would hold at least {} (4x its {} lead-in "
        "beyond the lead-in it reads again): read once, partitioned by key and spilled past "
        "what the partitioners hold",
        one_read, FormatMiB(static_cast<int64_t>(least_slice)), FormatDuration(lead));
    return plan;
  }
  // A slice's rows lie within `span` of its first row: its events, from that row's window start
  // (at most `lead` before it) to its last row, then take at most `hold` bytes.
  const int64_t span = static_cast<int64_t>(static_cast<double>(hold) / rate) - lead.micros;
  const int64_t n = row_times.length();
  const int64_t* t = row_times.data()->GetValues<int64_t>(1);
  std::vector<int64_t> timed, untimed;
  timed.reserve(n);
  for (int64_t r = 0; r < n; ++r) (row_times.IsNull(r) ? untimed : timed).push_back(r);
  if (timed.empty()) {
    plan.slice_bytes = inputs.events_bytes;
    plan.reason = one_read + ", but no entity row has a time: nothing to read in slices";
    return plan;
  }
  std::stable_sort(timed.begin(), timed.end(), [&](int64_t a, int64_t b) { return t[a] < t[b]; });
  for (size_t i = 0; i < timed.size();) {
    const int64_t first = t[timed[i]];
    size_t end = i + 1;
    while (end < timed.size() && t[timed[end]] - first <= span) ++end;
    WindowSlice slice;
    slice.rows.assign(timed.begin() + i, timed.begin() + end);
    // The rows' windows clipped to the range the one read would have read (events outside it
    // are never read); a slice that ends before the range starts reads one instant, whose
    // events are all after its rows and so in none of their windows.
    const int64_t window_start =
        aggregation::WindowStart(first, inputs.longest, inputs.granularity);
    slice.start = std::max(Timestamp{window_start}, inputs.start);
    slice.end = std::max(slice.start, std::min(Timestamp{t[timed[end - 1]]}, inputs.end));
    plan.slices.push_back(std::move(slice));
    i = end;
  }
  std::vector<int64_t>().swap(timed);
  std::vector<int64_t>& first_rows = plan.slices.front().rows;
  first_rows.insert(first_rows.end(), untimed.begin(), untimed.end());
  plan.hold_bytes = hold;
  plan.slice_bytes = hold;
  plan.reason =
      plan.slices.size() == 1
          ? fmt::format(
                "{}, but its entity rows' windows reach at most {} of them: read once over that "
                "range",
                one_read, FormatMiB(hold))
          : fmt::format(
                "{}: read in {} time slices of the entity rows, each with the events its rows' "
                "windows reach (up to {} each, the {} before a slice read again)",
                one_read, plan.slices.size(), FormatMiB(hold), FormatDuration(lead));
  return plan;
}

}  // namespace granary
