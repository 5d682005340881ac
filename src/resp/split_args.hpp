// Inline-request tokeniser with exactly the rules of Redis's sdssplitargs (src/sds.c),
// which processInlineBuffer uses, but without allocating: decoded bytes go to a sink.
//
//   GET "a b" 'c\'d' "\x41\n"   ->   GET | a b | c'd | A<LF>
//
// Rules kept from sdssplitargs: blanks between tokens are isspace() (C locale); an
// unquoted token ends at ' ', '\t', '\r', '\n' or the end of the line (not at '\v' or
// '\f'); a quote may open in the middle of a token; inside "..." the escapes \xHH, \n,
// \r, \t, \b, \a and \<any> are decoded; inside '...' only \' is; a closing quote must be
// followed by a blank or the end of the line, otherwise the line is "unbalanced", as is
// a quote left open. The line never contains a NUL byte (see RequestScanner).
#pragma once

#include <cstddef>
#include <string_view>

namespace tether::resp::detail {

enum class SplitResult { token, end, unbalanced };

struct TokenSpan {
  std::size_t begin = 0;  // first byte of the raw token in the line
  std::size_t end = 0;    // one past its last raw byte (meaningful when plain)
  bool plain = true;      // no quotes: the decoded token is line[begin, end)
};

inline bool split_is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

inline int split_hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

inline char split_unescape(char c) {
  switch (c) {
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'b':
      return '\b';
    case 'a':
      return '\a';
    default:
      return c;
  }
}

// Reads the next token of `line` starting at `p`, advancing `p` past it. Decoded bytes
// are passed to `sink(char)` one by one. A transliteration of sdssplitargs' loop, kept
// as one function so that the two can be compared line by line.
template <class Sink>
SplitResult split_next(std::string_view line, std::size_t& p, TokenSpan& span, Sink&& sink) {
  auto at = [&](std::size_t i) { return i < line.size() ? line[i] : '\0'; };
  while (p < line.size() && split_is_space(line[p]))
    ++p;
  if (p >= line.size()) return SplitResult::end;
  span = TokenSpan{p, p, true};
  bool inq = false;
  bool insq = false;
  bool done = false;
  while (!done) {
    const char c = at(p);
    if (inq) {
      if (c == '\\' && at(p + 1) == 'x' && split_hex_value(at(p + 2)) >= 0 &&
          split_hex_value(at(p + 3)) >= 0) {
        sink(static_cast<char>(split_hex_value(at(p + 2)) * 16 + split_hex_value(at(p + 3))));
        p += 3;
      } else if (c == '\\' && at(p + 1) != '\0') {
        ++p;
        sink(split_unescape(at(p)));
      } else if (c == '"') {
        if (at(p + 1) != '\0' && !split_is_space(at(p + 1))) return SplitResult::unbalanced;
        done = true;
      } else if (c == '\0') {
        return SplitResult::unbalanced;
      } else {
        sink(c);
      }
    } else if (insq) {
      if (c == '\\' && at(p + 1) == '\'') {
        ++p;
        sink('\'');
      } else if (c == '\'') {
        if (at(p + 1) != '\0' && !split_is_space(at(p + 1))) return SplitResult::unbalanced;
        done = true;
      } else if (c == '\0') {
        return SplitResult::unbalanced;
      } else {
        sink(c);
      }
    } else {
      switch (c) {
        case ' ':
        case '\n':
        case '\r':
        case '\t':
        case '\0':
          span.end = p;
          done = true;
          break;
        case '"':
          inq = true;
          span.plain = false;
          break;
        case '\'':
          insq = true;
          span.plain = false;
          break;
        default:
          sink(c);
          break;
      }
    }
    if (at(p) != '\0') ++p;
  }
  return SplitResult::token;
}

}  // namespace tether::resp::detail
