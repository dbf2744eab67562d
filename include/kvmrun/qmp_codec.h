// The QMP wire format, without any I/O: bytes in, messages out; commands in, bytes out.
//
// QEMU sends one JSON object per message, normally one per line ending in CRLF, but `-mon
// pretty=on` spreads a message over many lines, so the decoder frames messages by tracking
// JSON structure (braces outside strings), not by lines. It copes with any read boundaries: a
// message split across reads, several in one read, CRLF or LF or no separator at all.
#ifndef KVMRUN_QMP_CODEC_H_
#define KVMRUN_QMP_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "kvmrun/error.h"

namespace kvmrun {

// The peer sent something that is not QMP: malformed JSON, a non-object, an oversized
// message, a message of no known kind. what() says what and at which byte of the stream.
class QmpProtocolError : public Error {
 public:
  using Error::Error;
};

enum class QmpMessageKind { kGreeting, kReturn, kError, kEvent };
std::string_view ToString(QmpMessageKind kind);

struct QmpMessage {
  QmpMessageKind kind = QmpMessageKind::kReturn;
  nlohmann::json json;  // the whole message as received

  // The "id" of a return or error; null when absent.
  const nlohmann::json& id() const;
};

// Classifies a parsed message; throws QmpProtocolError when it is no QMP message kind.
QmpMessage ClassifyQmpMessage(nlohmann::json json);

inline constexpr std::size_t kDefaultMaxQmpMessageBytes = 64u << 20;  // 64 MiB

// Where a JSON text stands, a byte at a time: inside a string or not, and how many objects and
// arrays are open. What the decoder frames messages by, and what bounds nesting before a
// parser sees the text.
struct JsonNesting {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;

  // Takes the next byte.
  void Step(char c) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
};

// The deepest nesting of objects and arrays kvmrun accepts in JSON from outside (a QMP peer,
// the user's arguments, a cases file). Deeper input is refused with a clear error instead of
// reaching code that recurses per level (serializing, comparing) and overflowing the stack.
// QMP's own messages nest a handful of levels; QEMU's parser stops at 1024.
inline constexpr int kMaxJsonDepth = 128;

// JSON text nested deeper than kMaxJsonDepth.
class JsonTooDeep : public Error {
 public:
  using Error::Error;
};

// At most `max_chars` of `json` serialized, printable, for an error message. Safe for JSON
// from outside: what the decoder and ParseBoundedJson let through is nested at most
// kMaxJsonDepth deep.
std::string JsonExcerpt(const nlohmann::json& json, std::size_t max_chars = 200);

// Serializes JSON whose strings may hold bytes from outside (a guest's console line, a file
// name, a parser's message quoting them): invalid UTF-8 becomes U+FFFD instead of the
// type_error nlohmann throws. Every JSON kvmrun writes goes through it.
std::string DumpJson(const nlohmann::json& json, int indent = -1);

// Parses JSON `text` from outside. Throws JsonTooDeep (before building anything) and
// nlohmann::json::exception for malformed text.
nlohmann::json ParseBoundedJson(std::string_view text);

class QmpDecoder {
 public:
  explicit QmpDecoder(std::size_t max_message_bytes = kDefaultMaxQmpMessageBytes);

  // Appends bytes from the stream. Cheap: framing happens in Next().
  void Feed(std::string_view bytes);

  // The next complete message, or nullopt when more bytes are needed. Throws QmpProtocolError
  // on malformed input; the decoder is then unusable (QMP has no way to resynchronise).
  std::optional<QmpMessage> Next();

  // True when bytes of an incomplete message are buffered (a truncated message at EOF).
  bool HasPartialMessage() const;

  // Total bytes fed so far.
  std::uint64_t bytes_fed() const { return consumed_ + buffer_.size(); }

 private:
  [[noreturn]] void Fail(const std::string& what, std::size_t at) const;

  std::size_t max_message_bytes_;
  std::string buffer_;                     // bytes fed and not yet dropped
  std::uint64_t consumed_ = 0;             // bytes dropped from the front of buffer_
  std::size_t head_ = 0;                   // buffer_[0, head_) belongs to messages already returned
  std::size_t scan_ = 0;                   // how far into buffer_ the current message was scanned
  std::size_t start_ = std::string::npos;  // where the current message begins in buffer_
  JsonNesting nesting_;
  bool failed_ = false;
};

// One command as sent on the wire: {"execute": ..., "arguments": ..., "id": ...} and CRLF.
// Arguments are omitted when null or an empty object.
std::string EncodeQmpCommand(std::string_view command, const nlohmann::json& arguments,
                             std::int64_t id);

}  // namespace kvmrun

#endif  // KVMRUN_QMP_CODEC_H_
