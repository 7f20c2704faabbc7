#include "granary/offline/deletion_vector.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <fstream>

#include "granary/offline/delta_log.h"

namespace granary {
namespace {

constexpr uint32_t kRoaringBitmapArrayMagic = 1681511377;        // portable, little-endian
constexpr uint32_t kNativeRoaringBitmapArrayMagic = 1681511376;  // native, big-endian
constexpr uint32_t kSerialCookieNoRunContainer = 12346;
constexpr uint32_t kSerialCookie = 12347;
constexpr int kNoOffsetThreshold = 4;
constexpr uint32_t kMaxArrayCardinality = 4096;
constexpr size_t kBitsetWords = 1024;  // 65536 bits

constexpr std::string_view kZ85Alphabet =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

uint32_t DeletionVectorCrc32(std::span<const uint8_t> bytes) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    return table;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (uint8_t b : bytes) crc = kTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

// Reads a RoaringBitmapArray from a byte span, checking every length against what is left and
// every invariant of the format; errors name `where_` and the byte offset.
class DeletionVectorDecoder {
 public:
  DeletionVectorDecoder(std::span<const uint8_t> bytes, std::string_view where)
      : bytes_(bytes), where_(where) {}

  Result<DeletionVector> Decode() {
    DeletionVector out;
    uint32_t magic = 0;
    GRANARY_RETURN_NOT_OK(Read32(&magic, "the magic number"));
    if (__builtin_bswap32(magic) == kNativeRoaringBitmapArrayMagic) return DecodeNative();
    if (magic != kRoaringBitmapArrayMagic) {
      return Error(0, fmt::format("magic number {} is not {} (a portable RoaringBitmapArray); the "
                                  "bytes are not a Delta deletion vector or use another format",
                                  magic, kRoaringBitmapArrayMagic));
    }
    uint64_t buckets = 0;
    GRANARY_RETURN_NOT_OK(Read64(&buckets, "the number of buckets"));
    // Each bucket takes at least 12 bytes (key and an empty cookie header).
    if (buckets > Remaining() / 12) {
      return Error(4,
                   fmt::format("{} buckets cannot fit in the {} bytes left", buckets, Remaining()));
    }
    int64_t previous_key = -1;
    for (uint64_t b = 0; b < buckets; ++b) {
      const size_t key_at = pos_;
      uint32_t key = 0;
      GRANARY_RETURN_NOT_OK(Read32(&key, "a bucket key"));
      if (key & 0x80000000u) {
        return Error(key_at, fmt::format("bucket key {} has its top bit set (row indexes of a "
                                         "deletion vector are below 2^63)",
                                         key));
      }
      if (static_cast<int64_t>(key) <= previous_key) {
        return Error(key_at, fmt::format("bucket key {} is not above the previous key {}", key,
                                         previous_key));
      }
      previous_key = key;
      GRANARY_RETURN_NOT_OK(DecodeBitmap32(uint64_t{key} << 16, &out));
    }
    if (pos_ != bytes_.size()) {
      return Error(pos_, fmt::format("{} bytes follow the bitmap", bytes_.size() - pos_));
    }
    return out;
  }

  // Delta's "native" RoaringBitmapArray layout (the protocol's inline example uses it): after the
  // big-endian magic, the number of 32-bit bitmaps and, per bitmap, its size in bytes (both
  // big-endian int32), then the bitmap; bitmap i holds the rows whose high 32 bits are i.
  Result<DeletionVector> DecodeNative() {
    DeletionVector out;
    uint32_t count = 0;
    GRANARY_RETURN_NOT_OK(ReadBigEndian32(&count, "the number of bitmaps"));
    if (count > 0x80000000u || count > Remaining() / 12) {
      return Error(4,
                   fmt::format("{} bitmaps cannot fit in the {} bytes left", count, Remaining()));
    }
    for (uint32_t i = 0; i < count; ++i) {
      uint32_t size = 0;
      const size_t size_at = pos_;
      GRANARY_RETURN_NOT_OK(ReadBigEndian32(&size, "a bitmap size"));
      GRANARY_RETURN_NOT_OK(Need(size, "a bitmap"));
      const size_t start = pos_;
      GRANARY_RETURN_NOT_OK(DecodeBitmap32(uint64_t{i} << 16, &out));
      if (pos_ - start != size) {
        return Error(size_at, fmt::format("bitmap {} takes {} bytes, not the {} its size says", i,
                                          pos_ - start, size));
      }
    }
    if (pos_ != bytes_.size()) {
      return Error(pos_, fmt::format("{} bytes follow the bitmap", bytes_.size() - pos_));
    }
    return out;
  }

