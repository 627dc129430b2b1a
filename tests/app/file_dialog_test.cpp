// File › Open without a window: classifying paths, listing, sorting and
// filtering folders, the folder above, where imports go, and the dialog's
// steps driving a real worker (a superposition, a GPT-2 pair, a .pt import,
// its cancelling and its errors); then the dialog drawn in the studio under Xvfb.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "app/studio/app_state.h"
#include "app/studio/file_dialog.h"
#include "app/studio/panels.h"
#include "app/studio/studio.h"
#include "app/studio/worker.h"
#include "model/file_util.h"
#include "tests/app/script_support.h"
#include "tests/app/worker_wait.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tiny_superposition.h"

namespace fs = std::filesystem;

namespace superpose::studio {
namespace {

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const fs::path kSeed = kFixtures / "superposition" / "seed_1d.pt";
using superpose::testing::wait_idle;

std::vector<std::string> names(const DirListing& listing) {
  std::vector<std::string> out;
  for (const auto& e : listing.entries) out.push_back(e.name);
  return out;
}

TEST(OpenDialogPaths, ClassifiesWhatItCanOpen) {
  superpose::testing::TempDir temp;
  const std::string tiny = superpose::testing::save_tiny_superposition(temp / "tiny");
  temp.make_dir("plain");
  write_file_atomic(temp / "notes.txt", "text");
  write_file_atomic(temp / "UPPER.PT", "not read");
  EXPECT_EQ(classify_path(tiny), PathKind::kSuperposition);
  EXPECT_EQ(classify_path(kFixtures / "gpt2-tiny"), PathKind::kGpt2);
  EXPECT_EQ(classify_path(kSeed), PathKind::kCheckpoint);
  EXPECT_EQ(classify_path(temp / "UPPER.PT"), PathKind::kCheckpoint);  // by name only: contents are the importer's
  EXPECT_EQ(classify_path(temp / "plain"), PathKind::kFolder);
  EXPECT_EQ(classify_path(temp / "notes.txt"), PathKind::kOtherFile);
  EXPECT_EQ(classify_path(temp / "missing"), PathKind::kMissing);
  EXPECT_EQ(classify_path(temp / "notes.txt" / "below"), PathKind::kMissing);
  EXPECT_STREQ(path_kind_name(PathKind::kGpt2), "GPT-2 model");
}

TEST(OpenDialogPaths, ListsFoldersFirstSortedAndFiltered) {
  superpose::testing::TempDir temp;
  for (const char* dir : {"beta", "Alpha", ".hidden_dir"}) temp.make_dir(dir);
  for (const char* file : {"b.txt", "A.pt", "c.json", ".hidden"}) write_file_atomic(temp / file, "12345");
  ::symlink((temp / "gone").c_str(), (temp / "dangling").c_str());

  const DirListing listing = list_directory(temp.path(), false);
  EXPECT_TRUE(listing.error.empty()) << listing.error;
  EXPECT_EQ(names(listing), std::vector<std::string>({"Alpha", "beta", "A.pt", "b.txt", "c.json"}));
  ASSERT_EQ(listing.entries.size(), 5u);
  EXPECT_TRUE(listing.entries[0].folder);
  EXPECT_FALSE(listing.entries[2].folder);
  EXPECT_EQ(listing.entries[2].kind, PathKind::kCheckpoint);
  EXPECT_EQ(listing.entries[3].bytes, 5u);
  EXPECT_EQ(names(list_directory(temp.path(), true)),
            std::vector<std::string>({".hidden_dir", "Alpha", "beta", ".hidden", "A.pt", "b.txt", "c.json"}));

  EXPECT_EQ(filter_entries(listing.entries, ""), std::vector<size_t>({0, 1, 2, 3, 4}));
  EXPECT_EQ(filter_entries(listing.entries, "A"), std::vector<size_t>({0, 1, 2}));  // Alpha, beta, A.pt
  EXPECT_EQ(filter_entries(listing.entries, ".JSON"), std::vector<size_t>({4}));
  EXPECT_TRUE(filter_entries(listing.entries, "zzz").empty());

  const DirListing missing = list_directory(temp / "missing", false);
  EXPECT_TRUE(missing.entries.empty());
  EXPECT_NE(missing.error.find((temp / "missing").string() + ": cannot list"), std::string::npos) << missing.error;
  const DirListing file = list_directory(temp / "b.txt", false);
  EXPECT_NE(file.error.find("b.txt: cannot list"), std::string::npos) << file.error;
}

TEST(OpenDialogPaths, GoesUpAndKnowsWhereImportsGo) {
  EXPECT_EQ(parent_folder("/a/b"), fs::path("/a"));
  EXPECT_EQ(parent_folder("/a/b/"), fs::path("/a"));
  EXPECT_EQ(parent_folder("/a/./b/../c"), fs::path("/a"));
  EXPECT_EQ(parent_folder("/a"), fs::path("/"));
  EXPECT_EQ(parent_folder("/"), fs::path("/"));
  EXPECT_EQ(parent_folder("a"), fs::path("."));
  EXPECT_EQ(parent_folder("."), fs::path(".."));
  EXPECT_EQ(parent_folder(".."), fs::path("../.."));

  EXPECT_EQ(import_cache_root("/xdg", "/home/u"), fs::path("/xdg/superpose-studio/imported"));
  EXPECT_EQ(import_cache_root("relative", "/home/u"), fs::path("/home/u/.cache/superpose-studio/imported"));
  EXPECT_EQ(import_cache_root("", "/home/u"), fs::path("/home/u/.cache/superpose-studio/imported"));
  EXPECT_EQ(import_cache_root(nullptr, nullptr).filename(), fs::path("imported"));
  EXPECT_TRUE(import_cache_root(nullptr, nullptr).is_absolute());
}

// --- the dialog's steps against a worker ------------------------------------------

class OpenDialogSteps : public ::testing::Test {
 protected:
  void SetUp() override {
    state_.device = "cpu";
    show_open_dialog(state_, *worker_.snapshot());
  }
  superpose::testing::TempDir temp_;
  AppState state_;
  Worker worker_;
};

TEST_F(OpenDialogSteps, OpensASuperpositionFolder) {
  const std::string tiny = superpose::testing::save_tiny_superposition(temp_ / "tiny");
  EXPECT_TRUE(state_.open_dialog.open);
  open_dialog_enter(state_, temp_.path());
  ASSERT_EQ(names(state_.open_dialog.listing), std::vector<std::string>({"tiny"}));
  EXPECT_EQ(state_.open_dialog.listing.entries[0].kind, PathKind::kSuperposition);
  EXPECT_TRUE(open_dialog_path(state_, *worker_.snapshot(), worker_, tiny));
  EXPECT_FALSE(state_.open_dialog.open);
  EXPECT_EQ(state_.superposition_dir, tiny);
  const auto s = wait_idle(worker_);
  ASSERT_EQ(s->status, Snapshot::Status::kReady) << s->message;
  EXPECT_EQ(s->superposition->dir, tiny);
  // The next time the dialog opens where it was.
  show_open_dialog(state_, *s);
  EXPECT_EQ(fs::path(state_.open_dialog.dir), temp_.path());
}

TEST_F(OpenDialogSteps, OpensAPairBaseThenFine) {
  open_dialog_enter(state_, kFixtures);
  EXPECT_EQ(fs::path(state_.open_dialog.dir), kFixtures.lexically_normal());
  const fs::path base = kFixtures / "gpt2-tiny", fine = kFixtures / "gpt2-tiny-fine";
  EXPECT_FALSE(open_dialog_path(state_, *worker_.snapshot(), worker_, base));
  EXPECT_EQ(state_.open_dialog.step, OpenDialogUi::Step::kFine);
  EXPECT_EQ(state_.open_dialog.base, base.string());
  // A checkpoint is not a fine expert: an error in the dialog, nothing loaded.
  EXPECT_FALSE(open_dialog_path(state_, *worker_.snapshot(), worker_, kSeed));
  EXPECT_NE(state_.open_dialog.error.find("choose the fine expert's folder"), std::string::npos)
      << state_.open_dialog.error;
  EXPECT_TRUE(open_dialog_path(state_, *worker_.snapshot(), worker_, fine));
  EXPECT_TRUE(state_.open_dialog.error.empty());
  EXPECT_FALSE(state_.open_dialog.open);
  EXPECT_EQ(state_.base_dir, base.string());
  EXPECT_EQ(state_.fine_dir, fine.string());
  EXPECT_TRUE(state_.superposition_dir.empty());
  const auto s = wait_idle(worker_);
  ASSERT_EQ(s->status, Snapshot::Status::kReady) << s->message;
  EXPECT_EQ(s->superposition->convolution, "none");
}

TEST_F(OpenDialogSteps, PlainFoldersAreEnteredAndOtherFilesRefused) {
  temp_.make_dir("inner");
  write_file_atomic(temp_ / "notes.txt", "text");
  EXPECT_FALSE(open_dialog_path(state_, *worker_.snapshot(), worker_, temp_ / "inner"));
  EXPECT_EQ(fs::path(state_.open_dialog.dir), temp_ / "inner");
  EXPECT_TRUE(state_.open_dialog.open);
  EXPECT_FALSE(open_dialog_path(state_, *worker_.snapshot(), worker_, temp_ / "notes.txt"));
  EXPECT_EQ(state_.open_dialog.error,
            (temp_ / "notes.txt").string() + ": not a superposition folder, a GPT-2 model folder or a .pt checkpoint");
  EXPECT_FALSE(open_dialog_path(state_, *worker_.snapshot(), worker_, temp_ / "nothing"));
  EXPECT_EQ(state_.open_dialog.error, (temp_ / "nothing").string() + ": no such file or folder");
  open_dialog_enter(state_, temp_ / "nothing");
  EXPECT_NE(state_.open_dialog.error.find("cannot list"), std::string::npos) << state_.open_dialog.error;
  EXPECT_FALSE(worker_.busy());
  EXPECT_EQ(worker_.snapshot()->status, Snapshot::Status::kEmpty);  // nothing was queued
}

TEST_F(OpenDialogSteps, ImportsACheckpointOverTheLoadedExperts) {
  const std::string tiny = superpose::testing::save_tiny_superposition(temp_ / "tiny");
  worker_.load_superposition(tiny);
  const auto loaded = wait_idle(worker_);
  ASSERT_EQ(loaded->status, Snapshot::Status::kReady) << loaded->message;
  EXPECT_FALSE(open_dialog_path(state_, *loaded, worker_, kSeed));
  OpenDialogUi& ui = state_.open_dialog;
  EXPECT_EQ(ui.step, OpenDialogUi::Step::kImport);
  EXPECT_EQ(ui.checkpoint, kSeed.string());
  EXPECT_EQ(ui.import_base, loaded->superposition->base_dir);  // the experts loaded now
  EXPECT_EQ(ui.import_fine, loaded->superposition->fine_dir);

  // A folder that is not a GPT-2 stays in the dialog; nothing is queued.
  const std::string fine = ui.import_fine;
  ui.import_fine = (temp_ / "tiny").string();
  EXPECT_FALSE(open_dialog_import(state_, worker_, temp_ / "imported"));
  EXPECT_EQ(ui.error, "fine expert: " + ui.import_fine + ": not an HF GPT-2 model folder (no config.json)");
  EXPECT_EQ(ui.import_id, 0u);
  ui.import_fine = fine;

  ASSERT_TRUE(open_dialog_import(state_, worker_, temp_ / "imported"));
  EXPECT_NE(ui.import_id, 0u);
  const auto s = wait_idle(worker_);
  open_dialog_follow(state_, *s);
  ASSERT_TRUE(s->import.has_value());
  EXPECT_TRUE(s->import->finished) << s->import->message;
  EXPECT_EQ(ui.import_id, 0u);
  EXPECT_FALSE(ui.open);
  EXPECT_EQ(state_.superposition_dir, (temp_ / "imported" / "seed_1d").string());
  EXPECT_EQ(s->superposition->dir, state_.superposition_dir);
  EXPECT_FALSE(s->superposition->causal);
  EXPECT_FALSE(state_.app_error);
}

TEST_F(OpenDialogSteps, CancellingAnImportKeepsTheDialogAndTheLoadedSuperposition) {
  const std::string tiny = superpose::testing::save_tiny_superposition(temp_ / "tiny");
  worker_.load_superposition(tiny);
  const auto loaded = wait_idle(worker_);
  ASSERT_EQ(loaded->status, Snapshot::Status::kReady) << loaded->message;
  state_.superposition_dir = tiny;
  open_dialog_path(state_, *loaded, worker_, kSeed);
  OpenDialogUi& ui = state_.open_dialog;
  ASSERT_EQ(ui.step, OpenDialogUi::Step::kImport);

  // An evaluation reading a named pipe holds the worker, so the import is
  // still queued when Cancel is pressed, whatever the threads' timing.
  superpose::testing::DataPipe pipe(temp_ / "data.jsonl");
  ASSERT_TRUE(pipe.ready()) << "cannot make a named pipe in " << temp_.path();
  EvalRequest eval;
  eval.data = pipe.path().string();
  eval.max_documents = 1;
  worker_.run_eval(eval);
  const fs::path root = temp_ / "imported";
  ASSERT_TRUE(open_dialog_import(state_, worker_, root));
  open_dialog_cancel_import(state_, worker_);
  EXPECT_TRUE(ui.cancelling);
  const std::string validation = read_file(default_data_path());
  ASSERT_TRUE(pipe.feed(validation.substr(0, validation.find('\n') + 1)));

  const auto s = wait_idle(worker_);
  open_dialog_follow(state_, *s);
  ASSERT_TRUE(s->import.has_value());
  EXPECT_TRUE(s->import->cancelled);
  EXPECT_FALSE(s->import->finished || s->import->failed) << s->import->message;
  EXPECT_EQ(ui.import_id, 0u);
  EXPECT_FALSE(ui.cancelling);
  EXPECT_TRUE(ui.open);
  EXPECT_EQ(ui.step, OpenDialogUi::Step::kImport);  // to import again
  EXPECT_TRUE(ui.error.empty()) << ui.error;
  EXPECT_EQ(state_.app_message, "Import of " + kSeed.string() + " cancelled");
  EXPECT_EQ(state_.superposition_dir, tiny);
  EXPECT_EQ(s->superposition->dir, tiny);
  EXPECT_EQ(s->errors, 0u) << s->message;
  EXPECT_FALSE(fs::exists(root));  // nothing written, not even the folder
}

TEST_F(OpenDialogSteps, ABadCheckpointShowsOneLineInTheDialog) {
  write_file_atomic(temp_ / "broken.pt", "not a checkpoint");
  EXPECT_FALSE(open_dialog_path(state_, *worker_.snapshot(), worker_, temp_ / "broken.pt"));
  OpenDialogUi& ui = state_.open_dialog;
  EXPECT_TRUE(ui.import_base.empty());  // nothing loaded: no experts to default to
  EXPECT_FALSE(open_dialog_import(state_, worker_, temp_ / "imported"));
  EXPECT_EQ(ui.error, "base expert: choose its folder (an HF GPT-2 model)");
  ui.import_base = superpose::testing::kTinyBase;
  ui.import_fine = superpose::testing::kTinyFine;
  ASSERT_TRUE(open_dialog_import(state_, worker_, temp_ / "imported"));
  const auto s = wait_idle(worker_);
  open_dialog_follow(state_, *s);
  EXPECT_TRUE(ui.open);
  EXPECT_EQ(ui.step, OpenDialogUi::Step::kImport);  // to change the file or the experts
  EXPECT_EQ(ui.error, s->message);
  EXPECT_NE(ui.error.find((temp_ / "broken.pt").string()), std::string::npos) << ui.error;
  EXPECT_NE(ui.error.find("not a torch.save archive"), std::string::npos) << ui.error;
  EXPECT_EQ(ui.error.find('\n'), std::string::npos) << ui.error;
  EXPECT_TRUE(state_.superposition_dir.empty());
}

// --- drawn in the studio --------------------------------------------------------

TEST(OpenDialogWindow, ImportsThroughTheDialogAndDrawsIt) {
  if (std::getenv("DISPLAY") == nullptr) GTEST_SKIP() << "no DISPLAY: run under xvfb-run (ctest does)";
  superpose::testing::TempDir temp;
  const std::string tiny = superpose::testing::save_tiny_superposition(temp / "tiny");
  const fs::path png = temp / "open.png";
  ::setenv("XDG_CACHE_HOME", (temp / "cache").c_str(), 1);  // where the dialog's import goes
  int phase = 0;
  superpose::testing::ScriptChecks check;
  StudioOptions options = superpose::testing::scripted_studio(tiny, png);
  options.script = [&](ScriptFrame& f) {
    if (f.frame > 20000) return check(false, "timed out in phase " + std::to_string(phase));
    if (f.worker.busy()) return true;
    const auto latest = f.worker.snapshot();
    OpenDialogUi& ui = f.state.open_dialog;
    switch (phase) {
      case 0:  // loaded: open the dialog on the seeds and choose the 1D one
        if (!latest->superposition) return check(latest->status != Snapshot::Status::kFailed, latest->message);
        show_open_dialog(f.state, *latest);
        check(ui.open, "the dialog did not open");
        open_dialog_enter(f.state, kSeed.parent_path());
        open_dialog_path(f.state, *latest, f.worker, kSeed);
        check(ui.step == OpenDialogUi::Step::kImport, "a .pt did not lead to the import step");
        phase = 1;
        return true;
      case 1:  // drawn once in the import step: import (into $XDG_CACHE_HOME)
        check(open_dialog_import(f.state, f.worker), "import refused: " + ui.error);
        phase = 2;
        return true;
      case 2:  // the panel followed the import, closed and recorded the folder
        if (ui.import_id != 0) return true;
        check(!ui.open && ui.error.empty(), "the import failed: " + ui.error);
        check(f.state.superposition_dir == (temp / "cache/superpose-studio/imported/seed_1d").string(),
              "imported into " + f.state.superposition_dir);
        check(latest->superposition && latest->superposition->dir == f.state.superposition_dir, "not loaded");
        // For the picture: the dialog again, the 2D seed chosen, its experts
        // defaulting to those of the superposition just imported.
        show_open_dialog(f.state, *latest);
        open_dialog_path(f.state, *latest, f.worker, kSeed.parent_path() / "seed_2d.pt");
        check(ui.import_base == latest->superposition->base_dir, "the experts did not default to the loaded ones");
        for (size_t i = 0; i < ui.listing.entries.size(); ++i) {
          if (ui.listing.entries[i].name == "seed_2d.pt") ui.selected = static_cast<int>(i);
        }
        phase = 3;
        return false;
    }
    return false;
  };
  ASSERT_EQ(run_studio(options), 0);
  ::unsetenv("XDG_CACHE_HOME");
  check.report();
  EXPECT_EQ(phase, 3);
  EXPECT_TRUE(superpose::testing::screenshot_pixels(png).loaded) << png;
  if (const char* keep = std::getenv("SUPERPOSE_KEEP_SCREENSHOT")) superpose::testing::copy_file(png, keep);
}

}  // namespace
}  // namespace superpose::studio
