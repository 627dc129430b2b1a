// Studio sessions: the models, α in force, autoencoder switches, prompt,
// sampling settings and open panels, saved as JSON.
//
// Format (version 1):
//   {"version": 1,
//    "models": {"superposition": DIR, "base": DIR, "fine": DIR, "device": "auto"},
//    "alpha": [L or L·C numbers in [0, 1]] or null (the learned α),
//    "autoencoders": [L booleans] or null (as saved in the checkpoint),
//    "prompt": "...",
//    "sampling": {"max_new_tokens": 50, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
//                 "seed": 0, "greedy": false, "stop_at_eos": true},
//    "generate": {"colour": "alpha"},   (tokens coloured by "alpha" or "expert")
//    "panels": {"generate": true, "alpha": true, "layers": true, "model": false, "tensors": false,
//               "tsne": false, "neurons": false, "trajectories": false, "metrics": false},
//    "tsne": {"layers": [6], "colour": "model-domain", "base": true, "fine": true, "superposition": true,
//             "max_documents": 20, "data": PATH, "perplexity": 30.0, "iterations": 500},
//            ("layers": the states mapped, distinct; "layer": N is read as [N]; "colour":
//             "model-domain", "model", "domain" or "layer")
//    "neurons": {"max_documents": 20, "data": PATH, "diversity": false},
//    "trajectories": {"max_documents": 20, "data": PATH, "base": true, "fine": true,
//                     "superposition": true, "follow_alpha": true},
//    "metrics": {"max_documents": 20, "data": PATH, "models": "base,fine,..."},
//    "alpha_schedule": {"use": false, "segments": [{"from": 0, "alpha": 0.0},
//                                                  {"from": 12, "alpha": [L numbers]}]}}
// A segment's "from" is a token position (>= 0, counting the prompt); its
// "alpha" one number (every layer) or one per layer, in [0, 1].
// "superposition" may be empty when "base" and "fine" name a pair loaded
// without a checkpoint. Missing keys take defaults; unknown keys and wrong
// types are errors.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "app/studio/app_state.h"
#include "app/studio/worker.h"

namespace superpose::studio {

struct Session {
  std::string superposition_dir;
  std::string base_dir, fine_dir;
  std::string device = "auto";
  std::optional<std::vector<float>> alpha;         // absent: the learned α
  std::optional<std::vector<bool>> autoencoders;  // absent: the checkpoint's switches
  std::string prompt;
  GenerationSettings settings;  // pause_after is not saved
  bool colour_by_expert = false;  // the Generate panel's token colouring
  PanelVisibility panels;
  TsneRequest tsne = TsneUi().request;         // the t-SNE panel's settings (chunk is not saved)
  TsneColour tsne_colour = TsneUi().colour;     // what the map's points are coloured by
  NeuronRequest neurons = NeuronUi().request;  // the Neurons panel's settings
  TrajectoryRequest trajectories = TrajectoryUi().request;  // the Trajectories panel's settings
  bool follow_alpha = TrajectoryUi().follow_alpha;
  EvalRequest metrics = MetricsUi().request;  // the Metrics panel's settings (seq_len, batch_size not saved)
  ScheduleUi schedule;  // the Alpha panel's schedule and whether it is used
  bool operator==(const Session& o) const;
  bool operator!=(const Session& o) const { return !(*this == o); }
};

nlohmann::json session_to_json(const Session& session);
// Throws Error("<where>: <key>: <what>") for a malformed description.
Session session_from_json(const nlohmann::json& json, const std::string& where = "session");

// Writes / reads a session file. Errors name the file (one line).
void save_session(const Session& session, const std::filesystem::path& path);
Session load_session(const std::filesystem::path& path);

// What is in force now: the state's models, prompt and panels and the
// snapshot's α (only when overridden) and autoencoder switches.
Session capture_session(const AppState& state, const Snapshot& snapshot);
// Puts the session into the state and queues its loads and α/autoencoder
// commands on the worker (they run in order, after the load).
void apply_session(const Session& session, AppState& state, Worker& worker);

}  // namespace superpose::studio
