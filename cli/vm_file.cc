#include "cli/vm_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/utf8.h"
#include "io/safe_file.h"
#include "kvmrun/error.h"
#include "kvmrun/qmp_codec.h"

namespace kvmrun::cli {
namespace {

namespace fs = std::filesystem;

// Options a file cannot set: they are about this invocation, not the VM.
constexpr std::string_view kNotInFiles[] = {"help", "vm-file", "dump-config"};

// Options whose value is a path (or starts with one, before a comma: disks and shares), made
// absolute against the file's directory. --qemu only when it has a '/' (a bare name is looked
// up in PATH).
constexpr std::string_view kPathOptions[] = {
    "kernel",    "initrd",      "disk",       "readonly-disk", "cdrom", "share",
    "state-dir", "qemu",        "restore",    "save",          "cases", "results",
    "junit",     "console-log", "qmp-socket", "firmware-dir"};
constexpr std::string_view kCommaListOptions[] = {"disk", "readonly-disk", "share"};

template <std::size_t N>
bool OneOf(std::string_view name, const std::string_view (&names)[N]) {
  return std::find(std::begin(names), std::end(names), name) != std::end(names);
}

// A file's value, whichever syntax it came from.
struct Value {
  enum Kind { kString, kInteger, kFloat, kBool, kArray, kTable, kOther } kind = kString;
  std::string text;  // scalars, as the option's token; for kOther, what it is ("a date")
  bool boolean = false;
  std::vector<Value> items;    // kArray
  std::vector<Value> members;  // kTable, in file order, each with its key
  std::string key;             // a member's
  int line = 0;
};

const char* KindName(Value::Kind kind) {
  switch (kind) {
    case Value::kString:
      return "a string";
    case Value::kInteger:
      return "an integer";
    case Value::kFloat:
      return "a number";
    case Value::kBool:
      return "true or false";
    case Value::kArray:
      return "an array";
    case Value::kTable:
      return "a table";
    case Value::kOther:
      return "a value no option takes";
  }
  return "a value";
}

std::string FloatText(double value) {
  char buffer[64];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value);
  return std::string(buffer, result.ptr);
}

class FileError {
 public:
  explicit FileError(std::string path) : path_(std::move(path)) {}
  UsageError At(int line, std::string_view key, const std::string& why) const {
    std::string where = path_ + (line > 0 ? ":" + std::to_string(line) : std::string()) + ": ";
    return UsageError(where + (key.empty() ? "" : std::string(key) + ": ") + why);
  }

