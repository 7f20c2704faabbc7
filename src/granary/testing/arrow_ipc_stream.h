// Arrow IPC streams as a peer sends them over the network (a Flight client's upload, a Spark
// Connect server's result), for the tests of their readers: three rows of driver_id (int64) and
// city (utf8: "abc", "de", "f") written by Arrow's IPC writer, and the same stream with the city
// offsets damaged (0, 3, 5000, 6: past the column's data), which no writer makes but Arrow's IPC
// reader takes as it is, since it checks a message's layout and not its values. Header-only;
// link Arrow::arrow.
#pragma once

#include <arrow/api.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/writer.h>

#include <cstdint>
#include <cstring>
#include <string>

namespace granary::testing {

inline std::string CitiesIpcStream(bool damage_offsets = false) {
  arrow::Int64Builder ids;
  arrow::StringBuilder cities;
  if (!ids.AppendValues({1001, 1002, 1003}).ok() || !cities.AppendValues({"abc", "de", "f"}).ok()) {
    return {};
  }
  auto batch =
      arrow::RecordBatch::Make(arrow::schema({arrow::field("driver_id", arrow::int64()),
                                              arrow::field("city", arrow::utf8())}),
                               3, {ids.Finish().ValueOrDie(), cities.Finish().ValueOrDie()});
  auto sink = arrow::io::BufferOutputStream::Create().ValueOrDie();
  auto writer = arrow::ipc::MakeStreamWriter(sink, batch->schema()).ValueOrDie();
  if (!writer->WriteRecordBatch(*batch).ok() || !writer->Close().ok()) return {};
  std::string bytes = sink->Finish().ValueOrDie()->ToString();
  if (damage_offsets) {
    const int32_t good[] = {0, 3, 5, 6};
    const int32_t bad[] = {0, 3, 5000, 6};
    const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(good), sizeof(good)));
    if (at == std::string::npos) return {};
    std::memcpy(bytes.data() + at, bad, sizeof(bad));
  }
  return bytes;
}

}  // namespace granary::testing
