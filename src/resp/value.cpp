// Value decoding through hiredis's reader (control plane only), and command encoding.
#include "tether/resp/value.hpp"

#include <hiredis/hiredis.h>

#include <memory>

namespace tether::resp {

namespace {

struct ReaderDeleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};

Value to_value(const redisReply& r) {
  Value v;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      v.type = Value::Type::string;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      v.type = Value::Type::status;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      v.type = Value::Type::error;
      v.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      v.type = Value::Type::integer;
      v.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      v.type = Value::Type::array;
      v.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i)
        v.elements.push_back(to_value(*r.element[i]));
      break;
    default:
      v.type = Value::Type::nil;
      break;
  }
  return v;
}

void append_bulk(std::string& out, std::string_view arg) {
  out += '$';
  out += std::to_string(arg.size());
  out += "\r\n";
  out += arg;
  out += "\r\n";
}

template <class Range>
std::string encode(const Range& args) {
  std::size_t bytes = 16;
  for (const auto& a : args)
    bytes += std::string_view(a).size() + 16;
  std::string out;
  out.reserve(bytes);
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const auto& a : args)
    append_bulk(out, a);
  return out;
}

}  // namespace

std::optional<Value> decode_reply(std::string_view frame) {
  std::unique_ptr<redisReader, ReaderDeleter> reader(redisReaderCreate());
  if (!reader || frame.empty()) return std::nullopt;
  if (redisReaderFeed(reader.get(), frame.data(), frame.size()) != REDIS_OK) return std::nullopt;
  void* raw = nullptr;
  if (redisReaderGetReply(reader.get(), &raw) != REDIS_OK || raw == nullptr) return std::nullopt;
  std::unique_ptr<redisReply, ReplyDeleter> reply(static_cast<redisReply*>(raw));
  // Exactly one reply: nothing may be left over after it.
  if (reader->pos != reader->len) return std::nullopt;
  return to_value(*reply);
}

std::string encode_command(std::initializer_list<std::string_view> args) {
  return encode(args);
}

std::string encode_command(const std::vector<std::string>& args) {
  return encode(args);
}

}  // namespace tether::resp