 private:
  std::string path_;
};

// ---- TOML ----

Value FromToml(const toml::node& node) {
  Value v;
  v.line = static_cast<int>(node.source().begin.line);
  if (const auto* s = node.as_string()) {
    v.text = s->get();
  } else if (const auto* i = node.as_integer()) {
    v.kind = Value::kInteger;
    v.text = std::to_string(i->get());
  } else if (const auto* f = node.as_floating_point()) {
    v.kind = Value::kFloat;
    v.text = FloatText(f->get());
  } else if (const auto* b = node.as_boolean()) {
    v.kind = Value::kBool;
    v.boolean = b->get();
  } else if (const auto* array = node.as_array()) {
    v.kind = Value::kArray;
    for (const toml::node& item : *array) v.items.push_back(FromToml(item));
  } else if (const auto* table = node.as_table()) {
    v.kind = Value::kTable;
    for (const auto& [key, member] : *table) {
      Value m = FromToml(member);
      m.line = static_cast<int>(key.source().begin.line);
      m.key = std::string(key.str());
      v.members.push_back(std::move(m));
    }
  } else {
    // Dates and times: no option takes one.
    v.kind = Value::kOther;
    v.text = "a date";
  }
  return v;
}

// A VM file's keys nest a level or two; anything deeper is refused before a parser or our
// recursive conversion sees it (30 000 dotted keys, or JSON nested 50 000 deep, overflowed the
// stack).
constexpr int kMaxVmFileDepth = 32;
constexpr std::uint64_t kMaxVmFileBytes = 1 << 20;

// What toml++ is given: the file in ASCII, with the same meaning and the same lines, and an upper
// bound of how deep it nests.
//
// Debian 12's toml++ (3.3.0) asks whether a non-ASCII character is whitespace through a
// generated table with holes: for U+00A1-U+0499, U+2C5E-U+3057 and U+FB26-U+FEFE its switch
// reaches __builtin_unreachable(), undefined behaviour the fuzzer found. So toml++ never sees a
// non-ASCII byte: in a basic string one becomes a \u escape, a literal string is written as the
// basic string it means ('C:\x' as "C:\\x"), a comment's becomes '?', and one anywhere else is a
// syntax error TOML 1.0 already makes it, said here. Bytes that are not UTF-8 are refused.
//
// The depth bound, per line: the current [table] header's depth, the dots of the line's dotted
// keys (every dot outside strings and comments counts, a float's too: an over-estimate is safe)
// and open brackets.
struct AsciiToml {
  std::string text;
  int depth = 0;
  int depth_line = 1;
};

AsciiToml ToAsciiToml(std::string_view text, const FileError& error) {
  enum class In { kCode, kBasic, kLiteral, kMultiBasic, kMultiLiteral, kComment };
  In in = In::kCode;
  AsciiToml out;
  out.text.reserve(text.size());
  int brackets = 0, header = 0, line_dots = 0, line = 1;
  bool line_start = true, in_header = false;
  const auto at = [&](std::size_t i, std::string_view what) {
    return text.substr(i, what.size()) == what;
  };
  // The closing run of a multi-line string: 3 to 5 quotes, all but the last 3 its content.
  const auto close_multi = [&](std::size_t& i, char quote) {
    std::size_t run = 0;
    while (i + run < text.size() && text[i + run] == quote && run < 5) ++run;
    if (run < 3) {
      out.text.append(run, quote);
    } else {
      out.text.append(run - 3, quote);
      out.text += "\"\"\"";
      in = In::kCode;
    }
    i += run;
  };
  std::size_t i = at(0, "\xef\xbb\xbf") ? 3 : 0;  // a byte-order mark, as toml++ skips it
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\n') {
      ++line;
      if (in == In::kComment) in = In::kCode;
      if (in == In::kBasic || in == In::kLiteral) in = In::kCode;  // unterminated: toml++ says so
      line_dots = 0;
      line_start = true;
      in_header = false;
      out.text += c;
      ++i;
      continue;
    }
    if (static_cast<unsigned char>(c) >= 0x80) {
      const std::optional<Utf8Char> u = DecodeUtf8(text, i);
      if (!u) throw error.At(line, "", "not UTF-8 text (a VM file is UTF-8)");
      char escaped[16];
      if (in == In::kComment) {
        out.text += '?';
      } else if (in == In::kCode) {
        std::snprintf(escaped, sizeof(escaped), "U+%04X", static_cast<unsigned>(u->code_point));
        throw error.At(line, "",
                       std::string("syntax error: the character ") + escaped +
                           " outside a string or comment (keys are ASCII or quoted)");
      } else {
        std::snprintf(escaped, sizeof(escaped), u->code_point > 0xffff ? "\\U%08X" : "\\u%04X",
                      static_cast<unsigned>(u->code_point));
        out.text += escaped;
      }
      i += u->length;
      continue;
    }
    switch (in) {
      case In::kComment:
        out.text += c;
        ++i;
        continue;
      case In::kBasic:
      case In::kMultiBasic:
        if (c == '\\' && i + 1 < text.size() && text[i + 1] == '\n') {
          out.text += c;  // a line-ending backslash: the line break is counted above
          ++i;
        } else if (c == '\\' && i + 1 < text.size()) {
          if (static_cast<unsigned char>(text[i + 1]) >= 0x80) {
            throw error.At(line, "",
                           "syntax error: an escape TOML does not know ('\\' before a non-ASCII "
                           "character)");
          }
          out.text.append(text.substr(i, 2));
          i += 2;
        } else if (c == '"' && in == In::kMultiBasic) {
          close_multi(i, '"');
        } else {
          if (c == '"') in = In::kCode;
          out.text += c;
          ++i;
        }
        continue;
      case In::kLiteral:
      case In::kMultiLiteral:
        if (c == '\'' && in == In::kMultiLiteral) {
          close_multi(i, '\'');
          continue;
        }
        if (c == '\'') {
          in = In::kCode;
          out.text += '"';
        } else {
          if (c == '\\' || c == '"') out.text += '\\';
          out.text += c;
        }
        ++i;
        continue;
      case In::kCode:
        break;
    }
    if (at(i, "\"\"\"") || at(i, "'''")) {
      in = c == '"' ? In::kMultiBasic : In::kMultiLiteral;
      out.text += "\"\"\"";
      i += 3;
      continue;
    }
    if (c == '"' || c == '\'') {
      in = c == '"' ? In::kBasic : In::kLiteral;
      out.text += '"';
      ++i;
      continue;
    }
    if (c == '#') {
      in = In::kComment;
    } else if (c == '[' || c == '{') {
      if (line_start && brackets == 0 && c == '[') {
        in_header = true;
        header = 1;
      }
      ++brackets;
    } else if (c == ']' || c == '}') {
      brackets = std::max(0, brackets - 1);
    } else if (c == '.') {
      ++line_dots;
      if (in_header) ++header;
    }
    if (c != ' ' && c != '\t') line_start = false;
    if (const int depth = header + line_dots + brackets; depth > out.depth) {
      out.depth = depth;
      out.depth_line = line;
    }
    out.text += c;
    ++i;
  }
  return out;
}

