#include "core/safe_text.h"

#include <cstdint>
#include <cstdio>

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
  const unsigned char c = static_cast<unsigned char>(text[i]);
  const std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (length == 0 || c > 0xf4 || i + length > text.size()) return 0;
  std::uint32_t cp = c & (0x7f >> length);
  for (std::size_t k = 1; k < length; ++k) {
    const unsigned char next = static_cast<unsigned char>(text[i + k]);
    if ((next & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (next & 0x3f);
  }
  const std::uint32_t min = length == 4 ? 0x10000 : length == 3 ? 0x800 : 0x80;
  const bool ok = cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0xfffe &&
                  cp != 0xffff && !(cp >= 0x80 && cp <= 0x9f);
  return ok ? length : 0;
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
