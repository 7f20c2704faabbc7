#include "granary/registry/postgres_connection.h"

#include <fmt/format.h>

#include <cstdlib>

namespace granary {
namespace {

// libpq's messages span lines ("...\n\tThis probably means..."): one line for ours.
std::string Trim(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

PgResult& PgResult::operator=(PgResult&& o) noexcept {
  if (this != &o) {
    Pq().clear(r_);
    r_ = o.r_;
    o.r_ = nullptr;
  }
  return *this;
}

int64_t PgResult::Int(int row, int col) const {
  return std::strtoll(Pq().getvalue(r_, row, col), nullptr, 10);
}

std::optional<int64_t> PgResult::OptionalInt(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return Int(row, col);
}

std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const RegistryLocation& location) {
  GRANARY_RETURN_NOT_OK(LoadPq().status());
  // search_path through the startup options, so that a reset connection keeps it.
  const std::string conninfo =
      location.conninfo + " options='-c search_path=" + location.schema + "'";
  PGconn* conn = Pq().connectdb(conninfo.c_str());
  if (conn == nullptr) return Status::Internal("libpq could not allocate a connection");
  if (Pq().status(conn) != CONNECTION_OK) {
    std::string msg = Trim(Pq().errorMessage(conn));
    Pq().finish(conn);
    return Status::Unavailable(fmt::format(
        "registry {}: cannot connect: {}; check that the PostgreSQL server runs and that "
        "granary.yaml's 'registry' names it with the right user and password",
        location.Describe(), msg));
  }
  // No NOTICE chatter ("schema already exists, skipping") on stderr.
  Pq().setNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<PgConnection>(new PgConnection(conn, location));
}

PgConnection::~PgConnection() { Pq().finish(conn_); }

Status PgConnection::EnsureConnected() {
  if (Pq().status(conn_) == CONNECTION_OK) return Status::OK();
  Pq().reset(conn_);
  if (Pq().status(conn_) == CONNECTION_OK) return Status::OK();
  return Status::Unavailable(fmt::format("registry {}: cannot connect: {}", location_.Describe(),
                                         Trim(Pq().errorMessage(conn_))));
}

Status PgConnection::Error(std::string_view what, PGresult* r) {
  const char* state = r ? Pq().resultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  last_sqlstate_ = state ? state : "";
  std::string msg = Trim(r ? Pq().resultErrorMessage(r) : Pq().errorMessage(conn_));
  if (msg.empty()) msg = Trim(Pq().errorMessage(conn_));
  // Class 08: connection exceptions; 57P: the server shutting down; 40: serialization and
  // deadlocks; 53: out of resources. All may go away on retry.
  const bool lost = Pq().status(conn_) != CONNECTION_OK || last_sqlstate_.rfind("08", 0) == 0 ||
                    last_sqlstate_.rfind("57P", 0) == 0 || last_sqlstate_.rfind("40", 0) == 0 ||
                    last_sqlstate_.rfind("53", 0) == 0;
  return Status(lost ? StatusCode::kUnavailable : StatusCode::kIOError,
                fmt::format("registry {}: cannot {}: {}", location_.Describe(), what, msg));
}

Result<PgResult> PgConnection::Exec(std::string_view what, const std::string& sql,
                                    const std::vector<PgParam>& params) {
  last_sqlstate_.clear();
  // Only outside a transaction may a broken connection be reset: inside one, the work is lost
  // and the caller must see the error.
  if (Pq().status(conn_) != CONNECTION_OK) {
    GRANARY_RETURN_NOT_OK(EnsureConnected());
  }
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const PgParam& p : params) values.push_back(p ? p->c_str() : nullptr);
  const bool idle = Pq().transactionStatus(conn_) == PQTRANS_IDLE;
  PGresult* r = Pq().execParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr,
                                values.data(), nullptr, nullptr, 0);
  ExecStatusType status = r ? Pq().resultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_FATAL_ERROR && idle && Pq().status(conn_) != CONNECTION_OK) {
    // The server went away since the last call (a restart, a failover): outside a transaction
    // the statement is retried once on a new connection.
    Pq().clear(r);
    GRANARY_RETURN_NOT_OK(EnsureConnected());
    r = Pq().execParams(conn_, sql.c_str(), static_cast<int>(params.size()), nullptr, values.data(),
                        nullptr, nullptr, 0);
    status = r ? Pq().resultStatus(r) : PGRES_FATAL_ERROR;
  }
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Status st = Error(what, r);
    Pq().clear(r);
    return st;
  }
  return PgResult(r);
}

Status PgConnection::Run(std::string_view what, const std::string& sql) {
  last_sqlstate_.clear();
  if (Pq().status(conn_) != CONNECTION_OK) GRANARY_RETURN_NOT_OK(EnsureConnected());
  const bool idle = Pq().transactionStatus(conn_) == PQTRANS_IDLE;
  PGresult* r = Pq().exec(conn_, sql.c_str());
  ExecStatusType status = r ? Pq().resultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_FATAL_ERROR && idle && Pq().status(conn_) != CONNECTION_OK) {
    Pq().clear(r);  // as in Exec: retried once on a new connection
    GRANARY_RETURN_NOT_OK(EnsureConnected());
    r = Pq().exec(conn_, sql.c_str());
    status = r ? Pq().resultStatus(r) : PGRES_FATAL_ERROR;
  }
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Status st = Error(what, r);
    Pq().clear(r);
    return st;
  }
  Pq().clear(r);
  return Status::OK();
}

void PgConnection::Rollback() {
  if (Pq().status(conn_) != CONNECTION_OK) return;  // the server dropped the transaction already
  Pq().clear(Pq().exec(conn_, "ROLLBACK"));
}

}  // namespace granary
