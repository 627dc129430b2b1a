// File › Open: the project's own file browser (std::filesystem listing, ImGui
// table) over superposition folders, GPT-2 pairs and notebook checkpoints.
#include "app/studio/file_dialog.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <system_error>
#include <tuple>
#include <utility>

#include <imgui.h>

#include "app/studio/panels.h"
#include "model/superposition_io.h"

namespace fs = std::filesystem;

namespace superpose::studio {
namespace {

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

// Absolute and normalised, without a trailing separator (the root keeps its own).
fs::path clean_folder(const fs::path& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  if (ec) p = dir;
  p = p.lexically_normal();
  if (!p.has_filename() && p != p.root_path()) p = p.parent_path();
  return p;
}

void reset_models_state(AppState& state) {
  state.superposition_dir.clear();
  state.base_dir.clear();
  state.fine_dir.clear();
  state.forget_alpha_edits();
}

LoadSettings load_settings(const AppState& state) {
  LoadSettings load;
  load.device = state.device;
  return load;
}

// What the Open button would act on: the selected entry, else the folder shown.
fs::path open_target(const OpenDialogUi& ui) {
  if (ui.selected >= 0 && ui.selected < static_cast<int>(ui.listing.entries.size())) {
    return fs::path(ui.dir) / ui.listing.entries[static_cast<size_t>(ui.selected)].name;
  }
  return ui.dir;
}

// One line on what Open does with `kind` at this step.
std::string open_hint(const OpenDialogUi& ui, PathKind kind) {
  switch (ui.step) {
    case OpenDialogUi::Step::kBrowse:
      switch (kind) {
        case PathKind::kSuperposition: return "Open loads this superposition.";
        case PathKind::kGpt2: return "Open takes this model as the base expert; the fine one comes next.";
        case PathKind::kCheckpoint: return "Open imports this notebook checkpoint (its experts come next).";
        case PathKind::kFolder: return "Open enters this folder.";
        default: return "Choose a superposition folder, a GPT-2 model folder or a .pt checkpoint.";
      }
    case OpenDialogUi::Step::kFine:
      return kind == PathKind::kGpt2 ? "Open superposes the two experts (α = 0.5, no autoencoders)."
             : kind == PathKind::kFolder ? "Open enters this folder."
                                         : "Choose the fine expert's folder (an HF GPT-2 model).";
    case OpenDialogUi::Step::kImport:
      return "Set the experts the checkpoint was trained over, then Import.";
  }
  return "";
}

}  // namespace

// --- paths without a window ------------------------------------------------------

PathKind classify_path(const fs::path& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) return PathKind::kMissing;
  if (fs::is_directory(status)) {
    if (fs::exists(path / kSuperpositionJson, ec)) return PathKind::kSuperposition;
    if (fs::exists(path / "config.json", ec)) return PathKind::kGpt2;
    return PathKind::kFolder;
  }
  if (lowercase(path.extension().string()) == ".pt") return PathKind::kCheckpoint;
  return PathKind::kOtherFile;
}

const char* path_kind_name(PathKind kind) {
  switch (kind) {
    case PathKind::kMissing: return "missing";
    case PathKind::kSuperposition: return "superposition";
    case PathKind::kGpt2: return "GPT-2 model";
    case PathKind::kCheckpoint: return "checkpoint (.pt)";
    case PathKind::kFolder: return "folder";
    case PathKind::kOtherFile: return "file";
  }
  return "";
}

