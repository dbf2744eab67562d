#include "kvmrun/junit.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/qemu_process.h"
#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

using namespace std::chrono_literals;

// Validates `xml` against the JUnit schema kept with the tests, with xmllint.
testing::CommandResult ValidateJunit(const std::string& xml) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/report.xml";
  std::ofstream(path) << xml;
  return testing::RunCommand({"xmllint", "--noout", "--schema",
                              std::string(KVMRUN_SOURCE_DIR) + "/tests/support/junit.xsd", path});
}

BootCaseResult Result(std::string name, BootOutcome outcome, std::string console) {
  BootCaseResult r;
  r.name = std::move(name);
  r.outcome = outcome;
  r.message = std::string(ToString(outcome)) + " <&> \"quoted\"";
  r.console = std::move(console);
  r.elapsed = 1234ms;
  return r;
}

TEST(JunitXmlTest, ValidAgainstTheSchemaWhateverTheConsoleHolds) {
  const std::string hostile = std::string("ANSI \x1b[31mred\x1b[0m, NUL \0 here, bell \a, ", 36) +
                              "bad UTF-8 \xff\xfe, surrogate \xed\xa0\x80, ]]> CDATA end, " +
                              "<tags> & ampersands, \xc3\xa9t\xc3\xa9 and \xe2\x9c\x93\n";
  const std::vector<BootCaseResult> results = {
      Result("passes[os=linux]", BootOutcome::kPassed, "KVMRUN-GUEST-READY\n"),
      Result("panics", BootOutcome::kPanic, hostile),
      Result("errs \"x\"", BootOutcome::kError, ""),
  };
  const std::string xml =
      JunitXml(results, {"kvmrun boot-test", "2026-11-30T12:00:00", "ci-host-<1>"});
  const auto valid = ValidateJunit(xml);
  EXPECT_EQ(valid.exit_code, 0) << valid.err << "\n" << xml;
  EXPECT_NE(xml.find("tests=\"3\" failures=\"1\" errors=\"1\""), std::string::npos);
  EXPECT_NE(xml.find("<failure message=\"kernel panic &lt;&amp;&gt; &quot;quoted&quot;\" "
                     "type=\"kernel panic\">"),
            std::string::npos);
  EXPECT_NE(xml.find("<error message="), std::string::npos);
  // A matrix's cases are grouped by their base case; the others by the suite.
  EXPECT_NE(xml.find("name=\"passes[os=linux]\" classname=\"kvmrun boot-test.passes\""),
            std::string::npos);
  EXPECT_NE(xml.find("classname=\"kvmrun boot-test\" time"), std::string::npos);
  EXPECT_NE(xml.find("ANSI \\x1b[31mred"), std::string::npos);
  EXPECT_NE(xml.find("NUL \\x00 here"), std::string::npos);
  EXPECT_NE(xml.find("bad UTF-8 \\xff\\xfe"), std::string::npos);
  EXPECT_NE(xml.find("surrogate \\xed\\xa0\\x80"), std::string::npos);
  EXPECT_NE(xml.find("\xc3\xa9t\xc3\xa9 and \xe2\x9c\x93"), std::string::npos)
      << "valid UTF-8 kept";
  EXPECT_NE(xml.find("]]]]><![CDATA[>"), std::string::npos);
  EXPECT_NE(xml.find("time=\"1.234\""), std::string::npos);
  EXPECT_NE(xml.find("timestamp=\"2026-11-30T12:00:00\" hostname=\"ci-host-&lt;1&gt;\""),
            std::string::npos);
}

}  // namespace
}  // namespace kvmrun
