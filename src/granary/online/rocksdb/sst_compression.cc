#include "granary/online/rocksdb/sst_compression.h"

#include <lz4.h>

namespace granary {

bool SstCompressionSample::Add(std::string_view key, std::string_view value) {
  block_.append(key);
  block_.append(value);
  if (block_.size() < kBlockBytes) return false;
  CompressBlock();
  return true;
}

void SstCompressionSample::Finish() {
  if (!block_.empty()) CompressBlock();
}

void SstCompressionSample::CompressBlock() {
  const int raw = static_cast<int>(block_.size());
  compressed_.resize(static_cast<size_t>(LZ4_compressBound(raw)));
  const int size = LZ4_compress_default(block_.data(), compressed_.data(), raw,
                                        static_cast<int>(compressed_.size()));
  // RocksDB keeps a compressed block only when it saves at least an eighth (GoodCompressionRatio).
  const bool kept = size > 0 && size < raw - raw / 8;
  raw_bytes_ += raw;
  stored_bytes_ += kept ? size : raw;
  block_.clear();
}

bool SstCompressionSample::WorthCompressing() const {
  if (raw_bytes_ == 0) return true;
  return static_cast<double>(stored_bytes_) <= static_cast<double>(raw_bytes_) * (1.0 - kMinSaving);
}

}  // namespace granary