DirListing list_directory(const fs::path& dir, bool show_hidden) {
  DirListing out;
  out.dir = dir;
  std::error_code ec;
  fs::directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  if (ec) {
    out.error = dir.string() + ": cannot list: " + ec.message();
    return out;
  }
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    DirEntry entry;
    entry.name = path.filename().string();
    if (!show_hidden && !entry.name.empty() && entry.name[0] == '.') continue;
    entry.kind = classify_path(path);
    if (entry.kind == PathKind::kMissing) continue;  // vanished, or a dangling link
    entry.folder = entry.kind == PathKind::kSuperposition || entry.kind == PathKind::kGpt2 ||
                   entry.kind == PathKind::kFolder;
    if (!entry.folder) {
      std::error_code size_error;
      const uintmax_t bytes = fs::file_size(path, size_error);
      entry.bytes = size_error ? 0 : bytes;
    }
    out.entries.push_back(std::move(entry));
  }
  if (ec) out.error = dir.string() + ": listing stopped: " + ec.message();
  std::sort(out.entries.begin(), out.entries.end(), [](const DirEntry& a, const DirEntry& b) {
    if (a.folder != b.folder) return a.folder;
    const std::string la = lowercase(a.name), lb = lowercase(b.name);
    return la != lb ? la < lb : a.name < b.name;
  });
  return out;
}

std::vector<size_t> filter_entries(const std::vector<DirEntry>& entries, const std::string& filter) {
  const std::string needle = lowercase(filter);
  std::vector<size_t> out;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (needle.empty() || lowercase(entries[i].name).find(needle) != std::string::npos) out.push_back(i);
  }
  return out;
}