Value ParseToml(const std::string& text, const FileError& error) {
  const AsciiToml ascii = ToAsciiToml(text, error);
  if (ascii.depth > kMaxVmFileDepth) {
    throw error.At(ascii.depth_line, "",
                   "nested deeper than " + std::to_string(kMaxVmFileDepth) +
                       " levels (tables, dotted keys, arrays)");
  }
  try {
    return FromToml(toml::parse(ascii.text));
  } catch (const toml::parse_error& e) {
    throw error.At(static_cast<int>(e.source().begin.line), "",
                   "syntax error: " + std::string(e.description()));
  }
}

// ---- JSON ----

// nlohmann does not keep lines: each key's line is found by reading on from the previous key's
// position (members come in file order with ordered_json).
class JsonLines {
 public:
  explicit JsonLines(const std::string& text) : text_(text) {}
  int LineOf(const std::string& key) {
    const std::string quoted = nlohmann::json(key).dump();
    for (std::size_t at = text_.find(quoted, cursor_); at != std::string::npos;
         at = text_.find(quoted, at + 1)) {
      std::size_t after = at + quoted.size();
      while (after < text_.size() && std::isspace(static_cast<unsigned char>(text_[after]))) {
        ++after;
      }
      if (after < text_.size() && text_[after] == ':') {
        cursor_ = after;
        return LineAt(at);
      }
    }
    return 0;
  }
  int LineAt(std::size_t offset) const {
    return 1 +
           static_cast<int>(std::count(
               text_.begin(),
               text_.begin() + static_cast<std::ptrdiff_t>(std::min(offset, text_.size())), '\n'));
  }

 private:
  const std::string& text_;
  std::size_t cursor_ = 0;
};

