#include "granary/offline/chosen_values.h"

#include <fmt/format.h>
#include <parquet/column_page.h>
#include <parquet/column_reader.h>
#include <parquet/encoding.h>
#include <parquet/exception.h>
#include <parquet/schema.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <vector>

namespace granary {
namespace {

// A chosen, non-null row of the data page being read: its value's place among the page's
// non-null values and the output slot it goes to.
struct ChosenValue {
  int32_t value;
  int64_t slot;
};

// Picks the chosen rows of one column chunk, page after page (a page's rows follow the last's:
// the column has no repetition, so a page's values are its rows). One per column chunk.
template <typename DType>
class ChunkPicker {
 public:
  using T = typename DType::c_type;
  static constexpr int kWidth = static_cast<int>(sizeof(T));

  ChunkPicker(const parquet::ColumnDescriptor* descr, const int64_t* rows, int64_t count,
              PickedValues out)
      : max_definition_(descr->max_definition_level()),
        rows_(rows),
        count_(count),
        out_(out),
        indices_decoder_(parquet::MakeDictDecoder<DType>(descr)) {}

  Status Dictionary(const parquet::DictionaryPage& page) {
    if (page.encoding() != parquet::Encoding::PLAIN &&
        page.encoding() != parquet::Encoding::PLAIN_DICTIONARY) {
      return Status::NotImplemented(
          fmt::format("a dictionary page encoded {}", parquet::EncodingToString(page.encoding())));
    }
    const int64_t n = page.num_values();
    if (n < 0 || n * kWidth > page.size()) {
      return Status::Corruption(
          fmt::format("a dictionary page of {} values has {} bytes, fewer than {} bytes a value", n,
                      page.size(), kWidth));
    }
    // PLAIN fixed-width values are the little-endian values themselves: a copy decodes them.
    dictionary_.resize(static_cast<size_t>(n));
    if (n > 0) std::memcpy(dictionary_.data(), page.data(), static_cast<size_t>(n) * kWidth);
    has_dictionary_ = true;
    return Status::OK();
  }

  Status Data(const parquet::DataPage& page) {
    const int32_t rows = page.num_values();
    if (rows < 0) {
      return Status::Corruption(
          fmt::format("the data page from row {} declares {} values", first_row_, rows));
    }
    const uint8_t* data = page.data();
    int64_t size = page.size();
    // The page's non-null values (V1: counted from its levels; V2: from its header).
    int64_t non_null_bound = rows;
    bool no_nulls = false;
    if (page.type() == parquet::PageType::DATA_PAGE) {
      const auto& v1 = static_cast<const parquet::DataPageV1&>(page);
      if (max_definition_ > 0) {
        if (v1.definition_level_encoding() != parquet::Encoding::RLE) {
          return Status::NotImplemented(
              fmt::format("definition levels encoded {}",
                          parquet::EncodingToString(v1.definition_level_encoding())));
        }
        // The levels are counted once over the whole page first (runs, not values, for the
        // usual page without nulls): the page's exact non-null count, and when there are no
        // nulls the walk needs no levels at all. Else they are read again for the walk.
        const int consumed = levels_.SetData(parquet::Encoding::RLE, max_definition_, rows, data,
                                             static_cast<int32_t>(size));
        int64_t non_null = 0;
        for (int64_t counted = 0; counted < rows;) {
          const auto run = levels_.CountUpTo(max_definition_, static_cast<int>(rows - counted));
          if (run.processed_count <= 0) return LevelsEndEarly(first_row_ + rows - 1);
          non_null += run.matching_count;
          counted += run.processed_count;
        }
        non_null_bound = non_null;
        no_nulls = non_null == rows;
        if (!no_nulls) {
          levels_.SetData(parquet::Encoding::RLE, max_definition_, rows, data,
                          static_cast<int32_t>(size));
        }
        data += consumed;
        size -= consumed;
      }
    } else {
      const auto& v2 = static_cast<const parquet::DataPageV2&>(page);
      const int64_t repetition = v2.repetition_levels_byte_length();
      const int64_t definition = v2.definition_levels_byte_length();
      if (repetition < 0 || definition < 0 || repetition + definition > size ||
          v2.num_nulls() < 0 || v2.num_nulls() > rows) {
        return Status::Corruption(fmt::format(
            "a V2 data page of {} bytes and {} rows declares {} bytes of repetition levels, {} of "
            "definition levels and {} nulls",
            size, rows, repetition, definition, v2.num_nulls()));
      }
      if (max_definition_ > 0) {
        levels_.SetDataV2(static_cast<int32_t>(definition), max_definition_, rows,
                          data + repetition);
      }
      data += repetition + definition;
      size -= repetition + definition;
      non_null_bound = rows - v2.num_nulls();
      no_nulls = v2.num_nulls() == 0;
    }
    GRANARY_RETURN_NOT_OK(Walk(rows, no_nulls));
    if (!chosen_.empty()) GRANARY_RETURN_NOT_OK(Copy(page.encoding(), data, size, non_null_bound));
    first_row_ += rows;
    return Status::OK();
  }

