#include "granary/registry/pq_api.h"

#include <dlfcn.h>
#include <fmt/format.h>

#include <mutex>

namespace granary {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr int kDeepBind = 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kDeepBind = 0;
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
#endif
#else
constexpr int kDeepBind = RTLD_DEEPBIND;
#endif

PqApi api;
Status load_status;

template <typename F>
bool Bind(void* lib, const char* name, F* out, std::string* missing) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) *missing = name;
  return *out != nullptr;
}

Status LoadOnce() {
  void* lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL | kDeepBind);
  if (lib == nullptr) {
    return Status::FailedPrecondition(
        fmt::format("a PostgreSQL registry needs libpq (libpq.so.5): {}; install Debian's libpq5 "
                    "(scripts/setup does)",
                    dlerror()));
  }
  std::string missing;
  const bool ok = Bind(lib, "PQconnectdb", &api.connectdb, &missing) &&
                  Bind(lib, "PQstatus", &api.status, &missing) &&
                  Bind(lib, "PQerrorMessage", &api.errorMessage, &missing) &&
                  Bind(lib, "PQfinish", &api.finish, &missing) &&
                  Bind(lib, "PQreset", &api.reset, &missing) &&
                  Bind(lib, "PQsetNoticeProcessor", &api.setNoticeProcessor, &missing) &&
                  Bind(lib, "PQexec", &api.exec, &missing) &&
                  Bind(lib, "PQexecParams", &api.execParams, &missing) &&
                  Bind(lib, "PQresultStatus", &api.resultStatus, &missing) &&
                  Bind(lib, "PQresultErrorField", &api.resultErrorField, &missing) &&
                  Bind(lib, "PQresultErrorMessage", &api.resultErrorMessage, &missing) &&
                  Bind(lib, "PQclear", &api.clear, &missing) &&
                  Bind(lib, "PQntuples", &api.ntuples, &missing) &&
                  Bind(lib, "PQgetisnull", &api.getisnull, &missing) &&
                  Bind(lib, "PQgetvalue", &api.getvalue, &missing) &&
                  Bind(lib, "PQtransactionStatus", &api.transactionStatus, &missing) &&
                  Bind(lib, "PQconsumeInput", &api.consumeInput, &missing) &&
                  Bind(lib, "PQnotifies", &api.notifies, &missing) &&
                  Bind(lib, "PQfreemem", &api.freemem, &missing) &&
                  Bind(lib, "PQsocket", &api.socket, &missing);
  if (!ok) {
    return Status::FailedPrecondition(
        fmt::format("libpq.so.5 has no {}: install a current libpq5", missing));
  }
  return Status::OK();  // the library stays loaded for the life of the process
}

}  // namespace

Result<const PqApi*> LoadPq() {
  static std::once_flag once;
  std::call_once(once, [] { load_status = LoadOnce(); });
  if (!load_status.ok()) return load_status;
  return &api;
}

const PqApi& Pq() { return api; }

}  // namespace granary
