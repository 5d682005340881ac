// ReplyFramer: frames RESP2/RESP3 replies with an explicit stack instead of recursion.
//
//   kType ──type byte──► kLine ──CRLF──► on_line ─┬─ simple value ───────► value_done
//     ▲                                           ├─ $ ! = ; <len> ──► kPayload ─┘
//     │                                           └─ * % ~ > | <n> ──► push level
//     └──────────── value_done: count the value against the open levels, pop the
//                   finished ones; at depth 0 the reply is complete
//
// Strictness: the framer is stricter than hiredis 0.14 on purpose (a desynchronised
// upstream must be detected, not forwarded): numbers follow Redis's string2ll, a bulk
// payload must end in CRLF, header lines are at most 20 bytes, a bulk or simple line
// longer than max_reply_bulk_len is refused. Simple lines (+ - , ( ) end at the first
// CRLF, as in hiredis. An attribute ('|') is not an element of its parent: the value
// after it is.
#include "tether/resp/reply_framer.hpp"

#include "redis_number.hpp"

namespace tether::resp {

namespace {

enum State : int { kType = 0, kLine, kPayload, kComplete, kError };

bool is_header_type(char t) {
  switch (t) {
    case '$':
    case '!':
    case '=':
    case ';':
    case '*':
    case '%':
    case '~':
    case '>':
    case '|':
    case ':':
    case '_':
    case '#':
    case '.':
      return true;
    default:
      return false;
  }
}

bool is_known_type(char t) {
  return is_header_type(t) || t == '+' || t == '-' || t == ',' || t == '(';
}

// RESP3 big number: an optional '-' and at least one digit.
bool is_big_number(std::string_view s) {
  if (!s.empty() && s[0] == '-') s.remove_prefix(1);
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

ScanStatus ReplyFramer::scan(std::string_view buf) {
  for (;;) {
    switch (state_) {
      case kType: {
        if (pos_ >= buf.size()) return ScanStatus::need_more;
        const char t = buf[pos_];
        if (!is_known_type(t)) return fail("unknown type byte", static_cast<unsigned char>(t));
        if (streaming_string_ != (t == ';')) {
          return fail(streaming_string_ ? "expected ';' chunk in streamed string"
                                        : "';' chunk outside a streamed string",
                      static_cast<unsigned char>(t));
        }
        if (t == '.' && after_attribute_) return fail("attribute not followed by a value");
        after_attribute_ = false;
        if (depth_ == 0 && t != '|' && t != ';') top_type_ = t;
        line_type_ = t;
        line_start_ = ++pos_;
        state_ = kLine;
        break;
      }
      case kLine: {
        if (const ScanStatus s = scan_line(buf); s != ScanStatus::complete) return s;
        const std::size_t cr = pos_;
        pos_ = cr + 2;
        if (const ScanStatus s = on_line(buf.substr(line_start_, cr - line_start_));
            s != ScanStatus::need_more) {
          return s;
        }
        break;
      }
      case kPayload: {
        // bulk_len_ <= max_reply_bulk_len <= INT64_MAX: + 2 cannot wrap in 64 bits.
        const auto need = static_cast<std::uint64_t>(bulk_len_) + 2;
        if (buf.size() - pos_ < need) return ScanStatus::need_more;
        const std::size_t end = pos_ + static_cast<std::size_t>(bulk_len_);
        if (buf[end] != '\r' || buf[end + 1] != '\n')
          return fail("bulk payload not followed by CRLF");
        pos_ = end + 2;
        if (streaming_string_) {
          state_ = kType;
        } else if (const ScanStatus s = value_done(); s != ScanStatus::need_more) {
          return s;
        }
        break;
      }
      case kComplete:
        return ScanStatus::complete;
      default:
        return ScanStatus::error;
    }
  }
}

// Finds the CRLF ending the line that starts at line_start_; complete with pos_ at '\r'.
ScanStatus ReplyFramer::scan_line(std::string_view buf) {
  const std::uint64_t max_len = is_header_type(line_type_)
                                    ? detail::kMaxNumberLen
                                    : static_cast<std::uint64_t>(limits_.max_reply_bulk_len);
  for (;;) {
    const std::size_t cr = buf.find('\r', pos_);
    const std::size_t end = cr == std::string_view::npos ? buf.size() : cr;
    if (end - line_start_ > max_len) return fail("line too long");
    if (cr == std::string_view::npos) {
      pos_ = buf.size();
      return ScanStatus::need_more;
    }
    pos_ = cr;
    if (cr + 1 >= buf.size()) return ScanStatus::need_more;
    if (buf[cr + 1] == '\n') return ScanStatus::complete;
    pos_ = cr + 1;  // a lone CR is part of the line, as in hiredis
  }
}

// Returns need_more to mean "state advanced, go on scanning".
ScanStatus ReplyFramer::on_line(std::string_view line) {
  switch (line_type_) {
    case '+':
    case '-':
    case ',':
      return value_done();
    case '(':
      return is_big_number(line) ? value_done() : fail("invalid big number");
    case ':': {
      std::int64_t v = 0;
      return detail::string2ll(line, v) ? value_done() : fail("invalid integer");
    }
    case '_':
      return line.empty() ? value_done() : fail("invalid null");
    case '#':
      return (line == "t" || line == "f") ? value_done() : fail("invalid boolean");
    case '$':
    case '!':
    case '=':
    case ';':
      return on_length_line(line);
    case '.':
      return on_end_marker(line);
    default:
      return on_aggregate_line(line);
  }
}

ScanStatus ReplyFramer::on_length_line(std::string_view line) {
  if (line_type_ == '$' && line == "?") {
    streaming_string_ = true;
    state_ = kType;
    return ScanStatus::need_more;
  }
  std::int64_t len = 0;
  if (!detail::string2ll(line, len)) return fail("invalid length");
  if (line_type_ == '$' && len == -1) return value_done();  // RESP2 null bulk string
  if (len < 0) return fail("invalid length");
  if (len > limits_.max_reply_bulk_len) return fail("bulk length above max_reply_bulk_len");
  if (line_type_ == ';' && len == 0) {
    streaming_string_ = false;
    return value_done();
  }
  bulk_len_ = len;
  state_ = kPayload;
  return ScanStatus::need_more;
}

ScanStatus ReplyFramer::on_aggregate_line(std::string_view line) {
  const char t = line_type_;
  if (line == "?" && (t == '*' || t == '%' || t == '~')) return push(t, -1);
  std::int64_t n = 0;
  if (!detail::string2ll(line, n)) return fail("invalid aggregate count");
  if (t == '*' && n == -1) return value_done();  // RESP2 null array
  if (n < 0) return fail("invalid aggregate count");
  if (t == '%' || t == '|') {
    if (n > INT64_MAX / 2) return fail("invalid aggregate count");
    n *= 2;
  }
  if (n > 0) return push(t, n);
  if (t != '|') return value_done();  // an empty aggregate is a whole value
  after_attribute_ = true;            // empty attribute: the annotated value follows
  state_ = kType;
  return ScanStatus::need_more;
}

ScanStatus ReplyFramer::on_end_marker(std::string_view line) {
  if (!line.empty()) return fail("invalid end marker");
  if (depth_ == 0 || stack_[depth_ - 1].remaining != -1) {
    return fail("end marker outside a streamed aggregate");
  }
  const Level& top = stack_[depth_ - 1];
  if (top.type == '%' && top.odd) return fail("streamed map ended after a key");
  --depth_;
  return value_done();
}

ScanStatus ReplyFramer::push(char type, std::int64_t remaining) {
  if (depth_ == kMaxDepth) return fail("nesting deeper than kMaxDepth");
  stack_[depth_++] = Level{remaining, type, false};
  state_ = kType;
  return ScanStatus::need_more;
}

// One value ended at pos_: count it against the open aggregates, closing finished ones.
ScanStatus ReplyFramer::value_done() {
  while (depth_ > 0) {
    Level& top = stack_[depth_ - 1];
    if (top.remaining == -1) {
      top.odd = !top.odd;
      state_ = kType;
      return ScanStatus::need_more;
    }
    if (--top.remaining > 0) {
      state_ = kType;
      return ScanStatus::need_more;
    }
    --depth_;
    if (top.type == '|') {
      // An attribute is not a value: the one it annotates comes next, in its place.
      after_attribute_ = true;
      state_ = kType;
      return ScanStatus::need_more;
    }
  }
  reply_.size = pos_;
  reply_.type = top_type_;
  state_ = kComplete;
  return ScanStatus::complete;
}

ScanStatus ReplyFramer::fail(const char* why, int byte) {
  error_ = why;
  error_has_byte_ = byte >= 0;
  error_byte_ = static_cast<char>(byte);
  state_ = kError;
  return ScanStatus::error;
}

std::string ReplyFramer::error_message() const {
  if (error_ == nullptr) return {};
  std::string msg(error_);
  if (error_has_byte_) {
    const auto b = static_cast<unsigned char>(error_byte_);
    if (b >= 0x20 && b < 0x7f) {
      msg += " '";
      msg += error_byte_;
      msg += '\'';
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      msg += " 0x";
      msg += kHex[b >> 4];
      msg += kHex[b & 15];
    }
  }
  return msg;
}

void ReplyFramer::reset() {
  // Field by field: the level stack needs no clearing, and copying it per reply would
  // cost 2 KiB of memory traffic on the hot path.
  reply_ = Reply{};
  state_ = kType;
  pos_ = 0;
  bulk_len_ = 0;
  depth_ = 0;
  top_type_ = 0;
  error_ = nullptr;
  error_byte_ = 0;
  error_has_byte_ = false;
  line_type_ = 0;
  line_start_ = 0;
  streaming_string_ = false;
  after_attribute_ = false;
}

}  // namespace tether::resp