  // After the last page: every chosen row was in one.
  Status Finish() const {
    if (next_ == count_) return Status::OK();
    return Status::Corruption(fmt::format("the column chunk ends at row {} but row {} was chosen",
                                          first_row_, rows_[next_]));
  }

 private:
  // Finds the chosen rows of the page (rows [first_row_, first_row_ + rows)) in the definition
  // levels: each null one is written out at once, each other one kept in chosen_ with its place
  // among the page's non-null values. The levels are decoded in one batch up to the last chosen
  // row (a count up to each chosen row instead, CountUpTo, unpacked bit-packed levels again at
  // every call: twice the CPU at 5 % of the rows). `no_nulls`: the page has none; its levels are
  // not read.
  Status Walk(int32_t rows, bool no_nulls) {
    const int64_t end_row = first_row_ + rows;
    const int64_t begin = next_;
    const int64_t end = std::lower_bound(rows_ + begin, rows_ + count_, end_row) - rows_;
    next_ = end;
    chosen_.resize(static_cast<size_t>(end - begin));
    size_t kept = 0;
    if (max_definition_ == 0 || no_nulls) {
      for (int64_t i = begin; i < end; ++i) {
        chosen_[kept++] = {static_cast<int32_t>(rows_[i] - first_row_), i};
      }
    } else if (end > begin) {
      const int64_t last = rows_[end - 1] - first_row_;
      levels_buffer_.resize(static_cast<size_t>(last + 1));
      if (levels_.Decode(static_cast<int>(last + 1), levels_buffer_.data()) != last + 1) {
        return LevelsEndEarly(rows_[end - 1]);
      }
      const int16_t* level = levels_buffer_.data();
      int64_t at = 0;        // levels counted up to this row of the page
      int32_t non_null = 0;  // non-null values before `at`
      for (int64_t i = begin; i < end; ++i) {
        const int64_t row = rows_[i] - first_row_;
        for (; at < row; ++at) non_null += level[at] == max_definition_;
        if (level[row] == max_definition_) {
          chosen_[kept++] = {non_null, i};
        } else {
          WriteNull(i);
        }
      }
    }
    chosen_.resize(kept);
    return Status::OK();
  }

  void WriteNull(int64_t slot) {
    out_.valid[slot] = 0;
    std::memset(out_.values + slot * kWidth, 0, kWidth);
  }

  Status LevelsEndEarly(int64_t row) const {
    return Status::Corruption(fmt::format(
        "the definition levels of the page from row {} end before row {}", first_row_, row));
  }

  // Copies the values of chosen_ from the page's values (`data`, `size` bytes).
  Status Copy(parquet::Encoding::type encoding, const uint8_t* data, int64_t size,
              int64_t non_null_bound) {
    const int64_t needed = static_cast<int64_t>(chosen_.back().value) + 1;
    if (needed > non_null_bound) {
      return Status::Corruption(
          fmt::format("the page from row {} has at most {} values but its levels give {}",
                      first_row_, non_null_bound, needed));
    }
    switch (encoding) {
      case parquet::Encoding::PLAIN:
        if (needed * kWidth > size) {
          return Status::Corruption(fmt::format(
              "the PLAIN page from row {} has {} bytes of values, fewer than its {} values need",
              first_row_, size, needed));
        }
        for (const ChosenValue& c : chosen_) {
          std::memcpy(out_.values + c.slot * kWidth, data + int64_t{c.value} * kWidth, kWidth);
          out_.valid[c.slot] = 1;
        }
        return Status::OK();
      case parquet::Encoding::PLAIN_DICTIONARY:
      case parquet::Encoding::RLE_DICTIONARY: {
        if (!has_dictionary_) {
          return Status::Corruption(fmt::format(
              "the page from row {} is dictionary-encoded but the chunk has no dictionary page",
              first_row_));
        }
        // The indices are decoded up to the last chosen value (bit-unpacking is cheap beside
        // decoding values); the values are looked up for the chosen ones only.
        indices_decoder_->SetData(static_cast<int>(non_null_bound), data, static_cast<int>(size));
        indices_.resize(static_cast<size_t>(needed));
        if (indices_decoder_->DecodeIndices(static_cast<int>(needed), indices_.data()) != needed) {
          return Status::Corruption(
              fmt::format("the dictionary indices of the page from row {} end before value {}",
                          first_row_, needed));
        }
        const T* dictionary = dictionary_.data();
        const auto dictionary_size = static_cast<uint32_t>(dictionary_.size());
        for (const ChosenValue& c : chosen_) {
          const int32_t index = indices_[static_cast<size_t>(c.value)];
          if (static_cast<uint32_t>(index) >= dictionary_size) {
            return Status::Corruption(
                fmt::format("the page from row {} has dictionary index {} of a dictionary of {}",
                            first_row_, index, dictionary_size));
          }
          std::memcpy(out_.values + c.slot * kWidth, &dictionary[index], kWidth);
          out_.valid[c.slot] = 1;
        }
        return Status::OK();
      }
      default:
        return Status::NotImplemented(
            fmt::format("a data page encoded {}", parquet::EncodingToString(encoding)));
    }
  }

