#include "merge_row.h"

#include <algorithm>

#include "granary/online/value_codec.h"

namespace granary::bench {

void StartRow(std::string* out) { out->push_back(kMergeRowVersion); }

void AppendSection(const SectionRef& section, std::string* out) {
  layout::PutBigEndian32(out, section.view_id);
  layout::PutVarint(out, kSectionHeader + section.body.size());
  out->push_back(static_cast<char>(section.flags));
  layout::PutFixed<int64_t>(out, section.first_written);
  layout::PutFixed<int64_t>(out, section.expire_at);
  out->append(section.body);
}

void AppendWriteOperand(uint32_t view_id, int64_t now_micros, int64_t expire_at,
                        std::string_view body, std::string* out) {
  StartRow(out);
  AppendSection({view_id, kSectionContinues, now_micros, expire_at, body}, out);
}

bool ForEachSection(std::string_view row, const std::function<void(const SectionRef&)>& f) {
  return WalkSections(row, [&](const SectionRef& s) {
    f(s);
    return true;
  });
}

namespace {

// One view's summary while folding: the section's header and its winning body's order.
struct Summary {
  SectionRef section;
  BodyHeader header;
};

// X (earlier) then Y (later), merge_row.h.
void Combine(Summary* x, const Summary& y) {
  const bool survives = (y.section.flags & kSectionContinues) != 0 &&
                        x->section.expire_at > y.section.first_written &&
                        x->header.fingerprint == y.header.fingerprint;
  if (survives) {
    if (x->header.order.Compare(y.header.order) <= 0) {
      x->section.body = y.section.body;
      x->header = y.header;
    }
  } else {
    x->section.body = y.section.body;
    x->header = y.header;
    x->section.flags &= static_cast<uint8_t>(~kSectionContinues);
  }
  x->section.expire_at = y.section.expire_at;
}

}  // namespace

bool MergeRows(const std::vector<std::string_view>& rows, const int64_t* now_micros,
               std::string* out) {
  // Every section with its row's index; a stable sort by view id keeps write order per view.
  std::vector<Summary> all;
  all.reserve(rows.size() * 2);
  for (std::string_view row : rows) {
    bool ok = true;
    const bool well_formed = WalkSections(row, [&](const SectionRef& s) {
      Summary summary{s, {}};
      ok = ParseBodyHeader(s.body, 0, &summary.header);
      all.push_back(summary);
      return ok;
    });
    if (!well_formed || !ok) return false;
  }
  if (rows.size() > 1) {
    std::stable_sort(all.begin(), all.end(), [](const Summary& a, const Summary& b) {
      return a.section.view_id < b.section.view_id;
    });
  }
  out->clear();
  StartRow(out);
  for (size_t i = 0; i < all.size();) {
    Summary folded = all[i];
    size_t j = i + 1;
    for (; j < all.size() && all[j].section.view_id == folded.section.view_id; ++j) {
      Combine(&folded, all[j]);
    }
    i = j;
    if (now_micros != nullptr && folded.section.expire_at <= *now_micros) continue;
    AppendSection(folded.section, out);
  }
  return true;
}

bool SectionMergeOperator::FullMergeV2(const MergeOperationInput& in,
                                       MergeOperationOutput* out) const {
  std::vector<std::string_view> rows;
  rows.reserve(in.operand_list.size() + 1);
  if (in.existing_value != nullptr) {
    rows.emplace_back(in.existing_value->data(), in.existing_value->size());
  }
  for (const rocksdb::Slice& op : in.operand_list) rows.emplace_back(op.data(), op.size());
  const int64_t now = now_();
  return MergeRows(rows, &now, &out->new_value);
}

bool SectionMergeOperator::PartialMergeMulti(const rocksdb::Slice&,
                                             const std::deque<rocksdb::Slice>& operands,
                                             std::string* out, rocksdb::Logger*) const {
  std::vector<std::string_view> rows;
  rows.reserve(operands.size());
  for (const rocksdb::Slice& op : operands) rows.emplace_back(op.data(), op.size());
  return MergeRows(rows, nullptr, out);
}

bool SectionMergeOperator::PartialMerge(const rocksdb::Slice&, const rocksdb::Slice& left,
                                        const rocksdb::Slice& right, std::string* out,
                                        rocksdb::Logger*) const {
  return MergeRows(
      {std::string_view(left.data(), left.size()), std::string_view(right.data(), right.size())},
      nullptr, out);
}

rocksdb::CompactionFilter::Decision SectionExpiryFilter::FilterV2(int, const rocksdb::Slice&,
                                                                  ValueType type,
                                                                  const rocksdb::Slice& value,
                                                                  std::string* new_value,
                                                                  std::string*) const {
  if (type != ValueType::kValue) return Decision::kKeep;
  const std::string_view row(value.data(), value.size());
  const int64_t now = now_();
  int live = 0, expired = 0;
  const bool ok = WalkSections(row, [&](const SectionRef& s) {
    (s.expire_at > now ? live : expired) += 1;
    return true;
  });
  if (!ok) return Decision::kKeep;          // a malformed row is left for reads to report
  if (live == 0) return Decision::kRemove;  // an empty row too (merge_row.h)
  if (expired == 0) return Decision::kKeep;
  new_value->clear();
  StartRow(new_value);
  WalkSections(row, [&](const SectionRef& s) {
    if (s.expire_at > now) AppendSection(s, new_value);
    return true;
  });
  return Decision::kChangeValue;
}

}  // namespace granary::bench
