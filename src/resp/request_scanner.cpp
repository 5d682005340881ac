// RequestScanner: a resumable transliteration of Redis 7.0's processInputBuffer /
// processMultibulkBuffer / processInlineBuffer (src/networking.c) that frames requests
// instead of building argv.
//
//   kStart ──'*'──► kMbulkHeader ──► kBulkHeader ◄──► kBulkPayload ──► complete
//      │                 │ count <= 0 ──────────────────────────────────► complete (argc 0)
//      └──other──► kInline ──'\n'──► split args ──► complete / unbalanced quotes
//
// Redis details kept on purpose, so that our framing and the upstream's never differ:
//  * A header line ends at the first '\r' found by strchr(), i.e. a NUL byte before it
//    means "no line yet". One more byte must follow the '\r'; it is skipped unchecked.
//  * "*<n>" with n <= 0 is consumed as a request with no arguments.
//  * The 2 bytes after a bulk payload are skipped without checking that they are CRLF.
//  * An inline line ends at the first '\n' (strchr(), so NUL again means "no line yet"),
//    an optional '\r' before it is dropped, and an empty line is consumed silently.
//  * "too big ..." is Redis's check on buffered bytes without a line end. Redis applies
//    it to whatever one read() delivered; we apply it as if bytes arrived one at a time
//    (error once max_inline_len + 1 bytes hold no line end), the only split-independent
//    choice. Redis may accept a longer line that arrived in one read; we never accept a
//    line that Redis would refuse.
#include "tether/resp/request_scanner.hpp"

#include <algorithm>
#include <cstring>

#include "redis_number.hpp"
#include "split_args.hpp"

