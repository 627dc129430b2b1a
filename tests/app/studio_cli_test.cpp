// superpose-studio run as a user would: each bad argument gives one line on
// stderr and a non-zero exit before any window opens, and --offscreen draws
// and saves a screenshot with no display at all.
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include <gtest/gtest.h>

#include "tests/app/script_support.h"
#include "tests/support/cli_runner.h"

namespace fs = std::filesystem;

namespace {

using StudioCli = superpose::testing::CliTest;

const std::string kTinyModel = (fs::path(SUPERPOSE_FIXTURES) / "gpt2-tiny").string();

TEST_F(StudioCli, BadArgumentsGiveOneLineAndNoScreenshot) {
  const fs::path png = dir_ / "shot.png";
  const std::string shot = png.string();
  expect_clean_failure({"--superposition", (dir_ / "nope").string(), "--screenshot", shot},
                       {"--superposition", "nope", "no such directory"}, png);
  expect_clean_failure({"--base", kTinyModel, "--screenshot", shot}, {"--base", "--fine"}, png);
  expect_clean_failure({"--base", kTinyModel, "--fine", (dir_ / "nope").string(), "--screenshot", shot},
                       {"--fine", "no such directory"}, png);
  expect_clean_failure({(dir_ / "nope").string(), "--screenshot", shot}, {"MODEL_DIR", "no such directory"}, png);
  expect_clean_failure({"--session", (dir_ / "absent.json").string(), "--screenshot", shot}, {"absent.json"}, png);
  expect_clean_failure({"--device", "tpu", "--screenshot", shot}, {"--device"}, png);
  expect_clean_failure({"--frames", "0", "--screenshot", shot}, {"--frames"}, png);
  expect_clean_failure({"--screenshot", (dir_ / "no/such/shot.png").string()}, {"--screenshot", "no such directory"});
  expect_clean_failure({"--offscreen", kTinyModel}, {"--offscreen", "--screenshot"});
}

// Offscreen rendering goes through EGL (a GPU's driver, else Mesa), so it
// runs with DISPLAY unset.
TEST_F(StudioCli, OffscreenSavesAScreenshotWithoutADisplay) {
  std::optional<std::string> display;
  if (const char* value = std::getenv("DISPLAY")) display = value;
  unsetenv("DISPLAY");
  const fs::path png = dir_ / "offscreen.png";
  const auto result = run({kTinyModel, "--offscreen", "--device", "cpu", "--frames", "10", "--screenshot", png.string()});
  if (display) setenv("DISPLAY", display->c_str(), 1);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto shot = superpose::testing::screenshot_pixels(png);
  ASSERT_TRUE(shot.loaded) << png;
  EXPECT_EQ(shot.width, 1280);
  EXPECT_EQ(shot.height, 800);
  EXPECT_GT(shot.differing, static_cast<size_t>(shot.width * shot.height / 10)) << "screenshot looks blank";
}

}  // namespace
