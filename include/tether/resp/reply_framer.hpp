// ReplyFramer: finds the boundaries of replies in an upstream byte stream.
//
//   upstream bytes ──► [ scan(view) ] ──► complete: Reply{size, type, is_push}
//                                     ├─► need_more
//                                     └─► error (stream desynchronised: drop connection)
//
// Every RESP2 type (+ - : $ *) and every RESP3 type (_ , # ! = ( % ~ > | and the
// streamed forms "$?" with ";" chunks and "*?"/"%?"/"~?" ended by ".") including
// nested aggregates. An attribute ("|") is framed together with the value it annotates.
// Sans-I/O, resumable (same contract as RequestScanner), never allocates: nesting is
// tracked in a fixed-depth stack (kMaxDepth) and counts are checked for overflow.
//
// Threading: one framer per upstream connection; not shared.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tether/resp/limits.hpp"
#include "tether/resp/request_scanner.hpp"  // ScanStatus

namespace tether::resp {

struct Reply {
  std::size_t size = 0;  // bytes of the whole reply, attributes included
  char type = 0;         // type byte of the top-level value ('+', '-', '*', '>', ...)
  bool is_push() const { return type == '>'; }
  bool is_error() const { return type == '-' || type == '!'; }
};

class ReplyFramer {
 public:
  // Deepest nesting accepted. Redis nests replies a few levels deep (e.g. COMMAND INFO,
  // XREAD, EVAL returning tables); 128 leaves room and keeps the stack on the object.
  static constexpr std::size_t kMaxDepth = 128;

  explicit ReplyFramer(const Limits& limits = Limits{}) : limits_(limits) {}

  ScanStatus scan(std::string_view buf);
  const Reply& reply() const { return reply_; }
  // Why the stream cannot be framed, for the log (e.g. "unknown type byte 'x'").
  std::string error_message() const;
  void reset();

 private:
  struct Level {
    std::int64_t remaining;  // elements still to read at this level; -1: streamed
    char type;               // '*', '%', '~', '>' or '|'
    bool odd;                // streamed level: an odd number of elements read so far
  };
  ScanStatus scan_line(std::string_view buf);
  ScanStatus on_line(std::string_view line);
  ScanStatus on_length_line(std::string_view line);
  ScanStatus on_aggregate_line(std::string_view line);
  ScanStatus on_end_marker(std::string_view line);
  ScanStatus push(char type, std::int64_t remaining);
  ScanStatus value_done();
  ScanStatus fail(const char* why, int byte = -1);

  Limits limits_;
  Reply reply_{};
  int state_ = 0;
  std::size_t pos_ = 0;
  std::int64_t bulk_len_ = 0;
  std::size_t depth_ = 0;
  std::array<Level, kMaxDepth> stack_{};
  char top_type_ = 0;
  const char* error_ = nullptr;
  char error_byte_ = 0;
  bool error_has_byte_ = false;
  char line_type_ = 0;             // type byte of the line being read
  std::size_t line_start_ = 0;     // first byte after that type byte
  bool streaming_string_ = false;  // inside "$?": only ';' chunks may follow
  bool after_attribute_ = false;   // an attribute just ended: a value must follow
};

}  // namespace tether::resp
