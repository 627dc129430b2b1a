// The studio's panels: each draws from AppState and the current Snapshot and
// sends commands to the worker; none keeps model state of its own (the t-SNE
// panel keeps its OpenGL buffers, the status bar its memory sample).
#pragma once

#include <string>
#include <vector>

#include "app/studio/app_state.h"
#include "app/studio/tsne_colouring.h"
#include "app/studio/worker.h"
#include "model/memory.h"

namespace superpose::studio {

// Model directory field, Load button, status line and the loaded config.
struct ModelPanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// The checkpoint's tensors: name, dtype, shape, bytes; filterable.
struct TensorPanel {
  void draw(AppState& state, const Snapshot& snapshot);
};

// Prompt, Generate/Stop/Pause/Step, sampling settings and the streamed
// tokens coloured by the α that produced them, with top-5 tooltips.
struct GeneratePanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// The learned α and α in force over layers, sliders, autoencoder switches,
// Reset, Undo/Redo and Export.
struct AlphaPanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// Per-layer numbers of the analysed sequence and the logit lens.
struct LayersPanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// t-SNE of one or more states (layers): settings, Run/Cancel, the map drawn
// with OpenGL and coloured by model, domain, both or state (zoom, pan, hover,
// lasso), the selected tokens and Export. Owns the GL objects of its plot
// (created on first draw, on the UI thread).
class TsnePanel {
 public:
  TsnePanel() = default;
  ~TsnePanel();  // call release() while the GL context is current
  TsnePanel(const TsnePanel&) = delete;
  TsnePanel& operator=(const TsnePanel&) = delete;
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
  void release();

 private:
  // Draws the map's points in colouring_'s colours (call colouring() first).
  void render_points(const TsneMap& map, const float transform[4], int width, int height, float point_size);
  // The map's colouring, recomputed only when the map's points or `by`
  // change (which also makes render_points() upload the points again).
  const TsneColouring& colouring(const TsneMap& map, TsneColour by);
  unsigned int fbo_ = 0, texture_ = 0, vbo_ = 0, vao_ = 0, program_ = 0;
  int width_ = 0, height_ = 0;
  uint64_t uploaded_version_ = 0;  // the snapshot whose points are in vbo_; 0 = none
  int uploaded_points_ = 0;
  TsneColouring colouring_;
  uint64_t coloured_map_ = 0;
  int64_t coloured_points_ = -1;
  TsneColour coloured_by_ = TsneColour::kModelDomain;
};

// Layer × neuron heat maps, polysemantic share per layer, and a neuron's
// top contexts and histogram.
struct NeuronsPanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// Mean-state trajectories across layers (one line per model × domain) on a
// PCA plane, with the current sequence's token trajectories in grey, hover
// and Export.
struct TrajectoriesPanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// The evaluation table (perplexity with 95% interval, accuracy, JSD, cosine,
// MSE per model × domain), per-layer L2 distances per domain, and Export.
struct MetricsPanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// File › Open (Ctrl+O): browses folders and opens a superposition, a GPT-2
// pair or a notebook checkpoint through the worker's import (file_dialog.h).
struct OpenDialog {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// A strip along the bottom: device, model, causal flag, job with Cancel and
// the last error.
struct StatusBar {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);

 private:
  MemoryUse memory_;          // sampled twice a second
  double memory_time_ = -1.0;  // ImGui time of the sample
};

// Commands shared by buttons, shortcuts and scripts.
void start_generation(AppState& state, Worker& worker);  // Generate (Ctrl+Enter)
// Undo/Redo restore the α and the spline's control points shown with it.
void undo_alpha(AppState& state, const Snapshot& snapshot, Worker& worker);  // Ctrl+Z
void redo_alpha(AppState& state, const Snapshot& snapshot, Worker& worker);  // Ctrl+Y
// The 1D spline's control points the α plot draws now: state.control_edit
// while one is dragged, else spline_controls_in_force (alpha_spline.h). Empty for 2D.
std::vector<float> shown_control_points(const AppState& state, const SuperpositionInfo& info);
// Once per α edit (slider, drag, reset): the α in force and the control
// points shown go to the undo history.
void record_alpha_edit(AppState& state, const SuperpositionInfo& info);
// A drag in the α plot: begin_control_drag records the edit and takes the
// control points shown as the ones to move; drag_control_point moves control
// point state.dragged_control to `value` and sends the spline's α. Ending the
// drag is state.dragged_control = -1.
void begin_control_drag(AppState& state, const SuperpositionInfo& info, int index);
void drag_control_point(AppState& state, const SuperpositionInfo& info, Worker& worker, float value);
// Writes the α figure next to state.export_path; the outcome lands in state.app_message.
bool export_alpha(AppState& state, const Snapshot& snapshot);
// Writes the current t-SNE map to state.tsne.export_path .pdf, .png and .csv.
bool export_tsne(AppState& state, const Snapshot& snapshot);
// Writes the trajectory figure to state.trajectories.export_path .pdf, .png and .csv.
bool export_trajectories(AppState& state, const Snapshot& snapshot);
// Write the perplexity / per-layer L2 figures of the last evaluation to
// state.metrics.export_path + "-perplexity" / "-l2" (.pdf, .png, .csv).
bool export_perplexity(AppState& state, const Snapshot& snapshot);
bool export_l2_distances(AppState& state, const Snapshot& snapshot);
// The points of `map` inside the polygon (x, y pairs in map coordinates).
std::vector<int> points_in_polygon(const TsneMap& map, const std::vector<float>& polygon);

// ImGui::InputText on a std::string (Debian's imgui has no imgui_stdlib).
bool input_text(const char* label, std::string& value, int flags = 0);
bool input_text_multiline(const char* label, std::string& value, float height);

// The colour of a token produced under mean α `alpha` (0 blue … 1 orange).
unsigned int alpha_colour(float alpha);

// A byte count for people: "512 B", "1.5 MiB", "3.2 GiB".
std::string size_text(uint64_t bytes);

}  // namespace superpose::studio
