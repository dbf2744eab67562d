// Text from outside (a guest's console, a file's field, a peer's message) made safe to show:
// to a terminal, where an escape sequence could move the cursor, retitle the window or worse,
// and to XML, which forbids most control characters. Pure.
#ifndef KVMRUN_CORE_SAFE_TEXT_H_
#define KVMRUN_CORE_SAFE_TEXT_H_

#include <string>
#include <string_view>

namespace kvmrun {

// Which layout characters pass unchanged; every other control character (C0, DEL, the C1 range
// U+0080-U+009F that terminals also obey) and every byte of invalid UTF-8 becomes \xNN.
enum class KeepLayout {
  kNone,      // one line: a newline is \x0a too (a field printed in a table or a message)
  kNewlines,  // text shown as lines: tab and newline kept
  kXml,       // tab, newline and carriage return kept (XML 1.0 allows exactly these)
};

std::string SafeText(std::string_view text, KeepLayout keep = KeepLayout::kNone);

// SafeText, cut to at most `max_bytes` of the original with "..." when longer: a value quoted in
// an error message.
std::string SafeExcerpt(std::string_view text, std::size_t max_bytes = 200);

}  // namespace kvmrun

#endif  // KVMRUN_CORE_SAFE_TEXT_H_
