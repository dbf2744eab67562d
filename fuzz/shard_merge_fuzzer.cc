// libFuzzer target for a shard's directory as `kvmrun report merge` reads it: the input is
// split into results.json and junit.xml (at the first NUL) and written as one shard's files;
// the merge must judge them (problems in its report) and never crash, throw or read outside.
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "kvmrun/boot_report.h"
#include "kvmrun/qmp_codec.h"

namespace {

const std::string& ShardDir() {
  // Never destroyed: the exit handler below still uses it.
  static const std::string& dir = *new std::string([] {
    std::string pattern = "/tmp/kvmrun-merge-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    mkdir((pattern + "/console").c_str(), 0700);
    std::atexit([] {
      for (const char* name : {"/results.json", "/junit.xml", "/console/a.log"}) {
        std::remove((ShardDir() + name).c_str());
      }
      rmdir((ShardDir() + "/console").c_str());
      rmdir(ShardDir().c_str());
    });
    return pattern;
  }());
  return dir;
}

void Write(const std::string& path, std::string_view bytes) {
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) std::abort();
  std::fwrite(bytes.data(), 1, bytes.size(), file);
  std::fclose(file);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t split = input.find('\0');
  Write(ShardDir() + "/results.json", input.substr(0, split));
  Write(ShardDir() + "/junit.xml",
        split == std::string_view::npos ? std::string_view() : input.substr(split + 1));
  Write(ShardDir() + "/console/a.log", "console of a\n");
  const kvmrun::MergedBootReport merged = kvmrun::MergeBootReports({ShardDir()});
  (void)kvmrun::DumpJson(kvmrun::MergedBootReportJson(merged));
  return 0;
}
