// The libpq functions the PostgreSQL registry calls, loaded at run time. Internal to the registry.
//
// Why not link libpq: Debian's libpq pulls in the system's libcrypto, and the pyarrow wheel's
// libparquet (which the granary binary and the Python module link) exports its own, different
// OpenSSL (1145 symbols, unversioned). Linked together, libcrypto's calls into itself bind to
// libparquet's copies and crash (seen in the Python module at `import hashlib`; in the CLI it
// would crash on the first TLS connection to a registry). dlopen with RTLD_DEEPBIND makes libpq and
// libcrypto bind to themselves first. ASan refuses RTLD_DEEPBIND, so sanitizer builds load libpq
// without it (their tests use no TLS). libpq is only loaded when a PostgreSQL registry is opened.
#pragma once

#include <libpq-fe.h>

#include "granary/common/result.h"

namespace granary {

struct PqApi {
  decltype(&PQconnectdb) connectdb;
  decltype(&PQstatus) status;
  decltype(&PQerrorMessage) errorMessage;
  decltype(&PQfinish) finish;
  decltype(&PQreset) reset;
  decltype(&PQsetNoticeProcessor) setNoticeProcessor;
  decltype(&PQexec) exec;
  decltype(&PQexecParams) execParams;
  decltype(&PQresultStatus) resultStatus;
  decltype(&PQresultErrorField) resultErrorField;
  decltype(&PQresultErrorMessage) resultErrorMessage;
  decltype(&PQclear) clear;
  decltype(&PQntuples) ntuples;
  decltype(&PQgetisnull) getisnull;
  decltype(&PQgetvalue) getvalue;
  decltype(&PQtransactionStatus) transactionStatus;
  decltype(&PQconsumeInput) consumeInput;
  decltype(&PQnotifies) notifies;
  decltype(&PQfreemem) freemem;
  decltype(&PQsocket) socket;
};

// Loads libpq.so.5 once (thread-safe). FailedPrecondition naming the package when it is missing.
Result<const PqApi*> LoadPq();

// The loaded API; only after LoadPq succeeded (every PgConnection exists after it did).
const PqApi& Pq();

}  // namespace granary
