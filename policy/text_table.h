// Plain-text tables for reports: left-aligned columns, two spaces apart, no trailing blanks.
#ifndef KVMRUN_POLICY_TEXT_TABLE_H_
#define KVMRUN_POLICY_TEXT_TABLE_H_

#include <string>
#include <vector>

namespace kvmrun {

using TextRow = std::vector<std::string>;

// One line per row; every column but the last padded to its widest cell.
std::string FormatTable(const std::vector<TextRow>& rows);

}  // namespace kvmrun

#endif  // KVMRUN_POLICY_TEXT_TABLE_H_
