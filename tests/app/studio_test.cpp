// The studio, headless: the worker loads a model off the UI thread, the
// window draws every panel under Xvfb and saves a screenshot that is not
// blank, and the offscreen framebuffer (EGL) draws the same picture.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "app/studio/studio.h"
#include "app/studio/worker.h"
#include "tests/app/script_support.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;

namespace superpose::studio {
namespace {

std::shared_ptr<const Snapshot> wait_for(Worker& worker) {
  for (int i = 0; i < 1000 && worker.busy(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(worker.busy());
  return worker.snapshot();
}

TEST(StudioWorker, LoadsTheReferenceModelAndReportsBadDirectories) {
  Worker worker;
  EXPECT_EQ(worker.snapshot()->status, Snapshot::Status::kEmpty);
  worker.load_model(fs::path(SUPERPOSE_FIXTURES) / "gpt2-tiny");
  auto snapshot = wait_for(worker);
  ASSERT_EQ(snapshot->status, Snapshot::Status::kReady) << snapshot->message;
  EXPECT_EQ(snapshot->config.n_layer, 3);
  EXPECT_EQ(snapshot->config.n_embd, 20);
  EXPECT_EQ(snapshot->tensors.size(), 4u + 3u * 12u);
  worker.load_model("/nonexistent/model");
  snapshot = wait_for(worker);
  EXPECT_EQ(snapshot->status, Snapshot::Status::kFailed);
  EXPECT_NE(snapshot->message.find("/nonexistent/model"), std::string::npos) << snapshot->message;
}

// The reference model in the Model and Tensors panels, 1024×640, saved after 20 frames.
StudioOptions model_panels(const fs::path& png) {
  StudioOptions options;
  options.model_dir = fs::path(SUPERPOSE_FIXTURES) / "gpt2-tiny";
  options.screenshot = png;
  options.frames = 20;
  options.width = 1024;
  options.height = 640;
  return options;
}

TEST(StudioWindow, DrawsEveryPanelAndSavesAScreenshot) {
  if (std::getenv("DISPLAY") == nullptr) GTEST_SKIP() << "no DISPLAY: run under xvfb-run (ctest does)";
  superpose::testing::TempDir temp;
  const fs::path png = temp / "studio.png";
  ASSERT_EQ(run_studio(model_panels(png)), 0);
  const auto shot = superpose::testing::screenshot_pixels(png);
  ASSERT_TRUE(shot.loaded) << png;
  EXPECT_EQ(shot.width, 1024);
  EXPECT_EQ(shot.height, 640);
  // The background is one colour; panels, text and tables make many others.
  EXPECT_GT(shot.differing, static_cast<size_t>(shot.width * shot.height / 10)) << "screenshot looks blank";
  if (const char* keep = std::getenv("SUPERPOSE_KEEP_SCREENSHOT")) superpose::testing::copy_file(png, keep);
}

// Offscreen needs no display; where there is one, its picture is the window's:
// the same draw lists rasterised by the same kind of renderer, so at most
// 0.5% of the pixels may differ by more than 8 levels in a channel.
TEST(StudioOffscreen, DrawsWhatTheWindowDraws) {
  superpose::testing::TempDir temp;
  StudioOptions offscreen = model_panels(temp / "offscreen.png");
  offscreen.offscreen = true;
  ASSERT_EQ(run_studio(offscreen), 0);
  const auto shot = superpose::testing::screenshot_pixels(temp / "offscreen.png");
  ASSERT_TRUE(shot.loaded);
  EXPECT_EQ(shot.width, 1024);
  EXPECT_EQ(shot.height, 640);
  EXPECT_GT(shot.differing, static_cast<size_t>(shot.width * shot.height / 10)) << "offscreen picture looks blank";
  if (std::getenv("DISPLAY") == nullptr) GTEST_SKIP() << "no DISPLAY to compare with: run under xvfb-run";
  ASSERT_EQ(run_studio(model_panels(temp / "window.png")), 0);
  const double differing = superpose::testing::fraction_of_pixels_apart(temp / "offscreen.png", temp / "window.png", 8);
  EXPECT_LE(differing, 0.005) << "the offscreen picture is not the window's";
}

}  // namespace
}  // namespace superpose::studio