 private:
  size_t Remaining() const { return bytes_.size() - pos_; }

  Status Error(size_t at, const std::string& what) const {
    return Status::Corruption(fmt::format("{}: deletion vector byte {}: {}", where_, at, what));
  }

  Status Need(size_t n, const char* what) const {
    if (Remaining() < n) {
      return Error(pos_,
                   fmt::format("truncated: {} needs {} bytes, {} left", what, n, Remaining()));
    }
    return Status::OK();
  }
  Status Read16(uint16_t* out, const char* what) {
    GRANARY_RETURN_NOT_OK(Need(2, what));
    *out = static_cast<uint16_t>(bytes_[pos_] | (bytes_[pos_ + 1] << 8));
    pos_ += 2;
    return Status::OK();
  }
  Status Read32(uint32_t* out, const char* what) {
    GRANARY_RETURN_NOT_OK(Need(4, what));
    *out = 0;
    for (int i = 3; i >= 0; --i) *out = (*out << 8) | bytes_[pos_ + i];
    pos_ += 4;
    return Status::OK();
  }
  Status ReadBigEndian32(uint32_t* out, const char* what) {
    GRANARY_RETURN_NOT_OK(Need(4, what));
    *out = 0;
    for (int i = 0; i < 4; ++i) *out = (*out << 8) | bytes_[pos_ + i];
    pos_ += 4;
    return Status::OK();
  }
  Status Read64(uint64_t* out, const char* what) {
    GRANARY_RETURN_NOT_OK(Need(8, what));
    *out = 0;
    for (int i = 7; i >= 0; --i) *out = (*out << 8) | bytes_[pos_ + i];
    pos_ += 8;
    return Status::OK();
  }

  // One 32-bit portable Roaring bitmap whose containers get keys base_key + their 16-bit key.
  Status DecodeBitmap32(uint64_t base_key, DeletionVector* out) {
    const size_t start = pos_;
    uint32_t cookie = 0;
    GRANARY_RETURN_NOT_OK(Read32(&cookie, "a Roaring cookie"));
    uint32_t size = 0;
    std::vector<uint8_t> run_flags;
    bool has_offsets = true;
    if (cookie == kSerialCookieNoRunContainer) {
      GRANARY_RETURN_NOT_OK(Read32(&size, "the number of containers"));
      if (size > 65536) {
        return Error(start,
                     fmt::format("{} containers (a Roaring bitmap has at most 65536)", size));
      }
    } else if ((cookie & 0xFFFF) == kSerialCookie) {
      size = (cookie >> 16) + 1;
      GRANARY_RETURN_NOT_OK(Need((size + 7) / 8, "the run container flags"));
      run_flags.assign(bytes_.begin() + pos_, bytes_.begin() + pos_ + (size + 7) / 8);
      pos_ += (size + 7) / 8;
      has_offsets = size >= kNoOffsetThreshold;
    } else {
      return Error(start, fmt::format("cookie {} is neither {} nor {} (not a portable Roaring "
                                      "bitmap)",
                                      cookie, kSerialCookieNoRunContainer, kSerialCookie));
    }
    GRANARY_RETURN_NOT_OK(Need(size_t{size} * 4, "the container keys and cardinalities"));
    std::vector<uint16_t> keys(size);
    std::vector<uint32_t> cardinalities(size);
    for (uint32_t i = 0; i < size; ++i) {
      uint16_t card_minus_one = 0;
      GRANARY_RETURN_NOT_OK(Read16(&keys[i], "a container key"));
      GRANARY_RETURN_NOT_OK(Read16(&card_minus_one, "a container cardinality"));
      cardinalities[i] = uint32_t{card_minus_one} + 1;
      if (i > 0 && keys[i] <= keys[i - 1]) {
        return Error(pos_ - 4, fmt::format("container key {} is not above the previous key {}",
                                           keys[i], keys[i - 1]));
      }
    }
    // The offsets only allow random access; containers follow in order, so they are skipped.
    if (has_offsets) {
      GRANARY_RETURN_NOT_OK(Need(size_t{size} * 4, "the container offsets"));
      pos_ += size_t{size} * 4;
    }
    for (uint32_t i = 0; i < size; ++i) {
      const bool run = !run_flags.empty() && (run_flags[i / 8] >> (i % 8)) & 1;
      DeletionVector::Container container;
      container.key = base_key + keys[i];
      const size_t at = pos_;
      if (run) {
        GRANARY_RETURN_NOT_OK(DecodeRuns(&container));
      } else if (cardinalities[i] <= kMaxArrayCardinality) {
        GRANARY_RETURN_NOT_OK(DecodeArray(cardinalities[i], &container));
      } else {
        GRANARY_RETURN_NOT_OK(DecodeBitset(&container));
      }
      const uint32_t counted = Count(container);
      if (counted != cardinalities[i]) {
        return Error(at, fmt::format("container {} holds {} values but its header says {}", keys[i],
                                     counted, cardinalities[i]));
      }
      out->cardinality_ += counted;
      out->containers_.push_back(std::move(container));
    }
    return Status::OK();
  }

