#include "core/safe_text.h"

#include <cstdint>
#include <cstdio>
#include <optional>

#include "core/utf8.h"

namespace kvmrun {
namespace {

bool Kept(unsigned char c, KeepLayout keep) {
  switch (keep) {
    case KeepLayout::kNone:
      return false;
    case KeepLayout::kNewlines:
      return c == '\t' || c == '\n';
    case KeepLayout::kXml:
      return c == '\t' || c == '\n' || c == '\r';
  }
  return false;
}

// The length of the well-formed UTF-8 sequence at text[i] of a character that is neither a
// C1 control nor a non-character, or 0.
std::size_t PrintableSequence(std::string_view text, std::size_t i) {
  const std::optional<Utf8Char> c = DecodeUtf8(text, i);
  if (!c) return 0;
  const std::uint32_t cp = c->code_point;
  const bool ok = cp != 0xfffe && cp != 0xffff && !(cp >= 0x80 && cp <= 0x9f);
  return ok ? c->length : 0;
}

}  // namespace

std::string SafeText(std::string_view text, KeepLayout keep) {
  std::string out;
  out.reserve(text.size());
  const auto escape_byte = [&](unsigned char byte) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "\\x%02x", byte);
    out += hex;
  };
  for (std::size_t i = 0; i < text.size();) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if ((c < 0x20 || c == 0x7f) && !Kept(c, keep)) {
        escape_byte(c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    if (const std::size_t length = PrintableSequence(text, i); length > 0) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      escape_byte(c);
      ++i;
    }
  }
  return out;
}

std::string SafeExcerpt(std::string_view text, std::size_t max_bytes) {
  if (text.size() <= max_bytes) return SafeText(text);
  return SafeText(text.substr(0, max_bytes)) + "...";
}

}  // namespace kvmrun
