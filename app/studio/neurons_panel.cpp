// Neurons panel: a layer × neuron heat map of one statistic for one model (or
// superposition − base), the polysemantic share per layer at a threshold, and
// a clicked neuron's top contexts and activation histogram.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <string>
#include <vector>

#include <imgui.h>

#include "analysis/figure.h"
#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

constexpr const char* kDifference = "superposition - base";

ImU32 map_colour(ColourMap map, double t) {
  const Rgb c = colour_map(map, t);
  return IM_COL32(static_cast<int>(c.r * 255.0), static_cast<int>(c.g * 255.0), static_cast<int>(c.b * 255.0), 255);
}

// The map shown: one model's, or the difference of two (empty when absent).
std::vector<float> shown_map(const NeuronMaps& maps, const NeuronUi& ui) {
  const auto statistic = maps.maps.find(ui.statistic);
  if (statistic == maps.maps.end()) return {};
  const auto& per_model = statistic->second;
  if (ui.model == kDifference) {
    const auto s = per_model.find("superposition"), b = per_model.find("base");
    if (s == per_model.end() || b == per_model.end() || s->second.size() != b->second.size()) return {};
    std::vector<float> out(s->second.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = s->second[i] - b->second[i];
    return out;
  }
  const auto m = per_model.find(ui.model);
  return m == per_model.end() ? std::vector<float>() : m->second;
}

}  // namespace

void NeuronsPanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.neurons) return;
  if (!ImGui::Begin("Neurons", &state.panels.neurons)) {
    ImGui::End();
    return;
  }
  NeuronUi& ui = state.neurons;
  int docs = static_cast<int>(ui.request.max_documents);
  ImGui::SetNextItemWidth(90.0f);
  if (ImGui::InputInt("docs/domain", &docs)) ui.request.max_documents = std::max(0, docs);
  ImGui::SameLine();
  ImGui::Checkbox("diversity", &ui.request.diversity);
  ImGui::SetNextItemWidth(-110.0f);
  input_text("data##neurons", ui.request.data);
  ImGui::SameLine();
  ImGui::BeginDisabled(!snapshot.superposition || snapshot.job.has_value());
  if (ImGui::Button("Compute")) worker.compute_neurons(ui.request);
  ImGui::EndDisabled();
  if (!snapshot.neurons) {
    ImGui::TextDisabled("Compute captures every residual state of the three models over the data.");
    ImGui::End();
    return;
  }
  const NeuronMaps& maps = *snapshot.neurons;
  ImGui::Text("%lld tokens, %zu layers × %lld neurons", static_cast<long long>(maps.rows), maps.layers.size(),
              static_cast<long long>(maps.neurons));
  if (!maps.causal) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1.0f, 0.6f, 0.2f, 1.0f), "non-causal");
  }

  ImGui::SetNextItemWidth(200.0f);
  if (ImGui::BeginCombo("statistic", ui.statistic.c_str())) {
    for (const auto& [name, per_model] : maps.maps) {
      if (ImGui::Selectable(name.c_str(), name == ui.statistic)) ui.statistic = name;
    }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(200.0f);
  if (ImGui::BeginCombo("model##neurons", ui.model.c_str())) {
    std::vector<std::string> choices = maps.models;
    choices.push_back(kDifference);
    for (const auto& name : choices) {
      if (ImGui::Selectable(name.c_str(), name == ui.model)) ui.model = name;
    }
    ImGui::EndCombo();
  }
  ImGui::SetNextItemWidth(200.0f);
  ImGui::SliderFloat("polysemantic threshold", &ui.threshold, 0.0f, 0.5f, "%.3f");

  // Polysemantic share per layer of the chosen model (the difference view: the superposition's).
  const std::string share_model = ui.model == kDifference ? "superposition" : ui.model;
  const auto nd = maps.maps.find("normalized difference");
  if (nd != maps.maps.end() && nd->second.count(share_model) != 0 && maps.neurons > 0) {
    const std::vector<float>& values = nd->second.at(share_model);
    std::vector<float> shares;
    for (size_t j = 0; j < maps.layers.size(); ++j) {
      int64_t below = 0;
      for (int64_t d = 0; d < maps.neurons; ++d) below += values[j * maps.neurons + d] < ui.threshold ? 1 : 0;
      shares.push_back(static_cast<float>(below) / static_cast<float>(maps.neurons));
    }
    ImGui::PlotHistogram("##share", shares.data(), static_cast<int>(shares.size()), 0, nullptr, 0.0f, 1.0f,
                         ImVec2(200.0f, 40.0f));
    ImGui::SameLine();
    std::string line = "polysemantic share (" + share_model + ") per layer:";
    for (size_t j = 0; j < shares.size(); ++j) {
      char cell[32];
      std::snprintf(cell, sizeof(cell), " %lld:%.0f%%", static_cast<long long>(maps.layers[j]), 100.0f * shares[j]);
      line += cell;
    }
    ImGui::TextWrapped("%s", line.c_str());
  }

  // The heat map: one rectangle per (layer, neuron), row 0 at the top.
  const std::vector<float> values = shown_map(maps, ui);
  const auto rows = static_cast<int64_t>(maps.layers.size());
  if (!values.empty() && rows > 0 && maps.neurons > 0) {
    const bool difference = ui.model == kDifference;
    float lo = 0.0f, hi = 0.0f;
    bool first = true;
    for (float v : values) {
      if (!std::isfinite(v)) continue;
      lo = first ? v : std::min(lo, v);
      hi = first ? v : std::max(hi, v);
      first = false;
    }
    if (difference) hi = std::max(std::abs(lo), std::abs(hi)), lo = -hi;
    const float range = std::max(hi - lo, 1e-12f);
    const float label_width = ImGui::CalcTextSize("L00 ").x;
    const ImVec2 avail = ImGui::GetContentRegionAvail();
    const float detail_height = snapshot.neuron_detail ? std::min(220.0f, avail.y * 0.45f) : 0.0f;
    const float width = std::max(64.0f, avail.x - label_width);
    const float height = std::max(48.0f, std::min(avail.y - detail_height - 24.0f, 24.0f * rows));
    const ImVec2 origin = ImGui::GetCursorScreenPos();
    const float cell_w = width / static_cast<float>(maps.neurons), cell_h = height / static_cast<float>(rows);
    ImDrawList* draw = ImGui::GetWindowDrawList();
    const ColourMap colours = difference ? ColourMap::kDiverging : ColourMap::kViridis;
    for (int64_t j = 0; j < rows; ++j) {
      const float y = origin.y + cell_h * j;
      char label[16];
      std::snprintf(label, sizeof(label), "L%lld", static_cast<long long>(maps.layers[j]));
      draw->AddText(ImVec2(origin.x, y + 0.5f * (cell_h - ImGui::GetTextLineHeight())), IM_COL32(220, 220, 220, 255),
                    label);
      for (int64_t d = 0; d < maps.neurons; ++d) {
        const float v = values[j * maps.neurons + d];
        const ImU32 c = std::isfinite(v) ? map_colour(colours, (v - lo) / range) : IM_COL32(128, 128, 128, 255);
        const float x = origin.x + label_width + cell_w * d;
        draw->AddRectFilled(ImVec2(x, y), ImVec2(x + std::max(cell_w, 1.0f), y + cell_h), c);
      }
    }
    ImGui::SetCursorScreenPos(ImVec2(origin.x + label_width, origin.y));
    ImGui::InvisibleButton("##heatmap", ImVec2(width, height));
    if (ImGui::IsItemHovered()) {
      const ImVec2 m = ImGui::GetIO().MousePos;
      const auto d = std::clamp<int64_t>(static_cast<int64_t>((m.x - origin.x - label_width) / cell_w), 0,
                                         maps.neurons - 1);
      const auto j = std::clamp<int64_t>(static_cast<int64_t>((m.y - origin.y) / cell_h), 0, rows - 1);
      ImGui::SetTooltip("state %lld, neuron %lld: %s = %.4g\nclick for top contexts",
                        static_cast<long long>(maps.layers[j]), static_cast<long long>(d), ui.statistic.c_str(),
                        values[j * maps.neurons + d]);
      if (ImGui::IsItemClicked()) worker.neuron_detail(share_model, maps.layers[j], d);
    }
    ImGui::Text("colour: %s from %.3g to %.3g", ui.statistic.c_str(), lo, hi);
  }

  if (snapshot.neuron_detail) {
    const NeuronDetail& n = *snapshot.neuron_detail;
    ImGui::Separator();
    ImGui::Text("%s, state %lld, neuron %lld: activations from %.3g to %.3g", n.model.c_str(),
                static_cast<long long>(n.layer), static_cast<long long>(n.neuron), n.min, n.max);
    ImGui::PlotHistogram("##activations", n.histogram.data(), static_cast<int>(n.histogram.size()), 0, nullptr, 0.0f,
                         FLT_MAX, ImVec2(220.0f, 80.0f));
    ImGui::SameLine();
    if (ImGui::BeginChild("##contexts", ImVec2(0, 80.0f), true)) {
      for (size_t i = 0; i < n.contexts.size(); ++i) {
        const TokenSource& s = n.contexts[i];
        ImGui::PushID(static_cast<int>(i));
        ImGui::Text("%7.3f  %s[%s]%s", n.activations[i], s.before.c_str(), s.token.c_str(), s.after.c_str());
        ImGui::PopID();
      }
    }
    ImGui::EndChild();
  }
  ImGui::End();
}

}  // namespace superpose::studio