Value FromJson(const nlohmann::ordered_json& json, JsonLines& lines, int line) {
  Value v;
  v.line = line;
  switch (json.type()) {
    case nlohmann::ordered_json::value_t::string:
      v.text = json.get<std::string>();
      break;
    case nlohmann::ordered_json::value_t::number_integer:
    case nlohmann::ordered_json::value_t::number_unsigned:
      v.kind = Value::kInteger;
      v.text = json.dump();
      break;
    case nlohmann::ordered_json::value_t::number_float:
      v.kind = Value::kFloat;
      v.text = FloatText(json.get<double>());
      break;
    case nlohmann::ordered_json::value_t::boolean:
      v.kind = Value::kBool;
      v.boolean = json.get<bool>();
      break;
    case nlohmann::ordered_json::value_t::array:
      v.kind = Value::kArray;
      for (const auto& item : json) v.items.push_back(FromJson(item, lines, line));
      break;
    case nlohmann::ordered_json::value_t::object:
      v.kind = Value::kTable;
      for (const auto& [key, member] : json.items()) {
        Value m = FromJson(member, lines, lines.LineOf(key));
        m.key = key;
        v.members.push_back(std::move(m));
      }
      break;
    default:
      v.kind = Value::kOther;
      v.text = "null";
      break;
  }
  return v;
}

Value ParseJson(const std::string& text, const FileError& error) {
  JsonLines lines(text);
  JsonNesting nesting;
  for (std::size_t i = 0; i < text.size(); ++i) {
    nesting.Step(text[i]);
    if (nesting.depth > kMaxVmFileDepth) {
      throw error.At(lines.LineAt(i), "",
                     "nested deeper than " + std::to_string(kMaxVmFileDepth) + " levels");
    }
  }
  nlohmann::ordered_json json;
  try {
    json = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::string why = e.what();
    const std::size_t colon = why.find(": ", why.find("column"));
    if (colon != std::string::npos) why = why.substr(colon + 2);
    throw error.At(lines.LineAt(e.byte == 0 ? 0 : e.byte - 1), "", "syntax error: " + why);
  }
  if (!json.is_object()) throw error.At(1, "", "a VM file is an object of options");
  return FromJson(json, lines, 1);
}

// ---- values to option tokens ----

// A path token made absolute against `base` (a no-op for absolute paths and an empty base).
std::string Absolute(const std::string& path, const fs::path& base) {
  if (path.empty() || path[0] == '/' || base.empty()) return path;
  std::string absolute = (base / path).lexically_normal().string();
  if (absolute.size() > 1 && absolute.back() == '/') absolute.pop_back();  // "dir/.." -> "dir/"
  return absolute;
}

// The token of a path option with its path part made absolute: the whole token, or for disks
// and shares the part before the first single comma (",," is a comma in the name).
std::string AbsoluteToken(std::string_view option, const std::string& token, const fs::path& base) {
  if (!OneOf(option, kPathOptions)) return token;
  if (option == "qemu" && token.find('/') == std::string::npos) return token;
  if (!OneOf(option, kCommaListOptions)) return Absolute(token, base);
  std::size_t end = 0;
  while (end < token.size()) {
    if (token[end] == ',' && end + 1 < token.size() && token[end + 1] == ',') {
      end += 2;
    } else if (token[end] == ',') {
      break;
    } else {
      ++end;
    }
  }
  std::string path;
  for (std::size_t i = 0; i < end; ++i) {
    path += token[i];
    if (token[i] == ',') ++i;  // ",," -> ","
  }
  std::string escaped;
  for (char c : Absolute(path, base)) escaped += c == ',' ? std::string(",,") : std::string(1, c);
  return escaped + token.substr(end);
}

