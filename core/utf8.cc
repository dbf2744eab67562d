#include "core/utf8.h"

namespace kvmrun {

std::optional<Utf8Char> DecodeUtf8(std::string_view text, std::size_t i) {
  const unsigned char c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return Utf8Char{c, 1};
  const std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
  if (length == 0 || c > 0xf4 || length > text.size() - i) return std::nullopt;
  std::uint32_t code_point = c & (0x7f >> length);
  for (std::size_t k = 1; k < length; ++k) {
    const unsigned char next = static_cast<unsigned char>(text[i + k]);
    if ((next & 0xc0) != 0x80) return std::nullopt;
    code_point = (code_point << 6) | (next & 0x3f);
  }
  const std::uint32_t shortest = length == 4 ? 0x10000 : length == 3 ? 0x800 : 0x80;
  if (code_point < shortest || code_point > 0x10ffff ||
      (code_point >= 0xd800 && code_point <= 0xdfff)) {
    return std::nullopt;
  }
  return Utf8Char{code_point, length};
}

}  // namespace kvmrun
