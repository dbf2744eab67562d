// UTF-8 read strictly: one well-formed character at a time, for code that must know where a
// file's characters begin and end (an invalid byte is an answer, never a guess). Pure.
#ifndef KVMRUN_CORE_UTF8_H_
#define KVMRUN_CORE_UTF8_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kvmrun {

struct Utf8Char {
  std::uint32_t code_point = 0;
  std::size_t length = 0;  // bytes, 1 to 4
};

// The character that starts at text[i], or nullopt where the bytes there are not the shortest
// encoding of a Unicode scalar value (a stray continuation byte, an overlong form, a surrogate,
// a value above U+10FFFF, a sequence cut off by the end of the text). i < text.size().
std::optional<Utf8Char> DecodeUtf8(std::string_view text, std::size_t i);

}  // namespace kvmrun

#endif  // KVMRUN_CORE_UTF8_H_
