// Boot cases without booting: validation, names, and the boot-test command's bad usage.
#include "kvmrun/boot_case.h"

#include <gtest/gtest.h>

#include "kvmrun/error.h"
#include "tests/support/run_command.h"

namespace kvmrun {
namespace {

TEST(ValidateBootCaseTest, RejectsWhatCannotRun) {
  BootCase c;
  c.name = "x";
  c.spec.kernel = "/bin/true";  // a readable file stands in for a kernel
  EXPECT_THROW(ValidateBootCase(c), UsageError) << "no pattern";
  c.expect = "(unclosed";
  try {
    ValidateBootCase(c);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("expect: invalid regular expression '(unclosed'"),
              std::string::npos)
        << e.what();
  }
  c.expect = "ok";
  c.fail = {"[bad"};
  EXPECT_THROW(ValidateBootCase(c), UsageError);
  c.fail = {};
  EXPECT_NO_THROW(ValidateBootCase(c));
  c.spec.kernel.clear();
  EXPECT_THROW(ValidateBootCase(c), UsageError) << "nothing to boot";
}

TEST(BootTestCliTest, BadUsageExitsTwoWithOneLine) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"boot-test", "--kernel", "/bin/true"},
        {"boot-test", "--kernel", "/bin/true", "--expect", "(x"},
        {"boot-test", "--expect", "x"},
        {"boot-test", "--kernel", "/bin/true", "--expect", "x", "--jobs", "0"},
        {"boot-test", "--kernel", "/bin/true", "--expect", "x", "--timeout", "-1"},
        {"boot-test", "--kernel", "/bin/true", "--expect", "x", "--tcg-factor", "0.5"},
        {"boot-test", "--cases", "/nonexistent.json"},
        // Found by the CLI fuzzer: a directory made the JSON reader throw an ios_failure.
        {"boot-test", "--cases", "/"}}) {
    const auto r = testing::RunKvmrun(args);
    EXPECT_EQ(r.exit_code, 2) << args.back() << ": " << r.err;
    EXPECT_EQ(testing::Lines(r.err).size(), 1u) << r.err;
  }
}

TEST(BootCaseNamesTest, UniqueNonEmptyAndSafeAsFileNames) {
  std::vector<BootCase> cases(2);
  cases[0].name = "a";
  cases[1].name = "b";
  EXPECT_NO_THROW(ValidateBootCaseNames(cases));
  cases[1].name = "a";
  EXPECT_THROW(ValidateBootCaseNames(cases), UsageError);
  cases[1].name = "";
  EXPECT_THROW(ValidateBootCaseNames(cases), UsageError);

  EXPECT_EQ(BootCaseFileName("smoke-test_1.2"), "smoke-test_1.2");
  for (const std::string& name :
       std::vector<std::string>{"../../x", "sub/dir", ".hidden", "..", "a b", "name[os=win,q=1]",
                                std::string("nul\0byte", 8), std::string(300, 'x')}) {
    SCOPED_TRACE(name);
    const std::string file = BootCaseFileName(name);
    EXPECT_EQ(file.find('/'), std::string::npos);
    EXPECT_NE(file.front(), '.');
    EXPECT_LE(file.size(), 120u);
    EXPECT_EQ(file.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789._-"),
              std::string::npos);
  }
  // Names that clean up to the same text still get different files.
  EXPECT_NE(BootCaseFileName("sub/dir"), BootCaseFileName("sub_dir"));
  EXPECT_NE(BootCaseFileName("a/b"), BootCaseFileName("a b"));
}

}  // namespace
}  // namespace kvmrun