  const int16_t max_definition_;
  const int64_t* const rows_;
  const int64_t count_;
  const PickedValues out_;
  int64_t next_ = 0;       // the first chosen row not yet picked
  int64_t first_row_ = 0;  // the row of the next page's first value
  parquet::LevelDecoder levels_;
  std::unique_ptr<parquet::DictDecoder<DType>> indices_decoder_;
  std::vector<T> dictionary_;
  bool has_dictionary_ = false;
  std::vector<ChosenValue> chosen_;
  std::vector<int16_t> levels_buffer_;
  std::vector<int32_t> indices_;
};

template <typename DType>
Status PickChunk(parquet::RowGroupReader& row_group, int column, const int64_t* rows, int64_t count,
                 PickedValues out) {
  const parquet::ColumnDescriptor* descr = row_group.metadata()->schema()->Column(column);
  ChunkPicker<DType> picker(descr, rows, count, out);
  std::unique_ptr<parquet::PageReader> pages = row_group.GetColumnPageReader(column);
  while (std::shared_ptr<parquet::Page> page = pages->NextPage()) {
    switch (page->type()) {
      case parquet::PageType::DICTIONARY_PAGE:
        GRANARY_RETURN_NOT_OK(
            picker.Dictionary(static_cast<const parquet::DictionaryPage&>(*page)));
        break;
      case parquet::PageType::DATA_PAGE:
      case parquet::PageType::DATA_PAGE_V2:
        GRANARY_RETURN_NOT_OK(picker.Data(static_cast<const parquet::DataPage&>(*page)));
        break;
      default:
        break;  // index pages and the like hold no values
    }
  }
  return picker.Finish();
}

}  // namespace

bool PickSupports(const parquet::ColumnDescriptor& column) {
  if (column.max_repetition_level() != 0) return false;
  switch (column.physical_type()) {
    case parquet::Type::INT32:
    case parquet::Type::INT64:
    case parquet::Type::FLOAT:
    case parquet::Type::DOUBLE:
      return true;
    default:
      return false;
  }
}

int PickValueWidth(const parquet::ColumnDescriptor& column) {
  return parquet::GetTypeByteSize(column.physical_type());
}

Status PickChosenValues(parquet::RowGroupReader& row_group, int column, const int64_t* rows,
                        int64_t count, PickedValues out) {
  const parquet::ColumnDescriptor* descr = row_group.metadata()->schema()->Column(column);
  if (!PickSupports(*descr)) {
    return Status::NotImplemented(
        fmt::format("column '{}' of physical type {}{}", descr->path()->ToDotString(),
                    parquet::TypeToString(descr->physical_type()),
                    descr->max_repetition_level() > 0 ? ", repeated" : ""));
  }
  // parquet's page reader and level decoder throw on damaged headers and levels.
  try {
    switch (descr->physical_type()) {
      case parquet::Type::INT32:
        return PickChunk<parquet::Int32Type>(row_group, column, rows, count, out);
      case parquet::Type::INT64:
        return PickChunk<parquet::Int64Type>(row_group, column, rows, count, out);
      case parquet::Type::FLOAT:
        return PickChunk<parquet::FloatType>(row_group, column, rows, count, out);
      default:
        return PickChunk<parquet::DoubleType>(row_group, column, rows, count, out);
    }
  } catch (const std::exception& e) {
    return Status::Corruption(
        fmt::format("column '{}': {}", descr->path()->ToDotString(), e.what()));
  }
}

}  // namespace granary
