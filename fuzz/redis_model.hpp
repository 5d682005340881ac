// A reference model of how Redis 7.0 frames one request, for fuzz_request_scanner: a
// deliberately naive transliteration of processInputBuffer / processMultibulkBuffer /
// processInlineBuffer / sdssplitargs / string2ll (src/networking.c, sds.c, util.c),
// working on a NUL-terminated copy with strchr() exactly like Redis, restarted from
// scratch on every call. It shares no code with RequestScanner.
//
// model_frame(prefix) answers for a query buffer holding exactly `prefix`; feeding it
// prefixes one byte longer each time reproduces Redis with bytes arriving one by one.
#pragma once

#include <cctype>
#include <climits>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "tether/resp/limits.hpp"
#include "tether/resp/request_scanner.hpp"

namespace tether::fuzz {

struct ModelResult {
  resp::ScanStatus status = resp::ScanStatus::need_more;
  std::size_t size = 0;
  long long argc = 0;
  std::string name;
  std::string error;
};

inline bool model_string2ll(const char* s, size_t slen, long long* value) {
  const char* p = s;
  size_t plen = 0;
  int negative = 0;
  unsigned long long v;
  if (plen == slen || slen >= 21) return false;
  if (slen == 1 && p[0] == '0') {
    *value = 0;
    return true;
  }
  if (p[0] == '-') {
    negative = 1;
    p++;
    plen++;
    if (plen == slen) return false;
  }
  if (p[0] >= '1' && p[0] <= '9') {
    v = static_cast<unsigned long long>(p[0] - '0');
    p++;
    plen++;
  } else {
    return false;
  }
  while (plen < slen && p[0] >= '0' && p[0] <= '9') {
    if (v > (ULLONG_MAX / 10)) return false;
    v *= 10;
    if (v > (ULLONG_MAX - static_cast<unsigned long long>(p[0] - '0'))) return false;
    v += static_cast<unsigned long long>(p[0] - '0');
    p++;
    plen++;
  }
  if (plen < slen) return false;
  if (negative) {
    if (v > (static_cast<unsigned long long>(-(LLONG_MIN + 1)) + 1)) return false;
    *value = static_cast<long long>(0ULL - v);
  } else {
    if (v > LLONG_MAX) return false;
    *value = static_cast<long long>(v);
  }
  return true;
}

inline bool model_is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}
inline int model_hex(char c) {
  return std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : (std::tolower(c) - 'a' + 10);
}

// sdssplitargs; false on unbalanced quotes.
inline bool model_splitargs(const char* line, std::vector<std::string>& argv) {
  const char* p = line;
  for (;;) {
    while (*p && std::isspace(static_cast<unsigned char>(*p)))
      p++;
    if (!*p) return true;
    int inq = 0, insq = 0, done = 0;
    std::string current;
    while (!done) {
      if (inq) {
        if (*p == '\\' && *(p + 1) == 'x' && model_is_hex(*(p + 2)) && model_is_hex(*(p + 3))) {
          current += static_cast<char>(model_hex(*(p + 2)) * 16 + model_hex(*(p + 3)));
          p += 3;
        } else if (*p == '\\' && *(p + 1)) {
          p++;
          const char* const from = "nrtba";
          const char* const to = "\n\r\t\b\a";
          const char* hit = std::strchr(from, *p);
          current += hit != nullptr ? to[hit - from] : *p;
        } else if (*p == '"') {
          if (*(p + 1) && !std::isspace(static_cast<unsigned char>(*(p + 1)))) return false;
          done = 1;
        } else if (!*p) {
          return false;
        } else {
          current += *p;
        }
      } else if (insq) {
        if (*p == '\\' && *(p + 1) == '\'') {
          p++;
          current += '\'';
        } else if (*p == '\'') {
          if (*(p + 1) && !std::isspace(static_cast<unsigned char>(*(p + 1)))) return false;
          done = 1;
        } else if (!*p) {
          return false;
        } else {
          current += *p;
        }
      } else {
        switch (*p) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0':
            done = 1;
            break;
          case '"':
            inq = 1;
            break;
          case '\'':
            insq = 1;
            break;
          default:
            current += *p;
            break;
        }
      }
      if (*p) p++;
    }
    argv.push_back(std::move(current));
  }
}