namespace tether::resp {

namespace {

enum State : int {
  kStart = 0,
  kInline,
  kMbulkHeader,
  kBulkHeader,
  kBulkPayload,
  kComplete,
  kError,
};

// Index of the first `eol` byte in buf[from, end), as strchr() sees it: the search stops
// at a NUL byte. Returns `end` if not found; sets `nul` if a NUL stopped the search.
std::size_t find_eol(std::string_view buf, std::size_t from, std::size_t end, char eol, bool& nul) {
  for (std::size_t i = from; i < end; ++i) {
    const char c = buf[i];
    if (c == eol) return i;
    if (c == '\0') {
      nul = true;
      return i;
    }
  }
  return end;
}

}  // namespace

ScanStatus RequestScanner::scan(std::string_view buf) {
  for (;;) {
    switch (state_) {
      case kStart:
        if (buf.empty()) return ScanStatus::need_more;
        line_start_ = pos_ = 0;
        state_ = buf[0] == '*' ? kMbulkHeader : kInline;
        break;
      case kInline:
        return scan_inline(buf);
      case kMbulkHeader:
        if (const ScanStatus s = scan_header(buf, ProtocolError::too_big_mbulk_count);
            s != ScanStatus::complete) {
          return s;
        }
        if (const ScanStatus s = on_mbulk_header(buf, pos_); s != ScanStatus::need_more) return s;
        break;
      case kBulkHeader:
        if (const ScanStatus s = scan_header(buf, ProtocolError::too_big_bulk_count);
            s != ScanStatus::complete) {
          return s;
        }
        if (const ScanStatus s = on_bulk_header(buf, pos_); s != ScanStatus::need_more) return s;
        break;
      case kBulkPayload: {
        // bulk_len_ <= max_bulk_len <= INT64_MAX, so + 2 cannot wrap in 64 bits.
        const auto need = static_cast<std::uint64_t>(bulk_len_) + 2;
        if (buf.size() - pos_ < need) return ScanStatus::need_more;
        if (request_.argc == remaining_args_) {
          name_pos_ = pos_;
          name_len_ = static_cast<std::size_t>(bulk_len_);
        }
        pos_ += static_cast<std::size_t>(need);
        if (--remaining_args_ == 0) return complete(buf, pos_);
        line_start_ = pos_;
        state_ = kBulkHeader;
        break;
      }
      case kComplete:
        return ScanStatus::complete;
      default:
        return ScanStatus::error;
    }
  }
}

// Searches the header line that starts at line_start_ for its '\r'. Returns complete
// with pos_ at the '\r' once the byte after it is there too.
ScanStatus RequestScanner::scan_header(std::string_view buf, ProtocolError too_big) {
  const std::size_t window_end = std::min(buf.size(), line_start_ + limits_.max_inline_len + 1);
  if (!eol_unreachable_ && pos_ < window_end) {
    pos_ = find_eol(buf, pos_, window_end, '\r', eol_unreachable_);
  }
  if (!eol_unreachable_ && pos_ < window_end) {
    return pos_ + 1 < buf.size() ? ScanStatus::complete : ScanStatus::need_more;
  }
  if (buf.size() - line_start_ > limits_.max_inline_len) return fail(too_big);
  return ScanStatus::need_more;
}

// Returns need_more to mean "go on scanning".
ScanStatus RequestScanner::on_mbulk_header(std::string_view buf, std::size_t cr) {
  std::int64_t count = 0;
  if (!detail::string2ll(buf.substr(1, cr - 1), count) || count > limits_.max_multibulk_len) {
    return fail(ProtocolError::invalid_multibulk_length);
  }
  if (count <= 0) {
    request_.argc = 0;
    return complete(buf, cr + 2);
  }
  request_.argc = remaining_args_ = count;
  line_start_ = pos_ = cr + 2;
  state_ = kBulkHeader;
  return ScanStatus::need_more;
}

ScanStatus RequestScanner::on_bulk_header(std::string_view buf, std::size_t cr) {
  if (buf[line_start_] != '$') return fail(ProtocolError::expected_dollar, buf[line_start_]);
  std::int64_t len = 0;
  if (!detail::string2ll(buf.substr(line_start_ + 1, cr - line_start_ - 1), len) || len < 0 ||
      len > limits_.max_bulk_len) {
    return fail(ProtocolError::invalid_bulk_length);
  }
  bulk_len_ = len;
  pos_ = cr + 2;
  state_ = kBulkPayload;
  return ScanStatus::need_more;
}

ScanStatus RequestScanner::scan_inline(std::string_view buf) {
  const std::size_t window_end = std::min(buf.size(), limits_.max_inline_len + 1);
  if (!eol_unreachable_ && pos_ < window_end) {
    pos_ = find_eol(buf, pos_, window_end, '\n', eol_unreachable_);
  }
  if (!eol_unreachable_ && pos_ < window_end) return on_inline_line(buf, pos_);
  if (buf.size() > limits_.max_inline_len) return fail(ProtocolError::too_big_inline);
  return ScanStatus::need_more;
}

ScanStatus RequestScanner::on_inline_line(std::string_view buf, std::size_t lf) {
  const std::size_t line_len = (lf > 0 && buf[lf - 1] == '\r') ? lf - 1 : lf;
  const std::string_view line = buf.substr(0, line_len);
  std::size_t p = 0;
  detail::TokenSpan span;
  std::int64_t argc = 0;
  std::size_t decoded = 0;
  for (;;) {
    const bool first = argc == 0;
    decoded = 0;
    auto sink = [&](char c) {
      if (first && decoded < kMaxNameLen) name_buf_[decoded] = c;
      ++decoded;
    };
    const detail::SplitResult r = detail::split_next(line, p, span, sink);
    if (r == detail::SplitResult::end) break;
    if (r == detail::SplitResult::unbalanced) return fail(ProtocolError::unbalanced_quotes);
    if (first) {
      name_in_buf_ = !span.plain;
      name_pos_ = span.begin;
      name_len_ = span.plain ? span.end - span.begin : std::min(decoded, kMaxNameLen);
    }
    ++argc;
  }
  request_.argc = argc;
  request_.is_inline = true;
  return complete(buf, lf + 1);
}

ScanStatus RequestScanner::complete(std::string_view buf, std::size_t size) {
  request_.size = size;
  if (request_.argc == 0) {
    request_.name = {};
  } else if (name_in_buf_) {
    request_.name = std::string_view(name_buf_.data(), name_len_);
  } else {
    request_.name = buf.substr(name_pos_, name_len_);
  }
  state_ = kComplete;
  return ScanStatus::complete;
}

ScanStatus RequestScanner::fail(ProtocolError error, char byte) {
  error_ = error;
  error_byte_ = byte;
  state_ = kError;
  return ScanStatus::error;
}

std::string RequestScanner::error_message() const {
  switch (error_) {
    case ProtocolError::none:
      return {};
    case ProtocolError::invalid_multibulk_length:
      return "Protocol error: invalid multibulk length";
    case ProtocolError::invalid_bulk_length:
      return "Protocol error: invalid bulk length";
    case ProtocolError::expected_dollar: {
      // addReplyErrorFormat maps CR and LF to spaces so the reply stays one line.
      const char c = (error_byte_ == '\r' || error_byte_ == '\n') ? ' ' : error_byte_;
      return std::string("Protocol error: expected '$', got '") + c + "'";
    }
    case ProtocolError::too_big_mbulk_count:
      return "Protocol error: too big mbulk count string";
    case ProtocolError::too_big_bulk_count:
      return "Protocol error: too big bulk count string";
    case ProtocolError::too_big_inline:
      return "Protocol error: too big inline request";
    case ProtocolError::unbalanced_quotes:
      return "Protocol error: unbalanced quotes in request";
  }
  return {};
}

void RequestScanner::reset() {
  request_ = Request{};
  error_ = ProtocolError::none;
  error_byte_ = 0;
  state_ = kStart;
  pos_ = 0;
  remaining_args_ = 0;
  bulk_len_ = 0;
  name_pos_ = 0;
  name_len_ = 0;
  name_in_buf_ = false;
  line_start_ = 0;
  eol_unreachable_ = false;
}

// ---------------------------------------------------------------------------------------

ArgIterator::ArgIterator(std::string_view request_bytes, const Request& request)
    : bytes_(request_bytes.substr(0, request.size)),
      inline_(request.is_inline),
      left_(request.argc) {
  if (inline_) {
    // The line without its '\n' and optional '\r'.
    std::size_t len = bytes_.empty() ? 0 : bytes_.size() - 1;
    if (len > 0 && bytes_[len - 1] == '\r') --len;
    bytes_ = bytes_.substr(0, len);
  } else if (left_ > 0) {
    pos_ = bytes_.find('\r') + 2;  // skip "*<n>\r\n"
  }
}

bool ArgIterator::next(std::string_view& out, std::string& scratch) {
  if (left_ <= 0) return false;
  if (inline_) {
    detail::TokenSpan span;
    scratch.clear();
    auto sink = [&](char c) { scratch.push_back(c); };
    if (detail::split_next(bytes_, pos_, span, sink) != detail::SplitResult::token) {
      left_ = 0;
      return false;
    }
    out = span.plain ? bytes_.substr(span.begin, span.end - span.begin) : std::string_view(scratch);
  } else {
    // "$<len>\r?<payload>??": validated by the scanner, so the header parses.
    const std::size_t cr = bytes_.find('\r', pos_);
    std::int64_t len = 0;
    if (cr == std::string_view::npos ||
        !detail::string2ll(bytes_.substr(pos_ + 1, cr - pos_ - 1), len)) {
      left_ = 0;
      return false;
    }
    out = bytes_.substr(cr + 2, static_cast<std::size_t>(len));
    pos_ = cr + 2 + static_cast<std::size_t>(len) + 2;
  }
  --left_;
  return true;
}

}  // namespace tether::resp
