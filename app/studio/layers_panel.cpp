// Layers panel: per-layer α, autoencoder, distances and the logit lens of one position.
#include <algorithm>
#include <string>

#include <imgui.h>

#include "app/studio/alpha_export.h"
#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

void layer_table(const Snapshot& snapshot) {
  const SuperpositionInfo& info = *snapshot.superposition;
  const std::vector<float> alpha = alpha_per_layer(info.alpha_in_force, info.alpha_shape);
  const SequenceAnalysis* analysis = snapshot.analysis ? &*snapshot.analysis : nullptr;
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_Borders | ImGuiTableFlags_ScrollY;
  const float height = ImGui::GetTextLineHeightWithSpacing() * static_cast<float>(std::min<int64_t>(info.n_layer, 12) + 2);
  if (!ImGui::BeginTable("per_layer", 7, flags, ImVec2(0, height))) return;
  ImGui::TableSetupScrollFreeze(0, 1);
  for (const char* name : {"layer", "α", "AE", "L2 to base", "L2 to fine", "L2 base-fine", "reconstruction"}) {
    ImGui::TableSetupColumn(name);
  }
  ImGui::TableHeadersRow();
  ImGuiListClipper clipper;
  clipper.Begin(static_cast<int>(info.n_layer));
  while (clipper.Step()) {
    for (int l = clipper.DisplayStart; l < clipper.DisplayEnd; ++l) {
      const size_t i = static_cast<size_t>(l);
      const LayerAnalysis* row = analysis && i < analysis->layers.size() ? &analysis->layers[i] : nullptr;
      ImGui::PushID(l);
      ImGui::TableNextRow();
      ImGui::TableSetColumnIndex(0);
      ImGui::Text("%d", l);
      ImGui::TableSetColumnIndex(1);
      ImGui::Text("%.3f", row ? row->alpha : (i < alpha.size() ? alpha[i] : 0.0f));
      ImGui::TableSetColumnIndex(2);
      const bool ae = row ? row->autoencoder : (i < info.autoencoder_enabled.size() && info.autoencoder_enabled[i]);
      ImGui::TextUnformatted(ae ? "on" : "off");
      if (row) {
        ImGui::TableSetColumnIndex(3);
        ImGui::Text("%.4g", row->l2_base);
        ImGui::TableSetColumnIndex(4);
        ImGui::Text("%.4g", row->l2_fine);
        ImGui::TableSetColumnIndex(5);
        ImGui::Text("%.4g", row->l2_base_fine);
        ImGui::TableSetColumnIndex(6);
        if (row->autoencoder) {
          ImGui::Text("%.4g", row->reconstruction);
        } else {
          ImGui::TextDisabled("-");
        }
      } else {
        for (int c = 3; c < 7; ++c) {
          ImGui::TableSetColumnIndex(c);
          ImGui::TextDisabled("-");
        }
      }
      ImGui::PopID();
    }
  }
  ImGui::EndTable();
}

void logit_lens(const SequenceAnalysis& analysis) {
  const auto position = static_cast<size_t>(analysis.position);
  ImGui::Text("Logit lens at position %lld: '%s'%s", static_cast<long long>(analysis.position),
              position < analysis.texts.size() ? analysis.texts[position].c_str() : "",
              analysis.causal ? "" : "  (non-causal)");
  if (ImGui::IsItemHovered()) {
    ImGui::SetTooltip("Row i: the base model's final layer norm and head applied to state i\n"
                      "(0: blended embeddings; last: the superposition's own output)");
  }
  const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_Borders | ImGuiTableFlags_ScrollY;
  if (!ImGui::BeginTable("lens", 1 + kTopTokens, flags)) return;
  ImGui::TableSetupScrollFreeze(0, 1);
  ImGui::TableSetupColumn("state");
  for (int k = 0; k < kTopTokens; ++k) ImGui::TableSetupColumn(("top " + std::to_string(k + 1)).c_str());
  ImGui::TableHeadersRow();
  ImGuiListClipper clipper;
  clipper.Begin(static_cast<int>(analysis.lens.size()));
  while (clipper.Step()) {
    for (int r = clipper.DisplayStart; r < clipper.DisplayEnd; ++r) {
      const auto& row = analysis.lens[static_cast<size_t>(r)];
      ImGui::PushID(r);
      ImGui::TableNextRow();
      ImGui::TableSetColumnIndex(0);
      if (r == 0) {
        ImGui::TextUnformatted("embed");
      } else if (r + 1 == static_cast<int>(analysis.lens.size())) {
        ImGui::TextUnformatted("output");
      } else {
        ImGui::Text("after %d", r - 1);
      }
      for (size_t k = 0; k < row.size() && k < static_cast<size_t>(kTopTokens); ++k) {
        ImGui::TableSetColumnIndex(static_cast<int>(k) + 1);
        ImGui::Text("'%s' %.0f%%", row[k].text.c_str(), 100.0f * row[k].prob);
      }
      ImGui::PopID();
    }
  }
  ImGui::EndTable();
}

}  // namespace

void LayersPanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.layers) return;
  if (ImGui::Begin("Layers", &state.panels.layers)) {
    if (!snapshot.superposition) {
      ImGui::TextDisabled("No superposition loaded.");
      ImGui::End();
      return;
    }
    const GenerationState& g = snapshot.generation;
    const int length = static_cast<int>(g.prompt_ids.size() + g.tokens.size());
    ImGui::SetNextItemWidth(160.0f);
    ImGui::SliderInt("position", &state.lens_position, -1, std::max(length - 1, 0),
                     state.lens_position < 0 ? "last" : "%d");
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Position of the logit lens (click a generated token to pick it)");
    ImGui::SameLine();
    ImGui::BeginDisabled(g.id == 0);
    if (ImGui::Button("Analyse")) worker.analyse_sequence(state.lens_position);
    ImGui::EndDisabled();
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) {
      ImGui::SetTooltip("Distances and logit lens for the prompt and the tokens so far, under the α in force now");
    }
    if (snapshot.analysis && snapshot.analysis->generation_id != g.id) {
      ImGui::SameLine();
      ImGui::TextDisabled("(of an earlier sequence)");
    }
    layer_table(snapshot);
    if (snapshot.analysis) {
      logit_lens(*snapshot.analysis);
    } else {
      ImGui::TextDisabled("Press Analyse for distances and the logit lens.");
    }
  }
  ImGui::End();
}

}  // namespace superpose::studio
