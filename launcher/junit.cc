// JUnit XML for boot-case results. Pure: the time and host name come from the caller.
#include "kvmrun/junit.h"

#include <cstdint>
#include <cstdio>

namespace kvmrun {

namespace {

// Text made safe for XML 1.0: invalid UTF-8 and control characters become \xNN.
std::string XmlSafe(std::string_view text) {
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
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
        escape_byte(c);
      } else {
        out += static_cast<char>(c);
      }
      ++i;
      continue;
    }
    // A well-formed multi-byte sequence of a character XML allows is copied whole; anything
    // else byte by byte.
    const std::size_t length = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    bool ok = length > 0 && c <= 0xf4 && i + length <= text.size();
    std::uint32_t cp = c & (0x7f >> length);
    for (std::size_t k = 1; ok && k < length; ++k) {
      const unsigned char next = static_cast<unsigned char>(text[i + k]);
      ok = (next & 0xc0) == 0x80;
      cp = (cp << 6) | (next & 0x3f);
    }
    const std::uint32_t min = length == 4 ? 0x10000 : length == 3 ? 0x800 : 0x80;
    ok = ok && cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) && cp != 0xfffe &&
         cp != 0xffff;
    if (ok) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      escape_byte(c);
      ++i;
    }
  }
  return out;
}

std::string Attribute(std::string_view text) {
  std::string out;
  for (char c : XmlSafe(text)) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\n':
        out += "&#10;";
        break;
      case '\r':
        out += "&#13;";
        break;
      case '\t':
        out += "&#9;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Cdata(std::string_view text) {
  std::string safe = XmlSafe(text);
  std::string out = "<![CDATA[";
  std::size_t from = 0, at;
  while ((at = safe.find("]]>", from)) != std::string::npos) {
    out.append(safe, from, at + 2 - from);
    out += "]]><![CDATA[";
    from = at + 2;
  }
  out.append(safe, from, std::string::npos);
  return out + "]]>";
}

std::string SecondsAttr(std::chrono::milliseconds ms) {
  char out[32];
  std::snprintf(out, sizeof(out), "%.3f", static_cast<double>(ms.count()) / 1000);
  return out;
}

}  // namespace

std::string JunitXml(const std::vector<BootCaseResult>& results, const JunitReport& report) {
  const std::string& suite_name = report.suite_name;
  std::size_t failures = 0, errors = 0;
  std::chrono::milliseconds total{0};
  for (const BootCaseResult& r : results) {
    failures += !r.passed() && r.outcome != BootOutcome::kError;
    errors += r.outcome == BootOutcome::kError;
    total += r.elapsed;
  }
  const std::string counts = "tests=\"" + std::to_string(results.size()) + "\" failures=\"" +
                             std::to_string(failures) + "\" errors=\"" + std::to_string(errors) +
                             "\"";
  std::string xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  xml += "<testsuites name=\"" + Attribute(suite_name) + "\" " + counts + " time=\"" +
         SecondsAttr(total) + "\">\n";
  xml += "  <testsuite name=\"" + Attribute(suite_name) + "\" " + counts +
         " skipped=\"0\" time=\"" + SecondsAttr(total) + "\" timestamp=\"" +
         Attribute(report.timestamp) + "\" hostname=\"" + Attribute(report.hostname) + "\">\n";
  for (const BootCaseResult& r : results) {
    xml += "    <testcase name=\"" + Attribute(r.name) + "\" classname=\"" + Attribute(suite_name) +
           "\" time=\"" + SecondsAttr(r.elapsed) + "\">\n";
    if (!r.passed()) {
      const std::string tag = r.outcome == BootOutcome::kError ? "error" : "failure";
      xml += "      <" + tag + " message=\"" + Attribute(r.message) + "\" type=\"" +
             Attribute(ToString(r.outcome)) + "\">" + Cdata(r.matched_line) + "</" + tag + ">\n";
    }
    xml += "      <system-out>" + Cdata(r.console) + "</system-out>\n";
    xml += "    </testcase>\n";
  }
  xml += "  </testsuite>\n</testsuites>\n";
  return xml;
}

}  // namespace kvmrun