  Status DecodeArray(uint32_t cardinality, DeletionVector::Container* container) {
    GRANARY_RETURN_NOT_OK(Need(size_t{cardinality} * 2, "an array container"));
    container->values.resize(cardinality);
    for (uint32_t j = 0; j < cardinality; ++j) {
      GRANARY_RETURN_NOT_OK(Read16(&container->values[j], "an array value"));
      if (j > 0 && container->values[j] <= container->values[j - 1]) {
        return Error(pos_ - 2, "an array container's values are not strictly ascending");
      }
    }
    return Status::OK();
  }

  Status DecodeBitset(DeletionVector::Container* container) {
    GRANARY_RETURN_NOT_OK(Need(kBitsetWords * 8, "a bitset container"));
    container->bits.resize(kBitsetWords);
    for (size_t w = 0; w < kBitsetWords; ++w) {
      GRANARY_RETURN_NOT_OK(Read64(&container->bits[w], "a bitset word"));
    }
    return Status::OK();
  }

  // Runs (start, length - 1), sorted and disjoint, kept as an array when they hold few values
  // and as a bitset otherwise.
  Status DecodeRuns(DeletionVector::Container* container) {
    uint16_t runs = 0;
    GRANARY_RETURN_NOT_OK(Read16(&runs, "the number of runs"));
    GRANARY_RETURN_NOT_OK(Need(size_t{runs} * 4, "a run container"));
    std::vector<std::pair<uint32_t, uint32_t>> spans;  // [first, last]
    uint64_t total = 0;
    for (uint16_t r = 0; r < runs; ++r) {
      uint16_t first = 0, length_minus_one = 0;
      GRANARY_RETURN_NOT_OK(Read16(&first, "a run start"));
      GRANARY_RETURN_NOT_OK(Read16(&length_minus_one, "a run length"));
      const uint32_t last = uint32_t{first} + length_minus_one;
      if (last > 0xFFFF) {
        return Error(pos_ - 4, fmt::format("run {}+{} passes the end of its container", first,
                                           length_minus_one));
      }
      if (!spans.empty() && first <= spans.back().second + 1) {
        return Error(pos_ - 4, "runs overlap, touch or are not ascending");
      }
      spans.emplace_back(first, last);
      total += last - first + 1;
    }
    if (total <= kMaxArrayCardinality) {
      container->values.reserve(total);
      for (const auto& [first, last] : spans) {
        for (uint32_t v = first; v <= last; ++v)
          container->values.push_back(static_cast<uint16_t>(v));
      }
    } else {
      container->bits.assign(kBitsetWords, 0);
      for (const auto& [first, last] : spans) {
        for (uint32_t v = first; v <= last; ++v) container->bits[v / 64] |= uint64_t{1} << (v % 64);
      }
    }
    return Status::OK();
  }

  static uint32_t Count(const DeletionVector::Container& container) {
    if (container.bits.empty()) return static_cast<uint32_t>(container.values.size());
    uint32_t n = 0;
    for (uint64_t w : container.bits) n += static_cast<uint32_t>(std::popcount(w));
    return n;
  }

