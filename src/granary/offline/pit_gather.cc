#include "granary/offline/pit_gather.h"

#include <arrow/util/bit_util.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace granary {

Result<std::unique_ptr<ScatteredColumn>> ScatteredColumn::Make(
    std::shared_ptr<arrow::DataType> type, int64_t rows, int64_t chunk_rows) {
  auto column = std::unique_ptr<ScatteredColumn>(new ScatteredColumn());
  // Bools are bits: width 0.
  column->width_ = type->id() == arrow::Type::BOOL ? 0 : type->byte_width();
  column->type_ = std::move(type);
  column->rows_ = rows;
  if (chunk_rows > 0 && chunk_rows < rows &&
      std::has_single_bit(static_cast<uint64_t>(chunk_rows))) {
    column->chunk_shift_ = std::countr_zero(static_cast<uint64_t>(chunk_rows));
    column->chunk_mask_ = chunk_rows - 1;
  } else {
    chunk_rows = std::max<int64_t>(rows, 1);
  }
  for (int64_t first = 0; first < rows || first == 0; first += chunk_rows) {
    const int64_t length = std::min(chunk_rows, rows - first);
    auto values = column->width_ == 0 ? arrow::AllocateEmptyBitmap(length)
                                      : arrow::AllocateBuffer(length * column->width_);
    auto validity = arrow::AllocateEmptyBitmap(length);  // zeroed: every row null
    if (!values.ok() || !validity.ok()) {
      return Status::Internal(fmt::format("out of memory for a column of {} rows", rows));
    }
    std::shared_ptr<arrow::Buffer> value_buffer = std::move(*values);
    if (column->width_ > 0) {
      std::memset(value_buffer->mutable_data(), 0, static_cast<size_t>(value_buffer->size()));
    }
    column->value_data_.push_back(value_buffer->mutable_data());
    column->bit_data_.push_back((*validity)->mutable_data());
    column->values_.push_back(std::move(value_buffer));
    column->validity_.push_back(std::move(*validity));
    if (rows == 0) break;
  }
  return column;
}

std::shared_ptr<arrow::ChunkedArray> ScatteredColumn::Finish() {
  arrow::ArrayVector chunks;
  const int64_t chunk_rows = chunk_shift_ == 63 ? std::max<int64_t>(rows_, 1) : chunk_mask_ + 1;
  for (size_t k = 0; k < values_.size(); ++k) {
    const int64_t length = std::min(chunk_rows, rows_ - static_cast<int64_t>(k) * chunk_rows);
    chunks.push_back(arrow::MakeArray(
        arrow::ArrayData::Make(type_, length, {std::move(validity_[k]), std::move(values_[k])},
                               arrow::kUnknownNullCount)));
  }
  values_.clear();
  validity_.clear();
  value_data_.clear();
  bit_data_.clear();
  return std::make_shared<arrow::ChunkedArray>(std::move(chunks), type_);
}

template <typename RowOf>
void ScatteredColumn::PutRows(const arrow::ArrayData& source, const ChosenRow* begin,
                              const ChosenRow* end, RowOf row_of) {
  const uint8_t* valid =
      source.null_count != 0 && source.buffers[0] != nullptr ? source.buffers[0]->data() : nullptr;
  uint8_t* const* bits = bit_data_.data();
  uint8_t* const* to = value_data_.data();
  const int shift = chunk_shift_;
  const int64_t mask = chunk_mask_;
  if (width_ == 0) {
    const uint8_t* from = source.buffers[1]->data();
    for (const ChosenRow* c = begin; c != end; ++c) {
      const int64_t row = source.offset + row_of(c);
      if (valid != nullptr && !arrow::bit_util::GetBit(valid, row)) continue;
      const int64_t entity_row = EntityRowOf(*c);
      const int64_t chunk = entity_row >> shift, at = entity_row & mask;
      arrow::bit_util::SetBitTo(to[chunk], at, arrow::bit_util::GetBit(from, row));
      arrow::bit_util::SetBit(bits[chunk], at);
    }
    return;
  }
  const uint8_t* from = source.buffers[1]->data() + source.offset * width_;
  for (const ChosenRow* c = begin; c != end; ++c) {
    const int64_t row = row_of(c);
    if (valid != nullptr && !arrow::bit_util::GetBit(valid, source.offset + row)) continue;
    const int64_t entity_row = EntityRowOf(*c);
    const int64_t chunk = entity_row >> shift, at = entity_row & mask;
    std::memcpy(to[chunk] + at * width_, from + row * width_, width_);
    arrow::bit_util::SetBit(bits[chunk], at);
  }
}

void ScatteredColumn::Put(const arrow::ArrayData& source, int64_t offset, const ChosenRow* begin,
                          const ChosenRow* end) {
  PutRows(source, begin, end, [offset](const ChosenRow* c) { return c->index - offset; });
}