// A disk or share written as a table: {file, format, bus} or {dir, tag, ro}.
std::string TableToken(std::string_view option, std::string_view key, const Value& table,
                       const FileError& error) {
  const bool share = option == "share";
  const std::vector<std::string_view> fields =
      share ? std::vector<std::string_view>{"dir", "tag", "ro"}
            : std::vector<std::string_view>{"file", "format", "bus"};
  std::vector<std::pair<std::string, const Value*>> given;  // in the fields' order
  for (const Value& member : table.members) {
    const std::string& name = member.key;
    if (std::find(fields.begin(), fields.end(), name) == fields.end()) {
      throw error.At(
          member.line, std::string(key) + "." + name,
          std::string("unknown key; valid: ") + (share ? "dir, tag, ro" : "file, format, bus"));
    }
    const bool want_bool = name == "ro";
    if ((member.kind == Value::kBool) != want_bool || member.kind == Value::kArray ||
        member.kind == Value::kTable || member.kind == Value::kOther) {
      throw error.At(member.line, std::string(key) + "." + name,
                     std::string("expected ") + (want_bool ? "true or false" : "a string") +
                         ", not " + KindName(member.kind));
    }
    given.emplace_back(name, &member);
  }
  std::sort(given.begin(), given.end(), [&](const auto& a, const auto& b) {
    return std::find(fields.begin(), fields.end(), a.first) <
           std::find(fields.begin(), fields.end(), b.first);
  });
  const std::string first(fields.front());
  if (given.empty() || given.front().first != first) {
    throw error.At(table.line, key, "a table here needs '" + first + "'");
  }
  std::string token;
  for (char c : given.front().second->text) {
    token += c == ',' ? std::string(",,") : std::string(1, c);
  }
  for (const auto& [name, member] : given) {
    if (name == first) continue;
    if (name == "ro") {
      if (member->boolean) token += ",ro";
    } else {
      token += "," + name + "=" + member->text;
    }
  }
  return token;
}

bool IsRepeatable(const po::option_description& d) {
  return dynamic_cast<const po::typed_value<std::vector<std::string>>*>(d.semantic().get()) !=
         nullptr;
}

bool IsFlag(const po::option_description& d) { return d.semantic()->max_tokens() == 0; }

std::string ValidKeys(const po::options_description& options) {
  std::string valid;
  for (const auto& d : options.options()) {
    if (OneOf(d->long_name(), kNotInFiles)) continue;
    valid += (valid.empty() ? "" : ", ") + d->long_name();
  }
  return valid;
}

std::string ScalarToken(std::string_view key, const Value& value, const FileError& error) {
  if (value.kind == Value::kBool) return value.boolean ? "on" : "off";
  if (value.kind == Value::kArray || value.kind == Value::kTable || value.kind == Value::kOther) {
    throw error.At(value.line, key,
                   "expected a string or a number, not " +
                       (value.kind == Value::kOther ? value.text : KindName(value.kind)));
  }
  return value.text;
}

VmFileEntry EntryFor(const std::string& key, const Value& value,
                     const po::options_description& options, std::string_view subcommand,
                     const fs::path& base, const FileError& error) {
  VmFileEntry entry{key, key, value.line, {}};
  const po::option_description* d =
      OneOf(key, kNotInFiles) ? nullptr : options.find_nothrow(key, false);
  const po::option_description* negated = options.find_nothrow("no-" + key, false);
  if (d == nullptr && (negated == nullptr || !IsFlag(*negated))) {
    throw error.At(value.line, key,
                   "unknown key (not an option of kvmrun " + std::string(subcommand) +
                       "); valid: " + ValidKeys(options));
  }
  if (d == nullptr || IsFlag(*d)) {
    if (value.kind != Value::kBool) {
      throw error.At(value.line, key,
                     std::string("expected true or false, not ") + KindName(value.kind));
    }
    // KEY = true sets --KEY; KEY = false sets --no-KEY where there is one, else nothing.
    if (d != nullptr && value.boolean) return entry;
    if (!value.boolean && negated != nullptr) {
      entry.option = "no-" + key;
      return entry;
    }
    entry.option.clear();  // nothing to set
    return entry;
  }
  const bool table_form = OneOf(key, kCommaListOptions);
  const auto token_of = [&](const Value& v) {
    const std::string token = v.kind == Value::kTable && table_form ? TableToken(key, key, v, error)
                                                                    : ScalarToken(key, v, error);
    return AbsoluteToken(key, token, base);
  };
  if (value.kind == Value::kArray) {
    if (!IsRepeatable(*d)) {
      throw error.At(value.line, key,
                     "expected one value, not an array (--" + key + " is not repeatable)");
    }
    for (const Value& item : value.items) entry.tokens.push_back(token_of(item));
  } else {
    entry.tokens.push_back(token_of(value));
  }
  return entry;
}

