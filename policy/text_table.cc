#include "policy/text_table.h"

#include <algorithm>

#include "core/safe_text.h"

namespace kvmrun {

std::string FormatTable(const std::vector<TextRow>& given) {
  // Cells often hold text from outside (a case name from a shard's file, a guest's line): a
  // control character in one is shown escaped, never sent to the terminal.
  std::vector<TextRow> rows = given;
  for (TextRow& row : rows) {
    for (std::string& cell : row) cell = SafeText(cell);
  }
  std::vector<std::size_t> widths;
  for (const TextRow& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const TextRow& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

}  // namespace kvmrun
