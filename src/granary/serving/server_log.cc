#include "granary/serving/server_log.h"

#include <unistd.h>

#include <string>

#include "granary/common/clock.h"

namespace granary {

void ServerLog(std::string_view message) {
  std::string line = FormatTimestamp(SystemClock::Default().Now());
  line += ' ';
  line += message;
  line += '\n';
  // One write(2): lines of concurrent threads do not interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace granary