  std::span<const uint8_t> bytes_;
  std::string_view where_;
  size_t pos_ = 0;
};

std::string DeletionVectorDescriptor::UniqueId() const {
  std::string id(1, storage_type);
  id += path_or_inline_dv;
  if (offset) id += "@" + std::to_string(*offset);
  return id;
}

Result<std::vector<uint8_t>> Z85Decode(std::string_view text) {
  if (text.size() % 5 != 0) {
    return Status::Corruption(
        fmt::format("Z85 text of {} characters (a multiple of 5 is needed)", text.size()));
  }
  static const std::array<int8_t, 256> kValue = [] {
    std::array<int8_t, 256> value{};
    value.fill(-1);
    for (size_t i = 0; i < kZ85Alphabet.size(); ++i) {
      value[static_cast<uint8_t>(kZ85Alphabet[i])] = static_cast<int8_t>(i);
    }
    return value;
  }();
  std::vector<uint8_t> out;
  out.reserve(text.size() / 5 * 4);
  for (size_t i = 0; i < text.size(); i += 5) {
    uint64_t group = 0;
    for (size_t k = 0; k < 5; ++k) {
      const int8_t v = kValue[static_cast<uint8_t>(text[i + k])];
      if (v < 0) {
        return Status::Corruption(
            fmt::format("character {} of Z85 text is not in the Z85 alphabet", i + k));
      }
      group = group * 85 + static_cast<uint64_t>(v);
    }
    if (group > 0xFFFFFFFFu) {
      return Status::Corruption(fmt::format("Z85 group at character {} exceeds 32 bits", i));
    }
    for (int shift = 24; shift >= 0; shift -= 8)
      out.push_back(static_cast<uint8_t>(group >> shift));
  }
  return out;
}

Result<std::filesystem::path> DeletionVectorFile(const DeletionVectorDescriptor& descriptor,
                                                 const std::filesystem::path& table) {
  const std::string& text = descriptor.path_or_inline_dv;
  if (descriptor.storage_type == 'p') {
    std::string decoded = PercentDecode(text);
    if (decoded.starts_with("file://")) decoded = decoded.substr(7);
    if (decoded.starts_with("file:")) decoded = decoded.substr(5);
    std::filesystem::path p(decoded);
    if (!p.is_absolute()) {
      return Status::Corruption(fmt::format(
          "deletion vector path '{}' (storage type 'p') is not an absolute local path", text));
    }
    return p;
  }
  if (descriptor.storage_type != 'u') {
    return Status::InvalidArgument(fmt::format(
        "a deletion vector of storage type '{}' is not stored in a file", descriptor.storage_type));
  }
  if (text.size() < 20) {
    return Status::Corruption(fmt::format(
        "deletion vector '{}' (storage type 'u') is shorter than its 20-character UUID", text));
  }
  auto uuid = Z85Decode(std::string_view(text).substr(text.size() - 20));
  if (!uuid.ok()) {
    return Status::Corruption(fmt::format("deletion vector '{}': its UUID is not valid Z85: {}",
                                          text, uuid.status().message()));
  }
  std::string hex;
  for (size_t i = 0; i < uuid->size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex += '-';
    hex += fmt::format("{:02x}", (*uuid)[i]);
  }
  const std::string prefix = text.substr(0, text.size() - 20);
  std::filesystem::path folder = prefix.empty() ? table : table / prefix;
  return folder / fmt::format("deletion_vector_{}.bin", hex);
}

uint64_t DeletionVector::max() const {
  const Container& last = containers_.back();
  if (last.bits.empty()) return (last.key << 16) + last.values.back();
  for (size_t w = kBitsetWords; w-- > 0;) {
    if (last.bits[w] != 0) {
      return (last.key << 16) + w * 64 +
             (63 - static_cast<uint64_t>(std::countl_zero(last.bits[w])));
    }
  }
  return last.key << 16;  // unreachable: decoded containers are never empty
}

size_t DeletionVector::Container::LowerBound(uint64_t low) const {
  return static_cast<size_t>(std::lower_bound(values.begin(), values.end(), low) - values.begin());
}

size_t DeletionVector::FirstContainerAtOrAfter(uint64_t key) const {
  return static_cast<size_t>(
      std::lower_bound(containers_.begin(), containers_.end(), key,
                       [](const Container& c, uint64_t k) { return c.key < k; }) -
      containers_.begin());
}

bool DeletionVector::Contains(uint64_t row) const {
  bool found = false;
  ForEachInRange(row, 1, [&](uint64_t) { found = true; });
  return found;
}

std::vector<uint64_t> DeletionVector::ToVector() const {
  std::vector<uint64_t> out;
  out.reserve(static_cast<size_t>(cardinality_));
  for (const Container& c : containers_) {
    ForEachInRange(c.key << 16, 1 << 16, [&](uint64_t row) { out.push_back(row); });
  }
  return out;
}

Result<DeletionVector> DeletionVector::Decode(std::span<const uint8_t> bytes,
                                              std::string_view where) {
  return DeletionVectorDecoder(bytes, where).Decode();
}

Result<DeletionVector> DeletionVector::DecodeStored(std::span<const uint8_t> block,
                                                    int64_t size_in_bytes, std::string_view where) {
  if (block.size() < 8 || static_cast<uint64_t>(size_in_bytes) != block.size() - 8) {
    return Status::Corruption(fmt::format("{}: {} bytes cannot hold a stored DV of {} bytes", where,
                                          block.size(), size_in_bytes));
  }
  const uint32_t data_size = BigEndian32(block.data());
  if (data_size != static_cast<uint64_t>(size_in_bytes)) {
    return Status::Corruption(fmt::format("{}: the file says the DV has {} bytes, the log {}",
                                          where, data_size, size_in_bytes));
  }
  const auto bitmap = block.subspan(4, block.size() - 8);
  const uint32_t stored = BigEndian32(block.data() + block.size() - 4);
  const uint32_t computed = DeletionVectorCrc32(bitmap);
  if (stored != computed) {
    return Status::Corruption(fmt::format(
        "{}: checksum mismatch (CRC-32 stored {:08x}, computed {:08x}); the file is damaged", where,
        stored, computed));
  }
  return Decode(bitmap, where);
}

Result<DeletionVector> DeletionVector::Load(const DeletionVectorDescriptor& descriptor,
                                            const std::filesystem::path& table,
                                            const std::filesystem::path& data_file) {
  if (descriptor.size_in_bytes < 0 || descriptor.cardinality < 0) {
    return Status::Corruption(
        fmt::format("the deletion vector of {}: negative sizeInBytes {} or cardinality {}",
                    data_file.string(), descriptor.size_in_bytes, descriptor.cardinality));
  }
  std::vector<uint8_t> bitmap;
  std::string where;
  if (descriptor.storage_type == 'i') {
    where = fmt::format("the inline deletion vector of {}", data_file.string());
    auto decoded = Z85Decode(descriptor.path_or_inline_dv);
    if (!decoded.ok()) return Status::Corruption(where + ": " + decoded.status().message());
    // Z85 encodes whole 4-byte groups; sizeInBytes says how many of the bytes are the bitmap.
    if (decoded->size() < static_cast<uint64_t>(descriptor.size_in_bytes) ||
        decoded->size() >= static_cast<uint64_t>(descriptor.size_in_bytes) + 4) {
      return Status::Corruption(fmt::format("{}: {} bytes encoded for sizeInBytes {}", where,
                                            decoded->size(), descriptor.size_in_bytes));
    }
    decoded->resize(static_cast<size_t>(descriptor.size_in_bytes));
    bitmap = std::move(*decoded);
  } else {
    auto file = DeletionVectorFile(descriptor, table);
    if (!file.ok()) {
      return Status::Corruption(fmt::format("the deletion vector of {}: {}", data_file.string(),
                                            file.status().message()));
    }
    const int64_t offset = descriptor.offset.value_or(0);
    where = fmt::format("deletion vector file {} (offset {}, for {})", file->string(), offset,
                        data_file.string());
    std::ifstream in(*file, std::ios::binary);
    std::error_code ec;
    const auto file_size = std::filesystem::file_size(*file, ec);
    if (!in || ec) {
      return Status::IOError(fmt::format("cannot read the deletion vector file {} of {}: {}",
                                         file->string(), data_file.string(),
                                         ec ? ec.message() : "cannot open it"));
    }
    // The whole DV (size, bitmap, checksum) must lie in the file before anything is allocated.
    if (offset < 0 ||
        static_cast<uint64_t>(offset) + 8 + static_cast<uint64_t>(descriptor.size_in_bytes) >
            file_size) {
      return Status::Corruption(
          fmt::format("{}: a DV of {} bytes at offset {} does not fit in the file's {} bytes",
                      where, descriptor.size_in_bytes, offset, file_size));
    }
    char version = 0;
    in.read(&version, 1);
    if (!in || version != 1) {
      return Status::Corruption(fmt::format("{}: format version {} (Granary reads version 1)",
                                            where, static_cast<int>(version)));
    }
    std::vector<uint8_t> block(static_cast<size_t>(descriptor.size_in_bytes) + 8);
    in.seekg(offset);
    in.read(reinterpret_cast<char*>(block.data()), static_cast<std::streamsize>(block.size()));
    if (!in) {
      return Status::IOError(fmt::format("{}: cannot read {} bytes", where, block.size()));
    }
    GRANARY_ASSIGN_OR_RAISE(DeletionVector dv,
                            DecodeStored(block, descriptor.size_in_bytes, where));
    if (dv.cardinality() != descriptor.cardinality) {
      return Status::Corruption(fmt::format("{}: it holds {} rows but the log says cardinality {}",
                                            where, dv.cardinality(), descriptor.cardinality));
    }
    return dv;
  }
  GRANARY_ASSIGN_OR_RAISE(DeletionVector dv, Decode(bitmap, where));
  if (dv.cardinality() != descriptor.cardinality) {
    return Status::Corruption(fmt::format("{}: it holds {} rows but the log says cardinality {}",
                                          where, dv.cardinality(), descriptor.cardinality));
  }
  return dv;
}

}  // namespace granary
