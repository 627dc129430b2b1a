// File › Open: a file browser that opens a superposition folder, a pair of
// HF GPT-2 folders (base, then fine) or a notebook checkpoint (.pt, imported
// by the worker). Listing, sorting, filtering and classifying paths need no
// window; the dialog's state is plain data in AppState (OpenDialogUi), and
// the OpenDialog panel (panels.h) draws it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "app/studio/worker.h"  // import_cache_root()

namespace superpose::studio {

struct AppState;

// What a path is to the Open dialog.
enum class PathKind {
  kMissing,        // nothing there, or nothing readable
  kSuperposition,  // a folder holding superposition.json
  kGpt2,           // a folder holding config.json (an HF GPT-2 model)
  kCheckpoint,     // a file ending in .pt (a notebook checkpoint to import)
  kFolder,         // any other folder
  kOtherFile,      // any other file
};

// Looks at the path and, for a folder, at the names of its two marker files
// (superposition.json wins over config.json). Reads no file's contents.
PathKind classify_path(const std::filesystem::path& path);
// "superposition", "GPT-2 model", "checkpoint (.pt)", "folder", "file", "missing".
const char* path_kind_name(PathKind kind);

struct DirEntry {
  std::string name;
  PathKind kind = PathKind::kOtherFile;
  bool folder = false;
  uintmax_t bytes = 0;  // files only
};

struct DirListing {
  std::filesystem::path dir;
  // Folders first, then files; each group by name, case-insensitively
  // (ties by the exact bytes, so the order is total).
  std::vector<DirEntry> entries;
  std::string error;  // one line naming the folder when it cannot be listed (entries then empty)
};

// One level of `dir` (std::filesystem::directory_iterator). Names starting
// with '.' only with show_hidden. Entries that vanish or cannot be examined
// while listing are skipped.
DirListing list_directory(const std::filesystem::path& dir, bool show_hidden);
// Indices of the entries whose name contains `filter`, case-insensitively
// (every entry when the filter is empty), in listing order.
std::vector<size_t> filter_entries(const std::vector<DirEntry>& entries, const std::string& filter);
// The folder above `dir` (lexically, after normalising "a/b/" and "a/./b");
// the root stays the root, a relative single name goes to ".".
std::filesystem::path parent_folder(const std::filesystem::path& dir);

// The dialog: what is being opened and where the browser is.
struct OpenDialogUi {
  enum class Step {
    kBrowse,       // choose a superposition, a GPT-2 folder (the base) or a .pt
    kFine,         // a base was chosen: choose the fine expert's folder
    kImport,       // a .pt was chosen: confirm or change its experts, then import
  };
  bool open = false;  // the window is shown
  Step step = Step::kBrowse;
  std::string dir;         // the folder listed
  std::string path_input;  // the path field (Enter opens or enters what it names)
  std::string filter;      // name filter of the listing
  bool show_hidden = false;
  DirListing listing;      // of `dir`, refreshed when it changes
  int selected = -1;       // index into listing.entries; -1 = none
  std::string base;        // kFine: the base expert chosen
  std::string checkpoint;  // kImport: the .pt to import
  std::string import_base, import_fine;  // kImport: its experts (default: the loaded superposition's)
  uint64_t import_id = 0;  // the worker's import this dialog waits for; 0 = none
  bool cancelling = false;  // Cancel was pressed during that import
  std::string error;       // one line, shown in the dialog
};

// File › Open… / Ctrl+O: shows the dialog at its last folder, else the
// loaded superposition's parent folder, else the working directory.
void show_open_dialog(AppState& state, const Snapshot& snapshot);
// Lists `dir` into the dialog (clearing the selection and filter); a folder
// that cannot be listed leaves the listing empty and sets the error.
void open_dialog_enter(AppState& state, const std::filesystem::path& dir);
// Acts on a path as the Open button does, by kind and step: loads a
// superposition; takes a GPT-2 folder as the base (kBrowse) or loads the pair
// (kFine); moves to kImport for a .pt; enters a plain folder; anything else
// sets the dialog's error. Returns true when it queued a load.
bool open_dialog_path(AppState& state, const Snapshot& snapshot, Worker& worker, const std::filesystem::path& path);
// kImport: checks the experts' folders and queues the worker's import into
// out_root/<checkpoint stem> (replacing an earlier import of that name;
// ImportRequest); errors stay in the dialog.
bool open_dialog_import(AppState& state, Worker& worker, const std::filesystem::path& out_root = import_cache_root());
// The dialog's Cancel while its import runs: asks the worker to cancel it
// (Worker::cancel_import); open_dialog_follow reports the outcome.
void open_dialog_cancel_import(AppState& state, Worker& worker);
// Called every frame: follows the import the dialog started; on success
// records the imported folder as the superposition and closes the dialog, on
// failure shows the worker's message in the dialog; a cancelled import
// leaves the dialog at the import step with the superposition loaded before.
void open_dialog_follow(AppState& state, const Snapshot& snapshot);

}  // namespace superpose::studio
