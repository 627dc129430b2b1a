// Trajectories panel: mean states per model × domain across layers on one PCA
// plane, the current sequence's token trajectories on the same plane (grey,
// the selected token highlighted), hover, and the figure's export.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <imgui.h>
#include <torch/torch.h>

#include "analysis/figure.h"
#include "analysis/paper_figures.h"
#include "app/studio/alpha_export.h"
#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

ImU32 palette_u32(int index, int alpha = 255) {
  const Rgb c = palette_colour(index);
  return IM_COL32(static_cast<int>(c.r * 255.0), static_cast<int>(c.g * 255.0), static_cast<int>(c.b * 255.0), alpha);
}

// Colour index of each model in the figure's order (first seen = 1: orange, sky blue, ...).
int model_colour(const Trajectories& t, const std::string& model) {
  std::vector<std::string> seen;
  for (const auto& line : t.lines) {
    if (std::find(seen.begin(), seen.end(), line.model) == seen.end()) seen.push_back(line.model);
  }
  const auto at = std::find(seen.begin(), seen.end(), model);
  return static_cast<int>(at - seen.begin()) + 1;
}

void dashed_line(ImDrawList* draw, ImVec2 a, ImVec2 b, ImU32 colour, float thickness) {
  const float dx = b.x - a.x, dy = b.y - a.y, length = std::sqrt(dx * dx + dy * dy);
  constexpr float kDash = 6.0f, kGap = 4.0f;
  for (float s = 0.0f; s < length; s += kDash + kGap) {
    const float e = std::min(length, s + kDash);
    draw->AddLine(ImVec2(a.x + dx * s / length, a.y + dy * s / length),
                  ImVec2(a.x + dx * e / length, a.y + dy * e / length), colour, thickness);
  }
}

// The sequence position whose trajectory is highlighted: the selected
// generated token, else the last one.
int64_t highlighted_position(const AppState& state, const Snapshot& snapshot, int64_t tokens) {
  const GenerationState& g = snapshot.generation;
  if (state.selected_token >= 0 && g.id == (snapshot.trajectories ? snapshot.trajectories->generation_id : 0)) {
    const auto p = static_cast<int64_t>(g.prompt_ids.size()) + state.selected_token;
    if (p < tokens) return p;
  }
  return tokens - 1;
}

// Asks for the token trajectories again when α, the switches or the sequence changed.
void follow(AppState& state, const Snapshot& snapshot, Worker& worker) {
  TrajectoryUi& ui = state.trajectories;
  if (!ui.follow_alpha || !snapshot.trajectories || !snapshot.superposition || snapshot.job || worker.busy()) return;
  const GenerationState& g = snapshot.generation;
  if (g.id == 0 || (g.running && !g.paused)) return;
  const SuperpositionInfo& info = *snapshot.superposition;
  const size_t length = g.prompt_ids.size() + g.tokens.size();
  if (ui.requested_map == snapshot.trajectories->id && ui.requested_alpha == info.alpha_in_force &&
      ui.requested_autoencoders == info.autoencoder_enabled && ui.requested_generation == g.id &&
      ui.requested_length == length) {
    return;
  }
  ui.requested_map = snapshot.trajectories->id;
  ui.requested_alpha = info.alpha_in_force;
  ui.requested_autoencoders = info.autoencoder_enabled;
  ui.requested_generation = g.id;
  ui.requested_length = length;
  worker.compute_token_trajectories();
}

}  // namespace

bool export_trajectories(AppState& state, const Snapshot& snapshot) {
  return report_export(state, [&] {
    if (!snapshot.trajectories || snapshot.trajectories->lines.empty()) {
      throw std::runtime_error("no trajectories to export yet: compute them first");
    }
    const Trajectories& t = *snapshot.trajectories;
    TrajectoryMap map;
    map.layers = t.layers;
    // The figure reads only the variance shares: total 1, components the shares.
    map.pca.total_variance = 1.0;
    map.pca.explained_variance = torch::tensor({t.explained[0], t.explained[1]}, torch::kFloat64);
    const auto S = static_cast<int64_t>(t.layers.size());
    for (const TrajectoryLineData& line : t.lines) {
      TrajectoryLine out;
      out.model = line.model;
      out.domain = line.domain;
      out.label = line.label;
      out.rows = line.rows;
      out.points = torch::tensor(line.points, torch::kFloat32).view({S, 2});
      map.lines.push_back(std::move(out));
    }
    Figure figure = trajectory_figure(map);
    if (!t.causal) mark_non_causal(figure);
    return export_figure(figure, state.trajectories.export_path);
  });
}

void TrajectoriesPanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.trajectories) return;
  if (!ImGui::Begin("Trajectories", &state.panels.trajectories)) {
    ImGui::End();
    return;
  }
  TrajectoryUi& ui = state.trajectories;
  int docs = static_cast<int>(ui.request.max_documents);
  ImGui::SetNextItemWidth(90.0f);
  if (ImGui::InputInt("docs/domain##trajectories", &docs)) ui.request.max_documents = std::max(0, docs);
  ImGui::SameLine();
  ImGui::Checkbox("base##trajectories", &ui.request.base);
  ImGui::SameLine();
  ImGui::Checkbox("fine##trajectories", &ui.request.fine);
  ImGui::SameLine();
  ImGui::Checkbox("superposition##trajectories", &ui.request.superposition);
  ImGui::SetNextItemWidth(-110.0f);
  input_text("data##trajectories", ui.request.data);
  ImGui::SameLine();
  ImGui::BeginDisabled(!snapshot.superposition || snapshot.job.has_value());
  if (ImGui::Button("Compute##trajectories")) worker.compute_trajectories(ui.request);
  ImGui::EndDisabled();
  if (!snapshot.trajectories) {
    ImGui::TextDisabled("Compute captures the mean state of each document at every layer of the chosen models.");
    ImGui::End();
    return;
  }
  const Trajectories& t = *snapshot.trajectories;
  follow(state, snapshot, worker);

  ImGui::Checkbox("Follow α", &ui.follow_alpha);
  ImGui::SameLine();
  ImGui::BeginDisabled(worker.busy());
  if (ImGui::Button("Project sequence")) worker.compute_token_trajectories();
  ImGui::EndDisabled();
  ImGui::SameLine();
  ImGui::SetNextItemWidth(140.0f);
  if (ImGui::BeginCombo("tokens of", ui.token_model.c_str())) {
    std::vector<std::string> choices{"none"};
    for (const auto& tokens : t.tokens) choices.push_back(tokens.model);
    for (const auto& name : choices) {
      if (ImGui::Selectable(name.c_str(), name == ui.token_model)) ui.token_model = name;
    }
    ImGui::EndCombo();
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(140.0f);
  input_text("##trajectories_export", ui.export_path);
  ImGui::SameLine();
  if (ImGui::Button("Export##trajectories")) export_trajectories(state, snapshot);
  ImGui::Text("PC1 %.0f%%, PC2 %.0f%% of variance; %zu lines × %zu layers", 100.0 * t.explained[0],
              100.0 * t.explained[1], t.lines.size(), t.layers.size());
  if (!t.causal) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1.0f, 0.6f, 0.2f, 1.0f), "non-causal");
  }

  const auto S = static_cast<int64_t>(t.layers.size());
  const TokenTrajectoryData* tokens = nullptr;
  for (const auto& candidate : t.tokens) {
    if (candidate.model == ui.token_model) tokens = &candidate;
  }
  const int64_t T = tokens != nullptr && S > 0 ? static_cast<int64_t>(tokens->points.size()) / (S * 2) : 0;

  // Bounds over every drawn point, with a margin.
  float x0 = 1e30f, x1 = -1e30f, y0 = 1e30f, y1 = -1e30f;
  auto extend = [&](const std::vector<float>& points) {
    for (size_t i = 0; i + 1 < points.size(); i += 2) {
      x0 = std::min(x0, points[i]), x1 = std::max(x1, points[i]);
      y0 = std::min(y0, points[i + 1]), y1 = std::max(y1, points[i + 1]);
    }
  };
  for (const auto& line : t.lines) extend(line.points);
  if (tokens != nullptr) extend(tokens->points);
  if (x0 > x1) x0 = -1, x1 = 1, y0 = -1, y1 = 1;
  const float span_x = std::max(x1 - x0, 1e-6f), span_y = std::max(y1 - y0, 1e-6f);

  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const ImVec2 size(std::max(120.0f, avail.x), std::max(120.0f, avail.y - ImGui::GetTextLineHeightWithSpacing()));
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  ImDrawList* draw = ImGui::GetWindowDrawList();
  draw->AddRectFilled(origin, ImVec2(origin.x + size.x, origin.y + size.y), IM_COL32(250, 250, 250, 255));
  constexpr float kMargin = 28.0f;
  auto to_screen = [&](float x, float y) {
    return ImVec2(origin.x + kMargin + (x - x0) / span_x * (size.x - 2 * kMargin),
                  origin.y + size.y - kMargin - (y - y0) / span_y * (size.y - 2 * kMargin));
  };
  draw->PushClipRect(origin, ImVec2(origin.x + size.x, origin.y + size.y), true);

  // Hover: the nearest point within a few pixels.
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  float best = 8.0f * 8.0f;
  std::string hover;
  auto consider = [&](ImVec2 p, const std::string& text) {
    const float d = (p.x - mouse.x) * (p.x - mouse.x) + (p.y - mouse.y) * (p.y - mouse.y);
    if (d < best) best = d, hover = text;
  };

  if (tokens != nullptr && T > 0) {
    const int64_t highlighted = highlighted_position(state, snapshot, T);
    for (int64_t pass = 0; pass < 2; ++pass) {  // grey first, the highlighted token on top
      for (int64_t r = 0; r < T; ++r) {
        const bool hi = r == highlighted;
        if (hi != (pass == 1)) continue;
        const ImU32 colour = hi ? IM_COL32(20, 20, 20, 255) : IM_COL32(150, 150, 150, 110);
        ImVec2 previous;
        for (int64_t j = 0; j < S; ++j) {
          const size_t k = static_cast<size_t>((r * S + j) * 2);
          const ImVec2 p = to_screen(tokens->points[k], tokens->points[k + 1]);
          if (j > 0) draw->AddLine(previous, p, colour, hi ? 2.5f : 1.0f);
          if (hi) draw->AddCircleFilled(p, 3.0f, colour);
          const std::string text = r < static_cast<int64_t>(t.token_texts.size()) ? t.token_texts[r] : "";
          consider(p, tokens->model + ", token " + std::to_string(r) + " '" + text + "', layer " +
                          std::to_string(t.layers[static_cast<size_t>(j)]));
          previous = p;
        }
      }
    }
  }

  for (const TrajectoryLineData& line : t.lines) {
    const ImU32 colour = palette_u32(model_colour(t, line.model));
    ImVec2 previous;
    for (int64_t j = 0; j < S; ++j) {
      const ImVec2 p = to_screen(line.points[static_cast<size_t>(2 * j)], line.points[static_cast<size_t>(2 * j + 1)]);
      if (j > 0) {
        if (line.label == 0) {
          draw->AddLine(previous, p, colour, 2.0f);
        } else {
          dashed_line(draw, previous, p, colour, 2.0f);
        }
      }
      if (line.label == 0) {
        draw->AddCircleFilled(p, 3.5f, colour);
      } else {
        draw->AddRectFilled(ImVec2(p.x - 3.5f, p.y - 3.5f), ImVec2(p.x + 3.5f, p.y + 3.5f), colour);
      }
      if (j == 0 || j == S - 1) {
        draw->AddText(ImVec2(p.x + 5.0f, p.y - ImGui::GetTextLineHeight() * 0.5f), colour,
                      std::to_string(t.layers[static_cast<size_t>(j)]).c_str());
      }
      consider(p, line.model + " · " + line.domain + ", layer " + std::to_string(t.layers[static_cast<size_t>(j)]));
      previous = p;
    }
  }

  // Legend: model colours, domain 0 solid / circles, domain 1 dashed / squares.
  float legend_y = origin.y + 6.0f;
  for (const TrajectoryLineData& line : t.lines) {
    const ImU32 colour = palette_u32(model_colour(t, line.model));
    const ImVec2 a(origin.x + size.x - 190.0f, legend_y + 7.0f), b(a.x + 24.0f, a.y);
    if (line.label == 0) {
      draw->AddLine(a, b, colour, 2.0f);
    } else {
      dashed_line(draw, a, b, colour, 2.0f);
    }
    draw->AddText(ImVec2(b.x + 6.0f, legend_y), IM_COL32(40, 40, 40, 255), (line.model + " · " + line.domain).c_str());
    legend_y += ImGui::GetTextLineHeight();
  }
  draw->PopClipRect();
  ImGui::InvisibleButton("##trajectory_plot", size);
  if (ImGui::IsItemHovered() && !hover.empty()) ImGui::SetTooltip("%s", hover.c_str());
  if (tokens != nullptr && T > 0) {
    ImGui::TextDisabled("grey: %s's states of the %lld tokens of the current sequence under the α in force",
                        tokens->model.c_str(), static_cast<long long>(T));
  } else {
    ImGui::TextDisabled("generate a sequence to see its token trajectories");
  }
  ImGui::End();
}

}  // namespace superpose::studio
