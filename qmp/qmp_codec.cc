#include "kvmrun/qmp_codec.h"

#include <algorithm>
#include <cctype>

namespace kvmrun {
namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A short, printable excerpt of `text` for error messages.
std::string Excerpt(std::string_view text, std::size_t max_chars = 40) {
  std::string out;
  for (char c : text.substr(0, max_chars)) {
    out += std::isprint(static_cast<unsigned char>(c)) ? c : '.';
  }
  return text.size() > max_chars ? out + "..." : out;
}

}  // namespace

std::string_view ToString(QmpMessageKind kind) {
  switch (kind) {
    case QmpMessageKind::kGreeting:
      return "greeting";
    case QmpMessageKind::kReturn:
      return "return";
    case QmpMessageKind::kError:
      return "error";
    case QmpMessageKind::kEvent:
      return "event";
  }
  return "?";
}

const nlohmann::json& QmpMessage::id() const {
  static const nlohmann::json kNull;
  const auto it = json.find("id");
  return it == json.end() ? kNull : *it;
}

QmpMessage ClassifyQmpMessage(nlohmann::json json) {
  if (!json.is_object()) {
    throw QmpProtocolError("QMP message is not a JSON object: " + JsonExcerpt(json, 40));
  }
  QmpMessage message;
  if (json.contains("return")) {
    message.kind = QmpMessageKind::kReturn;
  } else if (json.contains("error")) {
    const auto& error = json["error"];
    if (!error.is_object() || !error.contains("class") || !error["class"].is_string()) {
      throw QmpProtocolError("QMP error reply without an error class: " + JsonExcerpt(json, 40));
    }
    message.kind = QmpMessageKind::kError;
  } else if (json.contains("event")) {
    if (!json["event"].is_string()) {
      throw QmpProtocolError("QMP event name is not a string: " + JsonExcerpt(json, 40));
    }
    message.kind = QmpMessageKind::kEvent;
  } else if (json.contains("QMP")) {
    message.kind = QmpMessageKind::kGreeting;
  } else {
    throw QmpProtocolError("unknown QMP message (no return, error, event or QMP member): " +
                           JsonExcerpt(json, 40));
  }
  message.json = std::move(json);
  return message;
}

QmpDecoder::QmpDecoder(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

void QmpDecoder::Feed(std::string_view bytes) {
  // Drop consumed bytes in bulk, not per message, so a read holding many messages stays
  // linear.
  if (head_ > 0 && head_ >= buffer_.size() / 2) {
    buffer_.erase(0, head_);
    consumed_ += head_;
    scan_ -= head_;
    if (start_ != std::string::npos) start_ -= head_;
    head_ = 0;
  }
  buffer_.append(bytes);
}

bool QmpDecoder::HasPartialMessage() const {
  return std::any_of(buffer_.begin() + head_, buffer_.end(),
                     [](char c) { return !IsJsonSpace(c); });
}

void QmpDecoder::Fail(const std::string& what, std::size_t at) const {
  throw QmpProtocolError("QMP stream: " + what + " at byte " + std::to_string(consumed_ + at));
}

std::optional<QmpMessage> QmpDecoder::Next() {
  if (failed_) throw QmpProtocolError("QMP stream: decoder used after a protocol error");
  const std::size_t size = buffer_.size();
  while (scan_ < size) {
    const char c = buffer_[scan_];
    if (start_ == std::string::npos) {
      if (IsJsonSpace(c)) {
        ++scan_;
        continue;
      }
      if (c != '{') {
        failed_ = true;
        Fail("expected '{' but got \"" + Excerpt(std::string_view(buffer_).substr(scan_)) + "\"",
             scan_);
      }
      start_ = scan_;
    }
    nesting_.Step(c);
    if (nesting_.depth > kMaxJsonDepth) {
      failed_ = true;
      Fail("message nested deeper than " + std::to_string(kMaxJsonDepth) + " levels", scan_);
    }
    ++scan_;
    if (scan_ - start_ > max_message_bytes_) {
      failed_ = true;
      Fail("message larger than " + std::to_string(max_message_bytes_) + " bytes", start_);
    }
    if (nesting_.depth != 0) continue;

    // A complete top-level object: [start_, scan_).
    const std::size_t begin = start_;
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(buffer_.begin() + begin, buffer_.begin() + scan_);
    } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range on 1E999
      failed_ = true;
      Fail("malformed JSON (" + std::string(e.what()) + ") in message \"" +
               Excerpt(std::string_view(buffer_).substr(begin)) + "\"",
           begin);
    }
    head_ = scan_;
    start_ = std::string::npos;
    try {
      return ClassifyQmpMessage(std::move(json));
    } catch (const QmpProtocolError&) {
      failed_ = true;
      throw;
    }
  }
  return std::nullopt;
}

std::string JsonExcerpt(const nlohmann::json& json, std::size_t max_chars) {
  return Excerpt(DumpJson(json), max_chars);
}

std::string DumpJson(const nlohmann::json& json, int indent) {
  return json.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

nlohmann::json ParseBoundedJson(std::string_view text) {
  JsonNesting nesting;
  for (char c : text) {
    nesting.Step(c);
    if (nesting.depth > kMaxJsonDepth) {
      throw JsonTooDeep("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
  }
  return nlohmann::json::parse(text);
}

std::string EncodeQmpCommand(std::string_view command, const nlohmann::json& arguments,
                             std::int64_t id) {
  nlohmann::json message = {{"execute", command}};
  if (!arguments.is_null() && !(arguments.is_object() && arguments.empty())) {
    message["arguments"] = arguments;
  }
  message["id"] = id;
  return message.dump() + "\r\n";
}

}  // namespace kvmrun
