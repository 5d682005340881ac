// ClientSession: SELECT (see the header's "Databases").
//
//   SELECT n ─┬─ bad index ──────────────► Redis's own error, the database stays
//             ├─ no dedicated connection ─► +OK here; later commands go to pool(n), once
//             │                             those in flight in the old database are in
//             ├─ dedicated, no MULTI ─────► forwarded; +OK from Redis switches db_
//             └─ dedicated, in MULTI ─────► forwarded (Redis queues it); db_ switches when
//                                           the EXEC that ran it returns its array
#include <string>

#include "tether/proxy/client_session.hpp"
#include "tether/resp/db_index.hpp"
#include "tether/resp/error_replies.hpp"

namespace tether::proxy {

bool ClientSession::select_db(std::string_view bytes, const resp::Request& request) {
  const bool dedicated = pin_requested_ || pin_broken_;
  std::uint32_t db = 0;
  std::string error;
  if (request.argc != 2) {
    error = resp::select_arity_error();
  } else {
    resp::ArgIterator args(bytes, request);
    std::string scratch;
    std::string_view arg;
    args.next(arg, scratch);  // the name
    args.next(arg, scratch);
    const auto status = resp::parse_db_index(arg, pools_.settings().databases, db);
    if (status != resp::DbIndexStatus::ok) error = resp::db_index_error(status);
  }
  if (dedicated && in_multi_) {
    // Queued by Redis (or refused there, flagging the transaction, for a wrong arity)
    // and run at EXEC: the last valid one decides the database EXEC leaves.
    if (error.empty()) select_in_multi_ = db;
    return route_pinned(bytes, "SELECT");
  }
  if (!error.empty()) {
    reply_local(error);  // Redis's own words; the database stays
    return false;
  }
  if (dedicated) {
    // Behind the commands already queued for the dedicated connection: in order there,
    // and the database changes only if Redis says +OK.
    db_changes_[next_slot_] = {db, false};
    return route_pinned(bytes, "SELECT");
  }
  db_ = db;
  pools_.pool(db);  // dials now, while the +OK travels
  reply_local("+OK\r\n");
  return false;
}

void ClientSession::note_transaction_end(std::string_view name) {
  if (name == "EXEC" && in_multi_) db_changes_[next_slot_] = {*select_in_multi_, true};
  if (name == "EXEC" || name == "DISCARD" || (name == "MULTI" && !in_multi_)) {
    select_in_multi_.reset();
  }
}

void ClientSession::apply_db_change(std::uint64_t slot, std::string_view reply) {
  const auto it = db_changes_.find(slot);
  if (it == db_changes_.end()) return;
  const auto [db, exec] = it->second;
  db_changes_.erase(it);
  // EXEC: an array when the transaction ran (*-1 when a WATCH aborted it, -EXECABORT
  // when it was discarded); SELECT alone: +OK.
  const bool ran = exec ? reply.starts_with("*") && !reply.starts_with("*-1") : reply == "+OK\r\n";
  if (ran && db < pools_.settings().databases) db_ = db;
}

}  // namespace tether::proxy
