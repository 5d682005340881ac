// Helpers for the resp unit tests: scan an input whole, grown one byte at a time and in
// two chunks, and require that every way of splitting it gives the same result.
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "tether/resp/reply_framer.hpp"
#include "tether/resp/request_scanner.hpp"

namespace tether::resp::test {

// Printable form of bytes for failure messages.
inline std::string show(std::string_view s) {
  std::string out;
  for (const unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

struct ScanResult {
  ScanStatus status = ScanStatus::need_more;
  std::size_t size = 0;
  std::int64_t argc = 0;
  bool is_inline = false;
  std::string name;
  std::string error;

  bool operator==(const ScanResult& o) const {
    return status == o.status && size == o.size && argc == o.argc && is_inline == o.is_inline &&
           name == o.name && error == o.error;
  }
};

inline std::string to_string(ScanStatus s) {
  switch (s) {
    case ScanStatus::complete:
      return "complete";
    case ScanStatus::need_more:
      return "need_more";
    case ScanStatus::error:
      return "error";
  }
  return "?";
}

inline std::string describe(const ScanResult& r) {
  return to_string(r.status) + " size=" + std::to_string(r.size) +
         " argc=" + std::to_string(r.argc) + " inline=" + std::to_string(r.is_inline) + " name='" +
         show(r.name) + "' error='" + r.error + "'";
}

inline ScanResult result_of(const RequestScanner& s, ScanStatus st) {
  ScanResult r;
  r.status = st;
  if (st == ScanStatus::complete) {
    r.size = s.request().size;
    r.argc = s.request().argc;
    r.is_inline = s.request().is_inline;
    r.name = std::string(s.request().name);
  } else if (st == ScanStatus::error) {
    r.error = s.error_message();
  }
  return r;
}

// One fresh scanner over the whole input.
inline ScanResult scan_once(std::string_view in, const Limits& limits = Limits{}) {
  RequestScanner s(limits);
  const std::string copy(in);
  return result_of(s, s.scan(copy));
}

// Scans `in` whole, then grown one byte at a time (each prefix in a freshly allocated
// copy, as a growing buffer moves), then split in two at every offset; every way must
// agree with the whole scan, and each prefix must agree with a fresh scan of it.
inline ScanResult check_request_splits(std::string_view in, const Limits& limits = Limits{}) {
  INFO("input: " << show(in));
  const ScanResult whole = scan_once(in, limits);
  {
    RequestScanner grow(limits);
    ScanResult last;
    for (std::size_t k = 0; k <= in.size(); ++k) {
      const std::string prefix(in.substr(0, k));
      last = result_of(grow, grow.scan(prefix));
      INFO("prefix " << k << ": " << describe(last));
      REQUIRE(last == scan_once(prefix, limits));
      if (last.status != ScanStatus::need_more) break;
    }
    INFO("grown: " << describe(last) << " whole: " << describe(whole));
    REQUIRE(last == whole);
  }
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    RequestScanner two(limits);
    const std::string first(in.substr(0, cut));
    ScanResult r = result_of(two, two.scan(first));
    if (r.status == ScanStatus::need_more) {
      const std::string all(in);
      r = result_of(two, two.scan(all));
    }
    INFO("cut at " << cut << ": " << describe(r) << " whole: " << describe(whole));
    REQUIRE(r == whole);
  }
  return whole;
}

struct FrameResult {
  ScanStatus status = ScanStatus::need_more;
  std::size_t size = 0;
  char type = 0;
  std::string error;

  bool operator==(const FrameResult& o) const {
    return status == o.status && size == o.size && type == o.type && error == o.error;
  }
};

inline std::string describe(const FrameResult& r) {
  return to_string(r.status) + " size=" + std::to_string(r.size) + " type='" +
         show(std::string(1, r.type)) + "' error='" + r.error + "'";
}

inline FrameResult result_of(const ReplyFramer& f, ScanStatus st) {
  FrameResult r;
  r.status = st;
  if (st == ScanStatus::complete) {
    r.size = f.reply().size;
    r.type = f.reply().type;
  } else if (st == ScanStatus::error) {
    r.error = f.error_message();
  }
  return r;
}

inline FrameResult frame_once(std::string_view in, const Limits& limits = Limits{}) {
  ReplyFramer f(limits);
  const std::string copy(in);
  return result_of(f, f.scan(copy));
}

// Same contract as check_request_splits, for the reply framer.
inline FrameResult check_reply_splits(std::string_view in, const Limits& limits = Limits{}) {
  INFO("input: " << show(in));
  const FrameResult whole = frame_once(in, limits);
  {
    ReplyFramer grow(limits);
    FrameResult last;
    for (std::size_t k = 0; k <= in.size(); ++k) {
      const std::string prefix(in.substr(0, k));
      last = result_of(grow, grow.scan(prefix));
      INFO("prefix " << k << ": " << describe(last));
      REQUIRE(last == frame_once(prefix, limits));
      if (last.status != ScanStatus::need_more) break;
    }
    INFO("grown: " << describe(last) << " whole: " << describe(whole));
    REQUIRE(last == whole);
  }
  for (std::size_t cut = 0; cut <= in.size(); ++cut) {
    ReplyFramer two(limits);
    const std::string first(in.substr(0, cut));
    FrameResult r = result_of(two, two.scan(first));
    if (r.status == ScanStatus::need_more) {
      const std::string all(in);
      r = result_of(two, two.scan(all));
    }
    INFO("cut at " << cut << ": " << describe(r) << " whole: " << describe(whole));
    REQUIRE(r == whole);
  }
  return whole;
}

}  // namespace tether::resp::test
