// Limits on what the wire may declare, checked before anything is allocated or multiplied.
//
// Defaults are Redis's own, so that a request Redis would accept passes the proxy and a
// request Redis would refuse is refused with Redis's words.
#pragma once

#include <climits>
#include <cstddef>
#include <cstdint>

namespace tether::resp {

struct Limits {
  // proto-max-bulk-len: the largest bulk string in a request (Redis default 512 MiB).
  std::int64_t max_bulk_len = 512LL * 1024 * 1024;
  // PROTO_INLINE_MAX_SIZE: the longest inline request line, and the longest "*<n>" or
  // "$<n>" header line, before Redis answers "too big ..." (64 KiB).
  std::size_t max_inline_len = 64 * 1024;
  // Redis refuses a multibulk count above INT_MAX ("invalid multibulk length").
  std::int64_t max_multibulk_len = INT_MAX;
  // Replies: the largest bulk string an upstream may send us. Redis itself never sends
  // one above proto-max-bulk-len; anything larger means a desynchronised stream.
  std::int64_t max_reply_bulk_len = 512LL * 1024 * 1024;
};

}  // namespace tether::resp