inline ModelResult model_error(const char* text) {
  ModelResult r;
  r.status = resp::ScanStatus::error;
  r.error = text;
  return r;
}

inline ModelResult model_frame(std::string_view prefix, const resp::Limits& limits) {
  const std::string qb(prefix);  // NUL-terminated, like an sds
  const char* q = qb.c_str();
  const size_t len = qb.size();
  ModelResult r;
  if (len == 0) return r;
  if (q[0] != '*') {  // processInlineBuffer
    const char* newline = std::strchr(q, '\n');
    if (newline == nullptr) {
      if (len > limits.max_inline_len) return model_error("Protocol error: too big inline request");
      return r;
    }
    size_t linefeed_chars = 1;
    if (newline != q && *(newline - 1) == '\r') newline--, linefeed_chars++;
    const size_t querylen = static_cast<size_t>(newline - q);
    const std::string aux(q, querylen);
    std::vector<std::string> argv;
    if (!model_splitargs(aux.c_str(), argv)) {
      return model_error("Protocol error: unbalanced quotes in request");
    }
    r.status = resp::ScanStatus::complete;
    r.size = querylen + linefeed_chars;
    r.argc = static_cast<long long>(argv.size());
    if (!argv.empty()) r.name = argv[0];
    return r;
  }
  // processMultibulkBuffer
  size_t pos = 0;
  const char* newline = std::strchr(q + pos, '\r');
  if (newline == nullptr) {
    if (len - pos > limits.max_inline_len) {
      return model_error("Protocol error: too big mbulk count string");
    }
    return r;
  }
  if (newline - (q + pos) > static_cast<long>(len - pos) - 2) return r;
  long long ll = 0;
  if (!model_string2ll(q + 1 + pos, static_cast<size_t>(newline - (q + 1 + pos)), &ll) ||
      ll > limits.max_multibulk_len) {
    return model_error("Protocol error: invalid multibulk length");
  }
  pos = static_cast<size_t>(newline - q) + 2;
  if (ll <= 0) {
    r.status = resp::ScanStatus::complete;
    r.size = pos;
    return r;
  }
  long long multibulklen = ll;
  const long long argc = ll;
  std::string name;
  while (multibulklen) {
    newline = std::strchr(q + pos, '\r');
    if (newline == nullptr) {
      if (len - pos > limits.max_inline_len) {
        return model_error("Protocol error: too big bulk count string");
      }
      return r;
    }
    if (newline - (q + pos) > static_cast<long>(len - pos) - 2) return r;
    if (q[pos] != '$') {
      std::string e = "Protocol error: expected '$', got '";
      e += (q[pos] == '\r' || q[pos] == '\n') ? ' ' : q[pos];
      return model_error((e + "'").c_str());
    }
    if (!model_string2ll(q + pos + 1, static_cast<size_t>(newline - (q + pos + 1)), &ll) ||
        ll < 0 || ll > limits.max_bulk_len) {
      return model_error("Protocol error: invalid bulk length");
    }
    pos = static_cast<size_t>(newline - q) + 2;
    if (len - pos < static_cast<size_t>(ll) + 2) return r;
    if (multibulklen == argc) name.assign(q + pos, static_cast<size_t>(ll));
    pos += static_cast<size_t>(ll) + 2;
    multibulklen--;
  }
  r.status = resp::ScanStatus::complete;
  r.size = pos;
  r.argc = argc;
  r.name = name;
  return r;
}

// Redis with the bytes of `in` arriving one at a time: the first answer that is not
// "need more".
inline ModelResult model_bytewise(std::string_view in, const resp::Limits& limits) {
  ModelResult r;
  for (std::size_t k = 1; k <= in.size(); ++k) {
    r = model_frame(in.substr(0, k), limits);
    if (r.status != resp::ScanStatus::need_more) return r;
  }
  return r;
}

}  // namespace tether::fuzz
