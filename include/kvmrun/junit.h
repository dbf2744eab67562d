// Boot-case results as a JUnit XML report (the Ant/Jenkins format: testsuites > testsuite >
// testcase, failure or error, system-out with the console), safe for any console bytes.
// Pure: everything that varies (the time, the host) is given.
#ifndef KVMRUN_JUNIT_H_
#define KVMRUN_JUNIT_H_

#include <string>
#include <vector>

#include "kvmrun/boot_case.h"

namespace kvmrun {

struct JunitReport {
  std::string suite_name = "kvmrun";  // the CLI names it after its command
  std::string timestamp;              // when the run began, ISO 8601 in UTC: "2026-11-30T12:00:00"
  std::string hostname;
};

std::string JunitXml(const std::vector<BootCaseResult>& results, const JunitReport& report);

}  // namespace kvmrun

#endif  // KVMRUN_JUNIT_H_
