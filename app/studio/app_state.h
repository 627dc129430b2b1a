// Everything the studio's frames depend on besides the worker's snapshot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "app/studio/file_dialog.h"
#include "app/studio/worker.h"

namespace superpose::studio {

// Which windows are open. Saved with a session.
struct PanelVisibility {
  bool generate = true;
  bool alpha = true;
  bool layers = true;
  bool model = false;
  bool tensors = false;
  bool tsne = false;
  bool neurons = false;
  bool trajectories = false;
  bool metrics = false;
  bool operator==(const PanelVisibility& o) const {
    return generate == o.generate && alpha == o.alpha && layers == o.layers && model == o.model &&
           tensors == o.tensors && tsne == o.tsne && neurons == o.neurons && trajectories == o.trajectories &&
           metrics == o.metrics;
  }
};

// Undo/redo of α edits: each entry is a whole α (L or L·C values, row-major)
// as it was before an edit, with the 1D spline's control points shown with it
// (K values; empty for 2D or where unknown). Plain data; the Alpha panel sends
// the restored α to the worker with set_alpha_all and draws the restored
// control points again.
struct AlphaHistory {
  struct Entry {
    std::vector<float> alpha;
    std::vector<float> control;
  };
  std::vector<Entry> undo;
  std::vector<Entry> redo;
  static constexpr size_t kLimit = 200;

  // Call once per edit (not per frame of a drag) with the α before it.
  void record(std::vector<float> before, std::vector<float> control = {}) {
    if (undo.size() >= kLimit) undo.erase(undo.begin());
    undo.push_back(Entry{std::move(before), std::move(control)});
    redo.clear();
  }
  // The entry to restore, or one with an empty α when there is nothing to
  // undo; `current` becomes redoable.
  Entry take_undo(Entry current) { return take(undo, redo, std::move(current)); }
  Entry take_redo(Entry current) { return take(redo, undo, std::move(current)); }

 private:
  static Entry take(std::vector<Entry>& from, std::vector<Entry>& to, Entry current) {
    if (from.empty()) return {};
    Entry restored = std::move(from.back());
    from.pop_back();
    to.push_back(std::move(current));
    return restored;
  }
};

// The labeled JSONL set the analysis panels read unless told otherwise.
inline std::string default_data_path() {
#ifdef SUPERPOSE_SOURCE_DIR
  return std::string(SUPERPOSE_SOURCE_DIR) + "/assets/data/validation.jsonl";
#else
  return "assets/data/validation.jsonl";
#endif
}

// The t-SNE panel: the next run's settings, the view and the lasso.
struct TsneUi {
  TsneRequest request = [] {
    TsneRequest r;
    r.data = default_data_path();
    return r;
  }();
  float zoom = 1.0f;               // 1 = the whole map fits
  float pan_x = 0.0f, pan_y = 0.0f;  // in units of the fitted map's half-size
  float point_size = 3.0f;         // pixels
  TsneColour colour = TsneColour::kModelDomain;  // what the points are coloured by
  std::vector<float> lasso;        // polygon being drawn, (x, y) pairs in map coordinates
  std::vector<int> selected;       // points inside the last lasso
  uint64_t selected_map = 0;       // TsneMap::id the selection belongs to
  std::string export_path = "tsne";  // Export writes <path>.pdf, .png and .csv
};

// The Neurons panel: what to compute and which map to show.
struct NeuronUi {
  NeuronRequest request = [] {
    NeuronRequest r;
    r.data = default_data_path();
    return r;
  }();
  std::string statistic = "normalized difference";
  std::string model = "superposition";  // a model, or "superposition - base" (the difference)
  float threshold = 0.05f;              // polysemantic: normalized difference below this
};

// The Trajectories panel: what to capture, which model's token trajectories
// to draw, and whether they follow α.
struct TrajectoryUi {
  TrajectoryRequest request = [] {
    TrajectoryRequest r;
    r.data = default_data_path();
    return r;
  }();
  // Re-project the current sequence after each α, autoencoder or sequence change.
  bool follow_alpha = true;
  std::string token_model = "superposition";  // a model of the map, or "none"
  std::string export_path = "trajectories";   // Export writes <path>.pdf, .png and .csv
  // What the last token projection was asked for (Follow α compares against it).
  std::vector<float> requested_alpha;
  std::vector<bool> requested_autoencoders;
  uint64_t requested_generation = 0;
  size_t requested_length = 0;
  uint64_t requested_map = 0;
};

// The Metrics panel: the evaluation's settings, the model whose per-layer
// distances are plotted, and where figures go.
struct MetricsUi {
  EvalRequest request = [] {
    EvalRequest r;
    r.data = default_data_path();
    return r;
  }();
  std::string l2_model = "superposition";
  std::string export_path = "metrics";  // perplexity: <path>-perplexity.*, L2: <path>-l2.*
};

// The Alpha panel's α schedule over positions: the segments being edited and
// whether generate() uses them (the worker holds the schedule in force).
struct ScheduleUi {
  bool use = false;
  std::vector<ScheduleSegment> segments;  // alpha: 1 value (global) or L (per layer)
};

// Plain UI state: window visibility, inputs, selections. Frames are a
// function of this and the current Snapshot.
struct AppState {
  // --- models --------------------------------------------------------
  std::string model_dir_input;  // the path field of the model panel
  std::string superposition_dir;  // what was asked to load (sessions save these)
  std::string base_dir, fine_dir;  // set for a pair loaded without a checkpoint
  std::string device = "auto";     // "auto", "cpu", "cuda"
  std::string renderer;            // the OpenGL renderer drawing the frames (GL_RENDERER)

