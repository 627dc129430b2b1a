// Model panel: choose a model directory and read its configuration.
#include <cstdio>

#include <imgui.h>

#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

void config_row(const char* name, const std::string& value) {
  ImGui::TableNextRow();
  ImGui::TableSetColumnIndex(0);
  ImGui::TextUnformatted(name);
  ImGui::TableSetColumnIndex(1);
  ImGui::TextUnformatted(value.c_str());
}

}  // namespace

void ModelPanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.model) return;
  if (ImGui::Begin("Model", &state.panels.model)) {
    ImGui::SetNextItemWidth(-80.0f);
    const bool entered = input_text("##model_dir", state.model_dir_input, ImGuiInputTextFlags_EnterReturnsTrue);
    ImGui::SameLine();
    if ((ImGui::Button("Load") || entered) && !state.model_dir_input.empty()) worker.load_model(state.model_dir_input);

    switch (snapshot.status) {
      case Snapshot::Status::kEmpty: ImGui::TextDisabled("No model loaded."); break;
      case Snapshot::Status::kLoading: ImGui::Text("Loading %s ...", snapshot.model_dir.c_str()); break;
      case Snapshot::Status::kFailed:
        ImGui::TextColored(ImVec4(1.0f, 0.45f, 0.35f, 1.0f), "%s", snapshot.message.c_str());
        break;
      case Snapshot::Status::kReady: ImGui::Text("%s", snapshot.model_dir.c_str()); break;
    }
    if (snapshot.status == Snapshot::Status::kReady &&
        ImGui::BeginTable("config", 2, ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV)) {
      const GPT2Config& c = snapshot.config;
      config_row("layers (L)", std::to_string(c.n_layer));
      config_row("heads (H)", std::to_string(c.n_head));
      config_row("width (C)", std::to_string(c.n_embd));
      config_row("MLP width", std::to_string(c.mlp_width()));
      config_row("context", std::to_string(c.n_positions));
      config_row("vocabulary (V)", std::to_string(c.vocab_size));
      config_row("activation", c.activation_function);
      char eps[32];
      std::snprintf(eps, sizeof(eps), "%g", c.layer_norm_epsilon);
      config_row("layer-norm eps", eps);
      config_row("scale by 1/sqrt(C/H)", c.scale_attn_weights ? "yes" : "no");
      config_row("scale by 1/(layer+1)", c.scale_attn_by_inverse_layer_idx ? "yes" : "no");
      config_row("head tied to wte", c.tie_word_embeddings ? "yes" : "no");
      config_row("parameters", std::to_string(snapshot.parameters));
      config_row("tokenizer", snapshot.tokenizer_dir.empty() ? "none found" : snapshot.tokenizer_dir);
      ImGui::EndTable();
    }
  }
  ImGui::End();
}

}  // namespace superpose::studio