// A regular file (a FIFO is refused before anything blocks on it) of at most kMaxVmFileBytes.
std::string ReadVmFileText(const std::string& path) {
  try {
    return ReadRegularFile(path, kMaxVmFileBytes, FinalLink::kFollow);
  } catch (const CannotOpenFile& e) {
    throw UsageError("VM file '" + path + "': cannot read it: " + std::strerror(e.error_number()));
  } catch (const UsageError& e) {
    throw UsageError("VM file '" + path + "': " + e.what());
  }
}

// The option a UsageError is about: its field's flag, or the "--OPTION" its message starts with.
std::string OptionOfError(const UsageError& e) {
  if (!e.field().empty() && e.field()[0] != '$') {
    const std::string flag = FlagFor(e.field());
    return flag.rfind("--", 0) == 0 ? flag.substr(2) : flag;
  }
  const std::string message = e.what();
  if (message.rfind("--", 0) != 0) return "";
  const std::size_t end = message.find_first_of(": =',", 2);
  return message.substr(2, end == std::string::npos ? std::string::npos : end - 2);
}

// The error's text without the option it names first.
std::string DetailOf(const UsageError& e, const std::string& option) {
  if (!e.field().empty()) return e.detail();
  const std::string message = e.what();
  const std::string prefix = "--" + option + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

// TOML's basic string: quotes, backslashes and control characters escaped.
std::string TomlString(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

void AddVmFileOptions(po::options_description& options) {
  // clang-format off
  options.add_options()
      ("vm-file", po::value<std::string>()->value_name("FILE"),
       "read the VM from FILE (TOML, or JSON for a .json name), whose keys are these\n"
       "options: memory = \"2G\", disk = [\"root.qcow2\"], net = true; options given here\n"
       "win over the file's (also: a first word named *.toml or *.json, 'kvmrun run\n"
       "vm.toml'; docs/vm-files.md)")
      ("dump-config", po::value<std::string>()->implicit_value("toml")->value_name("toml|json"),
       "print the effective VM definition (file and options merged) and exit");
  // clang-format on
}

VmFile LoadVmFile(const std::string& path, const po::options_description& options,
                  std::string_view subcommand) {
  const FileError error(path);
  const std::string text = ReadVmFileText(path);
  const bool json = fs::path(path).extension() == ".json";
  const Value root = json ? ParseJson(text, error) : ParseToml(text, error);
  const fs::path base = fs::absolute(fs::path(path)).parent_path();
  VmFile file{path, {}};
  for (const Value& value : root.members) {
    VmFileEntry entry = EntryFor(value.key, value, options, subcommand, base, error);
    if (!entry.option.empty()) file.entries.push_back(std::move(entry));
  }
  return file;
}

VmCommandLine ParseVmCommandLine(const Args& args, const po::options_description& options,
                                 std::string_view subcommand) {
  po::positional_options_description positional;
  positional.add("vm-file", 1);
  VmCommandLine result{Parse(args, options, &positional), {}};
  po::variables_map& vm = result.vm;
  if (!vm.count("vm-file") || vm.count("help")) return result;
  const std::string path = vm["vm-file"].as<std::string>();
  const bool by_option = std::any_of(args.begin(), args.end(), [](const std::string& arg) {
    return arg == "--vm-file" || arg.rfind("--vm-file=", 0) == 0;
  });
  const std::string extension = fs::path(path).extension();
  if (!by_option && extension != ".toml" && extension != ".json") {
    // A word meant for an option ("kvmrun run --os linux vmlinuz") is not read as a file.
    throw UsageError("unexpected argument '" + path +
                     "': a VM file's name ends in .toml or .json (any name: --vm-file FILE); "
                     "every other value belongs to an option (see --help)");
  }
  result.file = LoadVmFile(path, options, subcommand);
  const FileError error(result.file.path);
  std::vector<VmFileEntry> applied;  // what the command line left to the file
  for (VmFileEntry& entry : result.file.entries) {
    // What the command line gave wins, its "no-" form too (--tpm over tpm = false).
    const std::string other =
        entry.option.rfind("no-", 0) == 0 ? entry.option.substr(3) : "no-" + entry.option;
    const auto given = [&](const std::string& name) {
      return vm.count(name) > 0 && !vm[name].defaulted();
    };
    if (given(entry.option) || given(other)) continue;
    po::parsed_options parsed(&options);
    if (entry.tokens.empty()) {
      parsed.options.emplace_back(entry.option, std::vector<std::string>{});
    }
    for (const std::string& token : entry.tokens) {
      parsed.options.emplace_back(entry.option, std::vector<std::string>{token});
    }
    try {
      po::store(parsed, vm);
    } catch (const po::error&) {
      // Boost's own message would name the option as a flag; the token is what was wrong.
      const auto* d = options.find_nothrow(entry.option, false);
      std::string valid = d != nullptr ? d->format_parameter() : "";
      throw error.At(entry.line, entry.key,
                     "invalid value '" + (entry.tokens.empty() ? "" : entry.tokens.front()) +
                         "'; valid: " + valid);
    }
    applied.push_back(std::move(entry));
  }
  result.file.entries = std::move(applied);
  po::notify(vm);
  return result;
}

void RethrowWithFileLocation(const VmCommandLine& command_line) {
  try {
    throw;
  } catch (const UsageError& e) {
    const std::string option = OptionOfError(e);
    if (!option.empty()) {
      for (const VmFileEntry& entry : command_line.file.entries) {
        if (entry.option == option) {
          const FileError error(command_line.file.path);
          throw error.At(entry.line, entry.key, DetailOf(e, option));
        }
      }
    }
    throw;
  }
}

bool DumpConfigIfAsked(const VmCommandLine& command_line, const po::options_description& options,
                       std::ostream& out) {
  const po::variables_map& vm = command_line.vm;
  if (!vm.count("dump-config")) return false;
  const std::string format = vm["dump-config"].as<std::string>();
  if (format != "toml" && format != "json") {
    throw UsageError("--dump-config: invalid value '" + format + "'; valid: toml, json");
  }
  const fs::path cwd = fs::current_path();
  nlohmann::ordered_json json = nlohmann::ordered_json::object();
  std::ostringstream toml;
  toml << "# kvmrun VM definition"
       << (command_line.file.path.empty() ? "" : " (from " + command_line.file.path + ")")
       << "; options left at their default are comments\n";
  for (const auto& d : options.options()) {
    const std::string& key = d->long_name();
    if (OneOf(key, kNotInFiles) || !vm.count(key)) continue;
    const po::variable_value& variable = vm[key];
    const boost::any& any = variable.value();
    std::string toml_value;
    nlohmann::ordered_json json_value;
    if (IsFlag(*d)) {
      toml_value = "true";
      json_value = true;
    } else if (const auto* s = boost::any_cast<std::string>(&any)) {
      const std::string token = AbsoluteToken(key, *s, cwd);
      toml_value = TomlString(token);
      json_value = token;
    } else if (const auto* list = boost::any_cast<std::vector<std::string>>(&any)) {
      toml_value = "[";
      json_value = nlohmann::ordered_json::array();
      for (const std::string& item : *list) {
        const std::string token = AbsoluteToken(key, item, cwd);
        toml_value += (toml_value.size() > 1 ? ", " : "") + TomlString(token);
        json_value.push_back(token);
      }
      toml_value += "]";
    } else if (const auto* i = boost::any_cast<int>(&any)) {
      toml_value = std::to_string(*i);
      json_value = *i;
    } else if (const auto* f = boost::any_cast<double>(&any)) {
      toml_value = FloatText(*f);
      json_value = *f;
    } else {
      continue;
    }
    if (variable.defaulted()) {
      toml << "# " << key << " = " << toml_value << "\n";
    } else {
      toml << key << " = " << toml_value << "\n";
      json[key] = json_value;
    }
  }
  out << (format == "json" ? DumpJson(json, 2) + "\n" : toml.str());
  return true;
}

}  // namespace kvmrun::cli
