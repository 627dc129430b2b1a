// The studio, headless: the worker loads a model off the UI thread, and the
// window draws every panel under Xvfb and saves a screenshot that is not blank.
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

TEST(StudioWindow, DrawsEveryPanelAndSavesAScreenshot) {
  if (std::getenv("DISPLAY") == nullptr) GTEST_SKIP() << "no DISPLAY: run under xvfb-run (ctest does)";
  superpose::testing::TempDir temp;
  const fs::path png = temp / "studio.png";
  StudioOptions options;
  options.model_dir = fs::path(SUPERPOSE_FIXTURES) / "gpt2-tiny";
  options.screenshot = png;
  options.frames = 20;
  options.width = 1024;
  options.height = 640;
  ASSERT_EQ(run_studio(options), 0);
  const auto shot = superpose::testing::screenshot_pixels(png);
  ASSERT_TRUE(shot.loaded) << png;
  EXPECT_EQ(shot.width, 1024);
  EXPECT_EQ(shot.height, 640);
  // The background is one colour; panels, text and tables make many others.
  EXPECT_GT(shot.differing, static_cast<size_t>(shot.width * shot.height / 10)) << "screenshot looks blank";
  if (const char* keep = std::getenv("SUPERPOSE_KEEP_SCREENSHOT")) superpose::testing::copy_file(png, keep);
}

}  // namespace
}  // namespace superpose::studio