  PanelVisibility panels;
  bool show_demo_window = false;
  std::string tensor_filter;  // substring filter for the tensor table

  // --- generation ----------------------------------------------------
  std::string prompt = "The meaning of superposition is";
  GenerationSettings settings;
  int64_t step_tokens = 1;  // tokens per press of Step
  int selected_token = -1;  // index into GenerationState::tokens; -1 = none
  // Tokens coloured by the mean α they were generated under (false) or by the
  // expert their step's distribution is closer to (true); both 0 blue … 1 orange.
  bool colour_by_expert = false;

  // --- α ---------------------------------------------------------------
  AlphaHistory alpha_history;
  float global_alpha = 0.5f;      // the global blend slider
  std::vector<float> alpha_edit;  // slider values while dragging (L values); synced from the snapshot otherwise
  std::string export_path = "alpha";  // Export writes <path>.pdf, .png and .csv
  ScheduleUi schedule;
  // 1D spline control points (K): the ones being dragged in the α plot, else
  // the last ones dragged or restored by Undo/Redo or Reset; empty (or
  // another count) = the learned ones. The plot shows these while dragging,
  // else spline_controls_in_force(info, control_edit) (alpha_spline.h).
  std::vector<float> control_edit;
  int dragged_control = -1;  // index into control_edit while dragging; -1 = none
  // A model replaced: its α edits, undo history and control points go.
  void forget_alpha_edits() {
    alpha_history = {};
    alpha_edit.clear();
    control_edit.clear();
    dragged_control = -1;
  }

  // --- layers ----------------------------------------------------------
  int lens_position = -1;  // position of the logit lens; -1 = the last one

  // --- analysis panels ------------------------------------------------
  TsneUi tsne;
  NeuronUi neurons;
  TrajectoryUi trajectories;
  MetricsUi metrics;

  // --- File › Open ------------------------------------------------------
  OpenDialogUi open_dialog;

  // --- sessions and messages --------------------------------------------
  std::string session_path = "session.json";
  uint64_t errors_seen = 0;  // Snapshot::errors when the user last dismissed the error
  // App-side outcome of the last export/save/open: one line; error when `app_error`.
  std::string app_message;
  bool app_error = false;
};

}  // namespace superpose::studio
