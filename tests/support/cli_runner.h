// Runs the superpose program as a user would (SUPERPOSE_CLI), capturing its
// exit status and output, and checks that a bad input fails cleanly.
#pragma once

#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace superpose::testing {

struct CliResult {
  int exit_code = -1;
  std::string out, err;
};

inline std::string shell_quote(const std::string& arg) {
  std::string quoted = "'";
  for (char c : arg) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
}

inline std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// A test with a temporary directory dir_ and the program at hand.
class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = temp_.path(); }

  CliResult run(const std::vector<std::string>& args) {
    std::string command = shell_quote(SUPERPOSE_CLI);
    for (const auto& a : args) command += " " + shell_quote(a);
    command += " >" + shell_quote((dir_ / "stdout").string()) + " 2>" + shell_quote((dir_ / "stderr").string()) +
               " </dev/null";
    const int status = std::system(command.c_str());
    CliResult r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(dir_ / "stdout");
    r.err = slurp(dir_ / "stderr");
    return r;
  }

  // A bad input: non-zero exit, exactly one line on stderr that contains the
  // fragments, and (when given) nothing at `out` (file or directory) and no
  // temporaries beside it.
  void expect_clean_failure(const std::vector<std::string>& args, const std::vector<std::string>& fragments,
                            const std::filesystem::path& out = {}) {
    const auto r = run(args);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_LT(r.exit_code, 128) << "killed by a signal";
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
    for (const auto& f : fragments) {
      EXPECT_NE(r.err.find(f), std::string::npos) << "stderr '" << r.err << "' lacks '" << f << "'";
    }
    if (!out.empty()) {
      EXPECT_FALSE(std::filesystem::exists(out)) << out << " was left behind";
      for (const auto& entry : std::filesystem::directory_iterator(out.parent_path())) {
        EXPECT_EQ(entry.path().filename().string().find(out.filename().string() + "."), std::string::npos)
            << "temporary " << entry.path() << " was left behind";
      }
    }
  }

  TempDir temp_;
  std::filesystem::path dir_;
};

}  // namespace superpose::testing