fs::path parent_folder(const fs::path& dir) {
  fs::path p = dir.lexically_normal();
  if (!p.empty() && !p.has_filename() && p != p.root_path()) p = p.parent_path();  // "a/b/" -> "a/b"
  if (p.empty() || p == ".") return "..";
  if (p == p.root_path()) return p;
  if (p.filename() == "..") return p / "..";
  const fs::path parent = p.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// --- the dialog's commands ---------------------------------------------------------

void show_open_dialog(AppState& state, const Snapshot& snapshot) {
  OpenDialogUi& ui = state.open_dialog;
  ui.open = true;
  ui.step = OpenDialogUi::Step::kBrowse;
  ui.base.clear();
  ui.checkpoint.clear();
  fs::path start = ui.dir;
  if (start.empty() && snapshot.superposition && !snapshot.superposition->dir.empty()) {
    start = parent_folder(clean_folder(snapshot.superposition->dir));
  }
  if (start.empty()) start = ".";
  open_dialog_enter(state, start);
}

void open_dialog_enter(AppState& state, const fs::path& dir) {
  OpenDialogUi& ui = state.open_dialog;
  const fs::path folder = clean_folder(dir);
  ui.dir = folder.string();
  ui.path_input = ui.dir;
  ui.listing = list_directory(folder, ui.show_hidden);
  ui.selected = -1;
  ui.filter.clear();
  ui.error = ui.listing.error;
}

bool open_dialog_path(AppState& state, const Snapshot& snapshot, Worker& worker, const fs::path& path) {
  OpenDialogUi& ui = state.open_dialog;
  ui.error.clear();
  const PathKind kind = classify_path(path);
  const std::string name = path.string();
  if (kind == PathKind::kMissing) {
    ui.error = name + ": no such file or folder";
    return false;
  }
  const bool folder = kind == PathKind::kSuperposition || kind == PathKind::kGpt2 || kind == PathKind::kFolder;
  if (kind == PathKind::kFolder || (folder && ui.step == OpenDialogUi::Step::kImport)) {
    open_dialog_enter(state, path);
    return false;
  }
  switch (ui.step) {
    case OpenDialogUi::Step::kBrowse:
      if (kind == PathKind::kSuperposition) {
        reset_models_state(state);
        state.superposition_dir = name;
        worker.load_superposition(path, load_settings(state));
        ui.open = false;
        return true;
      }
      if (kind == PathKind::kGpt2) {
        ui.base = name;
        ui.step = OpenDialogUi::Step::kFine;
        return false;
      }
      if (kind == PathKind::kCheckpoint) {
        ui.checkpoint = name;
        ui.step = OpenDialogUi::Step::kImport;
        ui.import_base = snapshot.superposition ? snapshot.superposition->base_dir : std::string();
        ui.import_fine = snapshot.superposition ? snapshot.superposition->fine_dir : std::string();
        return false;
      }
      ui.error = name + ": not a superposition folder, a GPT-2 model folder or a .pt checkpoint";
      return false;
    case OpenDialogUi::Step::kFine:
      if (kind != PathKind::kGpt2) {
        ui.error = name + ": is a " + path_kind_name(kind) + "; choose the fine expert's folder (an HF GPT-2 model)";
        return false;
      }
      reset_models_state(state);
      state.base_dir = ui.base;
      state.fine_dir = name;
      worker.load_experts(ui.base, path, load_settings(state));
      ui.open = false;
      ui.step = OpenDialogUi::Step::kBrowse;
      return true;
    case OpenDialogUi::Step::kImport:
      ui.error = name + ": choose the experts' folders here, then Import";
      return false;
  }
  return false;
}

bool open_dialog_import(AppState& state, Worker& worker, const fs::path& out_root) {
  OpenDialogUi& ui = state.open_dialog;
  ui.error.clear();
  for (const auto& [role, dir] : {std::pair<const char*, const std::string*>{"base", &ui.import_base},
                                  std::pair<const char*, const std::string*>{"fine", &ui.import_fine}}) {
    if (dir->empty()) {
      ui.error = std::string(role) + " expert: choose its folder (an HF GPT-2 model)";
      return false;
    }
    if (classify_path(*dir) != PathKind::kGpt2) {
      ui.error = std::string(role) + " expert: " + *dir + ": not an HF GPT-2 model folder (no config.json)";
      return false;
    }
  }
  ImportRequest request;
  request.checkpoint = ui.checkpoint;
  request.base = ui.import_base;
  request.fine = ui.import_fine;
  request.out_root = out_root;
  request.load = load_settings(state);
  ui.import_id = worker.import_seed(request);
  ui.cancelling = false;
  return true;
}

void open_dialog_cancel_import(AppState& state, Worker& worker) {
  OpenDialogUi& ui = state.open_dialog;
  if (ui.import_id == 0) return;
  worker.cancel_import();
  ui.cancelling = true;
}

void open_dialog_follow(AppState& state, const Snapshot& snapshot) {
  OpenDialogUi& ui = state.open_dialog;
  if (ui.import_id == 0 || !snapshot.import || snapshot.import->id != ui.import_id || snapshot.import->running) return;
  const ImportStatus& import = *snapshot.import;
  ui.import_id = 0;
  ui.cancelling = false;
  if (import.cancelled) {
    ui.error.clear();
    ui.open = true;
    state.app_message = "Import of " + import.checkpoint + " cancelled";
    state.app_error = false;
  } else if (import.finished) {
    reset_models_state(state);
    state.superposition_dir = import.out_dir;
    state.app_message = "Imported " + import.checkpoint + " into " + import.out_dir;
    state.app_error = false;
    ui.open = false;
    ui.step = OpenDialogUi::Step::kBrowse;
  } else {
    ui.error = import.message;
    ui.open = true;
  }
}

// --- drawing ------------------------------------------------------------------------

void OpenDialog::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  open_dialog_follow(state, snapshot);
  OpenDialogUi& ui = state.open_dialog;
  if (!ui.open) return;
  const float scale = ImGui::GetFontSize() / 16.0f;
  const ImGuiViewport* viewport = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(viewport->GetCenter(), ImGuiCond_Appearing, ImVec2(0.5f, 0.5f));
  ImGui::SetNextWindowSize(ImVec2(760.0f * scale, 480.0f * scale), ImGuiCond_Appearing);
  ImGui::SetNextWindowBgAlpha(1.0f);  // over the panels, opaque
  if (ImGui::Begin("Open", &ui.open, ImGuiWindowFlags_NoCollapse)) {
    if (ImGui::IsWindowAppearing()) ImGui::SetWindowFocus();
    const bool importing = ui.import_id != 0;

    // What is being opened.
    switch (ui.step) {
      case OpenDialogUi::Step::kBrowse:
        ImGui::TextWrapped("Open a superposition folder, an HF GPT-2 model folder (then its fine-tuned partner) "
                           "or a notebook checkpoint (.pt).");
        break;
      case OpenDialogUi::Step::kFine:
        ImGui::Text("Base expert: %s", ui.base.c_str());
        ImGui::TextUnformatted("Now choose the fine expert's folder.");
        ImGui::SameLine();
        if (ImGui::SmallButton("Back")) {
          ui.step = OpenDialogUi::Step::kBrowse;
          ui.base.clear();
          ui.error.clear();
        }
        break;
      case OpenDialogUi::Step::kImport: {
        ImGui::Text("Import %s", ui.checkpoint.c_str());
        ImGui::SameLine();
        ImGui::BeginDisabled(importing);
        if (ImGui::SmallButton("Back")) {
          ui.step = OpenDialogUi::Step::kBrowse;
          ui.checkpoint.clear();
          ui.error.clear();
        }
        // The experts' fields, and buttons that take the selected (or shown) folder.
        const fs::path target = open_target(ui);
        for (auto [label, button, value] : {std::tuple<const char*, const char*, std::string*>{
                                                "base expert", "Use selected##base", &ui.import_base},
                                            std::tuple<const char*, const char*, std::string*>{
                                                "fine expert", "Use selected##fine", &ui.import_fine}}) {
          ImGui::SetNextItemWidth(-230.0f * scale);
          input_text(label, *value);
          ImGui::SameLine();
          if (ImGui::Button(button)) *value = target.string();
        }
        ImGui::EndDisabled();
        break;
      }
    }
    ImGui::Separator();

    // Where the browser is.
    ImGui::BeginDisabled(importing);
    if (ImGui::Button("Up")) open_dialog_enter(state, parent_folder(ui.dir));
    ImGui::SameLine();
    ImGui::SetNextItemWidth(-50.0f * scale);
    const bool typed = input_text("##path", ui.path_input, ImGuiInputTextFlags_EnterReturnsTrue);
    ImGui::SameLine();
    if ((ImGui::Button("Go") || typed) && !ui.path_input.empty()) {
      open_dialog_path(state, snapshot, worker, ui.path_input);
    }
    ImGui::SetNextItemWidth(220.0f * scale);
    input_text("filter", ui.filter);
    ImGui::SameLine();
    if (ImGui::Checkbox("hidden files", &ui.show_hidden)) open_dialog_enter(state, ui.dir);
    ImGui::SameLine();
    if (ImGui::Button("Refresh")) open_dialog_enter(state, ui.dir);
    ImGui::EndDisabled();

    // The listing; an action on an entry waits until the table is drawn.
    const float footer = ImGui::GetFrameHeightWithSpacing() * 2.0f + ImGui::GetTextLineHeightWithSpacing() * 2.0f;
    const std::vector<size_t> shown = filter_entries(ui.listing.entries, ui.filter);
    int activated = -1;
    const auto flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersOuter |
                       ImGuiTableFlags_Resizable;
    if (ImGui::BeginTable("##entries", 3, flags, ImVec2(0.0f, -footer))) {
      ImGui::TableSetupScrollFreeze(0, 1);
      ImGui::TableSetupColumn("name", ImGuiTableColumnFlags_WidthStretch, 4.0f);
      ImGui::TableSetupColumn("kind", ImGuiTableColumnFlags_WidthStretch, 1.6f);
      ImGui::TableSetupColumn("size", ImGuiTableColumnFlags_WidthStretch, 1.0f);
      ImGui::TableHeadersRow();
      ImGuiListClipper clipper;
      clipper.Begin(static_cast<int>(shown.size()));
      while (clipper.Step()) {
        for (int row = clipper.DisplayStart; row < clipper.DisplayEnd; ++row) {
          const int index = static_cast<int>(shown[static_cast<size_t>(row)]);
          const DirEntry& entry = ui.listing.entries[static_cast<size_t>(index)];
          ImGui::PushID(index);
          ImGui::TableNextRow();
          ImGui::TableSetColumnIndex(0);
          const std::string label = entry.folder ? entry.name + "/" : entry.name;
          const auto selectable_flags = ImGuiSelectableFlags_SpanAllColumns | ImGuiSelectableFlags_AllowDoubleClick;
          if (ImGui::Selectable(label.c_str(), ui.selected == index, selectable_flags) && !importing) {
            ui.selected = index;
            ui.error.clear();
            if (ImGui::IsMouseDoubleClicked(ImGuiMouseButton_Left)) activated = index;
          }
          ImGui::TableSetColumnIndex(1);
          const bool plain = entry.kind == PathKind::kFolder || entry.kind == PathKind::kOtherFile;
          if (plain) {
            ImGui::TextDisabled("%s", path_kind_name(entry.kind));
          } else {
            ImGui::TextUnformatted(path_kind_name(entry.kind));
          }
          ImGui::TableSetColumnIndex(2);
          if (!entry.folder) ImGui::TextUnformatted(size_text(entry.bytes).c_str());
          ImGui::PopID();
        }
      }
      ImGui::EndTable();
    }
    if (activated >= 0) {
      open_dialog_path(state, snapshot, worker,
                       fs::path(ui.dir) / ui.listing.entries[static_cast<size_t>(activated)].name);
    }

    // What Open would do, the error, the import's progress and the buttons.
    if (ui.open) {
      const fs::path target = open_target(ui);
      const PathKind kind = ui.selected >= 0 && ui.selected < static_cast<int>(ui.listing.entries.size())
                                ? ui.listing.entries[static_cast<size_t>(ui.selected)].kind
                                : classify_path(target);
      ImGui::TextDisabled("%s: %s. %s", target.filename().string().c_str(), path_kind_name(kind),
                          open_hint(ui, kind).c_str());
      if (!ui.error.empty()) {
        ImGui::PushTextWrapPos(0.0f);
        ImGui::TextColored(ImVec4(1.0f, 0.45f, 0.35f, 1.0f), "%s", ui.error.c_str());
        ImGui::PopTextWrapPos();
      } else if (importing) {
        const bool started = snapshot.import && snapshot.import->id == ui.import_id;
        const float fraction = started ? static_cast<float>(snapshot.import->fraction) : 0.0f;
        std::string stage = started ? snapshot.import->stage : std::string("waiting for the worker");
        if (ui.cancelling) stage += " (cancelling)";
        ImGui::ProgressBar(fraction, ImVec2(-1.0f, 0.0f), stage.c_str());
      } else {
        ImGui::NewLine();
      }
      ImGui::BeginDisabled(importing);
      if (ui.step == OpenDialogUi::Step::kImport) {
        if (ImGui::Button("Import")) open_dialog_import(state, worker);
        ImGui::SameLine();
        ImGui::TextDisabled("into %s (the %zu most recently used imports are kept)",
                            import_folder(import_cache_root(), ui.checkpoint).string().c_str(), kImportsKept);
      } else if (ImGui::Button("Open")) {
        open_dialog_path(state, snapshot, worker, target);
      }
      ImGui::EndDisabled();
      ImGui::SameLine();
      if (importing) {
        // Ends the import at its next stage; the dialog stays until the worker
        // says so. Once loading has begun the import can only finish.
        const bool loading =
            snapshot.import && snapshot.import->id == ui.import_id && snapshot.import->stage == "loading";
        ImGui::BeginDisabled(ui.cancelling || loading);
        if (ImGui::Button("Cancel")) open_dialog_cancel_import(state, worker);
        ImGui::EndDisabled();
      } else if (ImGui::Button("Cancel")) {
        ui.open = false;
        ui.step = OpenDialogUi::Step::kBrowse;
      }
    }
  }
  ImGui::End();
}

}  // namespace superpose::studio