void ScatteredColumn::PutChosen(const arrow::ArrayData& source, const int64_t* positions,
                                int64_t count, const ChosenRow* begin, const ChosenRow* end) {
  // The chosen rows come in read order: the source row only moves forward.
  int64_t k = 0;
  PutRows(source, begin, end, [positions, count, &k](const ChosenRow* c) {
    while (k + 1 < count && positions[k] < c->index) ++k;
    return k;
  });
}

// Sorts `chosen` (read positions up to `last_position`) by (read position, entity row) into a
// list of its own size (the one given may have room for every entity row; only the matched are
// kept): placed first into buckets of the position's top bits (about 32 rows each), which in
// order are ordered by position, then each bucket sorted on its own, in the cache. A std::sort
// of the whole list took 30-40 ms a view of 1 M rows, on one thread while the readers waited.
void SortByReadPosition(std::vector<ChosenRow>* chosen, int64_t last_position) {
  auto before = [](const ChosenRow& a, const ChosenRow& b) {
    return a.index != b.index ? a.index < b.index : EntityRowOf(a) < EntityRowOf(b);
  };
  const int64_t rows = static_cast<int64_t>(chosen->size());
  const int position_bits = std::bit_width(static_cast<uint64_t>(last_position));
  const int bucket_bits = std::clamp(
      std::min(static_cast<int>(std::bit_width(static_cast<uint64_t>(rows))) - 5, position_bits), 0,
      20);
  const int shift = position_bits - bucket_bits;
  const int64_t buckets = int64_t{1} << bucket_bits;
  std::vector<int64_t> starts(buckets + 1, 0);
  for (const ChosenRow& c : *chosen) ++starts[(c.index >> shift) + 1];
  for (int64_t b = 0; b < buckets; ++b) starts[b + 1] += starts[b];
  std::vector<ChosenRow> sorted(chosen->size());
  {
    std::vector<int64_t> at(starts.begin(), starts.end() - 1);
    for (const ChosenRow& c : *chosen) sorted[at[c.index >> shift]++] = c;
  }
  chosen->swap(sorted);
  sorted = {};
  for (int64_t b = 0; b < buckets; ++b) {
    std::sort(chosen->begin() + starts[b], chosen->begin() + starts[b + 1], before);
  }
}

int64_t DistinctChosenRows(const std::vector<ChosenRow>& chosen) {
  int64_t distinct = 0;
  for (size_t p = 0; p < chosen.size(); ++p) {
    distinct += p == 0 || chosen[p].index != chosen[p - 1].index;
  }
  return distinct;
}

namespace {

// EntityOrder's array with indices of type T.
template <typename T>
Result<std::shared_ptr<arrow::Array>> EntityOrderOf(const std::vector<ChosenRow>& chosen,
                                                    int64_t rows,
                                                    std::shared_ptr<arrow::DataType> type) {
  auto values = arrow::AllocateBuffer(rows * static_cast<int64_t>(sizeof(T)));
  auto validity = arrow::AllocateEmptyBitmap(rows);
  if (!values.ok() || !validity.ok()) return Status::Internal("out of memory");
  auto* order = reinterpret_cast<T*>((*values)->mutable_data());
  std::fill(order, order + rows, T{0});
  uint8_t* bits = (*validity)->mutable_data();
  T slot = -1;  // the place of chosen[p]'s value among the gathered values
  for (size_t p = 0; p < chosen.size(); ++p) {
    if (p == 0 || chosen[p].index != chosen[p - 1].index) ++slot;
    order[EntityRowOf(chosen[p])] = slot;
    arrow::bit_util::SetBit(bits, EntityRowOf(chosen[p]));
  }
  auto data = arrow::ArrayData::Make(
      std::move(type), rows, {std::move(*validity), std::move(*values)}, arrow::kUnknownNullCount);
  return arrow::MakeArray(data);
}

}  // namespace

Result<std::shared_ptr<arrow::Array>> EntityOrder(const std::vector<ChosenRow>& chosen,
                                                  int64_t rows) {
  if (rows <= INT32_MAX) return EntityOrderOf<int32_t>(chosen, rows, arrow::int32());
  return EntityOrderOf<int64_t>(chosen, rows, arrow::int64());
}

int64_t EntityOrderBytes(int64_t rows) {
  const int64_t width = rows <= INT32_MAX ? 4 : 8;
  return rows * width + arrow::bit_util::BytesForBits(rows);
}

// Bytes the gather holds for an output column of `type` over `rows` entity rows, `distinct` of
// them gathered: a scattered column's size, or else the values gathered in read order and the
// column in entity order (an estimate: 16 bytes a value each, as for strings).
int64_t GatherBytesFor(const arrow::DataType& type, int64_t rows, int64_t distinct) {
  if (ScatteredColumn::Supports(type)) return ScatteredColumn::BytesFor(type, rows);
  return 16 * (rows + distinct);
}

}  // namespace granary
