// Value: a decoded reply, for the control plane only (handshakes, Sentinel). The data
// path never builds values; it forwards framed bytes.
//
// Decoding uses hiredis's reader (RESP2). Encoding writes RESP2 multibulk commands.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tether::resp {

struct Value {
  enum class Type { string, status, error, integer, nil, array };
  Type type = Type::nil;
  std::string str;  // string, status, error
  std::int64_t integer = 0;
  std::vector<Value> elements;  // array

  bool is_error() const { return type == Type::error; }
};

// Decodes exactly one complete RESP2 reply; nullopt if `frame` is not one whole reply.
std::optional<Value> decode_reply(std::string_view frame);

// "*N\r\n$len\r\narg\r\n..." for the given arguments.
std::string encode_command(std::initializer_list<std::string_view> args);
std::string encode_command(const std::vector<std::string>& args);

}  // namespace tether::resp
