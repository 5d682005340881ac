// RequestScanner: finds the boundaries of client requests in a byte stream.
//
//   client bytes ──► [ scan(view) ] ──► complete: Request{size, name, argc}
//                                   ├─► need_more: append bytes, call again with the
//                                   │   same start and a longer view
//                                   └─► error: ProtocolError + Redis's wording
//
// Sans-I/O and resumable: the caller owns the buffer; the scanner remembers how far it
// got, so bytes are examined once however the input is split. It never allocates
// (checked by a test) and never copies argument bytes: the request is forwarded as it
// arrived. Multibulk ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n") and inline ("GET k\r\n")
// requests are accepted exactly as Redis's processMultibulkBuffer/processInlineBuffer
// accept them, so our framing and the upstream's framing never disagree.
//
// Threading: one scanner per client connection; not shared.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tether/resp/limits.hpp"

namespace tether::resp {

enum class ScanStatus {
  complete,   // request() describes one whole request at the start of the view
  need_more,  // the view ends inside a request; call again with more bytes
  error,      // the bytes can never become a valid request; see error_message()
};

// The malformed requests Redis refuses, each with Redis's reply text.
enum class ProtocolError {
  none,
  invalid_multibulk_length,  // "*abc", "*3000000000"
  invalid_bulk_length,       // "$-1", "$abc", "$" above max_bulk_len
  expected_dollar,           // an argument header that is not '$'
  too_big_mbulk_count,       // no newline within max_inline_len after '*'
  too_big_bulk_count,        // no newline within max_inline_len after '$'
  too_big_inline,            // inline request line longer than max_inline_len
  unbalanced_quotes,         // inline request with an unterminated quote
};

struct Request {
  // Bytes from the start of the view to the end of this request. Requests that carry no
  // command (an empty inline line, "*0\r\n", "*-1\r\n") are reported as complete with
  // argc == 0: the caller consumes `size` bytes and forwards nothing, as Redis does.
  std::size_t size = 0;
  std::int64_t argc = 0;
  bool is_inline = false;
  // The command name (first argument) as sent, not case-folded. Valid until the next
  // scan() or reset(). For inline requests whose first token is quoted, the decoded
  // name lives in the scanner; names longer than kMaxNameLen are truncated (no real
  // command is that long, so lookup simply fails).
  std::string_view name;
};

class RequestScanner {
 public:
  static constexpr std::size_t kMaxNameLen = 64;

  explicit RequestScanner(const Limits& limits = Limits{}) : limits_(limits) {}

  // Examines `buf`, which must start at the first byte of the current request and hold
  // every byte given to earlier calls since the last reset() at the same offsets.
  ScanStatus scan(std::string_view buf);

  // Valid after scan() returned complete.
  const Request& request() const { return request_; }

  // Valid after scan() returned error.
  ProtocolError error() const { return error_; }
  // "Protocol error: ..." exactly as Redis words it (no leading "-ERR ", no CRLF).
  std::string error_message() const;

  // Forget the current request; call after consuming request().size bytes.
  void reset();

 private:
  // Implementation-defined resumable state (see request_scanner.cpp).
  ScanStatus scan_inline(std::string_view buf);
  ScanStatus scan_header(std::string_view buf, ProtocolError too_big);
  ScanStatus on_mbulk_header(std::string_view buf, std::size_t cr);
  ScanStatus on_bulk_header(std::string_view buf, std::size_t cr);
  ScanStatus on_inline_line(std::string_view buf, std::size_t lf);
  ScanStatus complete(std::string_view buf, std::size_t size);
  ScanStatus fail(ProtocolError error, char byte = 0);

  Limits limits_;
  Request request_{};
  ProtocolError error_ = ProtocolError::none;
  char error_byte_ = 0;
  int state_ = 0;
  std::size_t pos_ = 0;
  std::int64_t remaining_args_ = 0;
  std::int64_t bulk_len_ = 0;
  std::size_t name_pos_ = 0;
  std::size_t name_len_ = 0;
  bool name_in_buf_ = false;      // name_buf_ holds a decoded (quoted) inline name
  std::size_t line_start_ = 0;    // first byte of the header or inline line being searched
  bool eol_unreachable_ = false;  // a NUL byte stops Redis's strchr() before any CR/LF
  std::array<char, kMaxNameLen> name_buf_{};
};

// Iterates over the arguments of one complete request (as reported by RequestScanner)
// without allocating, except that inline tokens with quotes or escapes are decoded into
// the caller's scratch string. For the few commands the router must look inside
// (e.g. "XREAD ... BLOCK", "CLIENT SETNAME").
class ArgIterator {
 public:
  ArgIterator(std::string_view request_bytes, const Request& request);
  // Next argument, or false at the end. `out` stays valid until the next call or until
  // `scratch` changes.
  bool next(std::string_view& out, std::string& scratch);

 private:
  std::string_view bytes_;
  bool inline_;
  std::size_t pos_ = 0;
  std::int64_t left_ = 0;
};

}  // namespace tether::resp
