// JUnit XML for boot-case results. Pure: the time and host name come from the caller.
#include "kvmrun/junit.h"

#include <cstdint>
#include <cstdio>

#include "core/safe_text.h"

namespace kvmrun {

namespace {

std::string XmlSafe(std::string_view text) { return SafeText(text, KeepLayout::kXml); }

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
    // A matrix's cases ("smoke[os=linux]") are grouped by their base case.
    const std::size_t axes = r.name.find('[');
    const std::string classname =
        axes == std::string::npos ? suite_name : suite_name + "." + r.name.substr(0, axes);
    xml += "    <testcase name=\"" + Attribute(r.name) + "\" classname=\"" + Attribute(classname) +
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
