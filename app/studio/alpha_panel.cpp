// Alpha panel: α over layers, per-layer sliders, autoencoder switches, undo/redo and export.
#include <algorithm>
#include <cstdio>

#include <imgui.h>

#include "app/studio/alpha_export.h"
#include "app/studio/alpha_spline.h"
#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

// Learned α (thin grey) and α in force (orange) over layers, on [0, 1].
// 1D: the spline's control points at their Greville abscissae on the layer
// axis (x = l / (L - 1) for layer l): `shown` (white squares where they give
// the α in force, grey where they are only its least-squares fit) or, while
// one is dragged, state.control_edit; dragging one vertically sends
// α = clamp(basis · c + 0.1 b, 0, 1).
void alpha_plot(AppState& state, const SuperpositionInfo& info, Worker& worker, const std::vector<float>& learned,
                const std::vector<float>& in_force, const SplineControls& shown, float height) {
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const ImVec2 size(std::max(ImGui::GetContentRegionAvail().x, 100.0f), height);
  ImGui::InvisibleButton("##alpha_plot", size);
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const float pad = 8.0f;
  const ImVec2 lo(origin.x + pad + 24.0f, origin.y + pad), hi(origin.x + size.x - pad, origin.y + size.y - pad - 14.0f);
  draw->AddRectFilled(origin, ImVec2(origin.x + size.x, origin.y + size.y), IM_COL32(25, 27, 32, 255), 4.0f);
  const ImU32 grid = IM_COL32(70, 70, 80, 255), text = IM_COL32(160, 160, 170, 255);
  for (float v : {0.0f, 0.5f, 1.0f}) {
    const float y = hi.y - v * (hi.y - lo.y);
    draw->AddLine(ImVec2(lo.x, y), ImVec2(hi.x, y), grid);
    char label[8];
    std::snprintf(label, sizeof(label), "%.1f", v);
    draw->AddText(ImVec2(origin.x + 4.0f, y - 7.0f), text, label);
  }
  const size_t n = std::max(learned.size(), in_force.size());
  if (n == 0) return;
  auto point = [&](size_t l, float v) {
    const float x = n == 1 ? (lo.x + hi.x) * 0.5f : lo.x + (hi.x - lo.x) * static_cast<float>(l) / static_cast<float>(n - 1);
    return ImVec2(x, hi.y - std::clamp(v, 0.0f, 1.0f) * (hi.y - lo.y));
  };
  for (size_t l = 0; l < n; l += std::max<size_t>(1, n / 12)) {
    char label[24];
    std::snprintf(label, sizeof(label), "%zu", l);
    draw->AddText(ImVec2(point(l, 0.0f).x - 3.0f, hi.y + 2.0f), text, label);
  }
  for (size_t l = 0; l + 1 < learned.size(); ++l) {
    draw->AddLine(point(l, learned[l]), point(l + 1, learned[l + 1]), IM_COL32(150, 150, 160, 255), 1.0f);
  }
  for (size_t l = 0; l < learned.size(); ++l) draw->AddCircleFilled(point(l, learned[l]), 2.5f, IM_COL32(150, 150, 160, 255));
  for (size_t l = 0; l + 1 < in_force.size(); ++l) {
    draw->AddLine(point(l, in_force[l]), point(l + 1, in_force[l + 1]), IM_COL32(255, 150, 40, 255), 2.0f);
  }
  for (size_t l = 0; l < in_force.size(); ++l) draw->AddCircleFilled(point(l, in_force[l]), 3.5f, alpha_colour(in_force[l]));

  const size_t n_control = static_cast<size_t>(std::max<int64_t>(info.n_control, 0));
  const bool spline = n_control > 0 && shown.points.size() == n_control && info.layer_bias.size() == n && n > 1;
  if (spline) {
    const std::vector<float> xs = greville_abscissae(info.n_control, info.degree);
    auto control_point = [&](size_t j, const std::vector<float>& points) {
      return ImVec2(lo.x + (hi.x - lo.x) * xs[j], hi.y - std::clamp(points[j], 0.0f, 1.0f) * (hi.y - lo.y));
    };
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    if (ImGui::IsItemActivated()) {
      float best = 8.0f * 8.0f;
      int nearest = -1;
      for (size_t j = 0; j < xs.size(); ++j) {
        const ImVec2 c = control_point(j, shown.points);
        const float d2 = (c.x - mouse.x) * (c.x - mouse.x) + (c.y - mouse.y) * (c.y - mouse.y);
        if (d2 <= best) {
          best = d2;
          nearest = static_cast<int>(j);
        }
      }
      if (nearest >= 0) begin_control_drag(state, info, nearest);
    }
    if (!ImGui::IsItemActive()) state.dragged_control = -1;
    const bool dragging = state.dragged_control >= 0 && state.control_edit.size() == n_control;
    if (dragging) drag_control_point(state, info, worker, std::clamp((hi.y - mouse.y) / (hi.y - lo.y), 0.0f, 1.0f));
    const std::vector<float>& points = dragging ? state.control_edit : shown.points;
    for (size_t j = 0; j < xs.size(); ++j) {
      const ImVec2 c = control_point(j, points);
      const bool active = static_cast<int>(j) == state.dragged_control;
      const ImU32 colour = active ? IM_COL32(255, 255, 120, 255)
                           : dragging || shown.exact ? IM_COL32(230, 230, 240, 220)
                                                     : IM_COL32(120, 120, 130, 200);
      draw->AddRect(ImVec2(c.x - 4.0f, c.y - 4.0f), ImVec2(c.x + 4.0f, c.y + 4.0f), colour, 0.0f, 0,
                    active ? 2.0f : 1.0f);
    }
  }
  if (spline && state.dragged_control >= 0 && state.control_edit.size() == n_control) {
    ImGui::SetTooltip("control point %d: %.3f", state.dragged_control,
                      state.control_edit[static_cast<size_t>(state.dragged_control)]);
  } else if (ImGui::IsItemHovered()) {
    const float mx = ImGui::GetIO().MousePos.x;
    const size_t l = n == 1 ? 0
                            : static_cast<size_t>(std::clamp(
                                  (mx - lo.x) / (hi.x - lo.x) * static_cast<float>(n - 1) + 0.5f, 0.0f,
                                  static_cast<float>(n - 1)));
    ImGui::SetTooltip("layer %zu\nlearned %.3f\nin force %.3f", l, l < learned.size() ? learned[l] : 0.0f,
                      l < in_force.size() ? in_force[l] : 0.0f);
  }
}

// 2D α: layers down, dimensions across, one cell per value.
void alpha_heat_map(const SuperpositionInfo& info, float height) {
  const int64_t layers = info.alpha_shape[0], dims = info.alpha_shape[1];
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const ImVec2 size(std::max(ImGui::GetContentRegionAvail().x, 100.0f), height);
  ImGui::InvisibleButton("##alpha_map", size);
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const float cw = size.x / static_cast<float>(std::max<int64_t>(dims, 1));
  const float ch = size.y / static_cast<float>(std::max<int64_t>(layers, 1));
  for (int64_t l = 0; l < layers; ++l) {
    for (int64_t d = 0; d < dims; ++d) {
      const float v = info.alpha_in_force[static_cast<size_t>(l * dims + d)];
      const ImVec2 a(origin.x + cw * static_cast<float>(d), origin.y + ch * static_cast<float>(l));
      draw->AddRectFilled(a, ImVec2(a.x + std::max(cw, 1.0f), a.y + ch), alpha_colour(v));
    }
  }
  if (ImGui::IsItemHovered()) {
    const ImVec2 m = ImGui::GetIO().MousePos;
    const int64_t d = std::clamp<int64_t>(static_cast<int64_t>((m.x - origin.x) / cw), 0, dims - 1);
    const int64_t l = std::clamp<int64_t>(static_cast<int64_t>((m.y - origin.y) / ch), 0, layers - 1);
    ImGui::SetTooltip("layer %lld, dimension %lld: α %.3f", static_cast<long long>(l), static_cast<long long>(d),
                      info.alpha_in_force[static_cast<size_t>(l * dims + d)]);
  }
}

// "Schedule over positions": segments {from, global α, per layer or (2D) per
// layer and dimension}; the schedule goes to the worker while "Use schedule"
// is on and after every edit.
void schedule_editor(AppState& state, const Snapshot& snapshot, Worker& worker, const std::vector<float>& in_force) {
  if (!ImGui::CollapsingHeader("Schedule over positions")) return;
  ScheduleUi& ui = state.schedule;
  bool changed = false;
  if (ImGui::Checkbox("Use schedule", &ui.use)) changed = true;
  if (ImGui::IsItemHovered()) {
    ImGui::SetTooltip("Generate uses α by token position (counting the prompt); a segment applies from its position\n"
                      "until the next one. Positions before the first segment use the α in force.");
  }
  ImGui::SameLine();
  if (snapshot.alpha_schedule.empty()) {
    ImGui::TextDisabled("(not in force)");
  } else {
    ImGui::TextDisabled("(in force: %zu segments)", snapshot.alpha_schedule.size());
  }
  int remove = -1;
  for (size_t i = 0; i < ui.segments.size(); ++i) {
    ScheduleSegment& segment = ui.segments[i];
    ImGui::PushID(static_cast<int>(i));
    int from = static_cast<int>(segment.from);
    ImGui::SetNextItemWidth(90.0f);
    if (ImGui::InputInt("from##from", &from)) {
      segment.from = std::max(from, 0);
      changed = true;
    }
    ImGui::SameLine();
    bool per_layer = segment.alpha.size() > 1;
    if (ImGui::Checkbox("per layer", &per_layer)) {
      segment.alpha = per_layer ? in_force : std::vector<float>{in_force.empty() ? 0.5f : in_force[0]};
      changed = true;
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Per layer: copy the per-layer α in force now");
    ImGui::SameLine();
    if (per_layer) {
      const SuperpositionInfo* info = snapshot.superposition ? &*snapshot.superposition : nullptr;
      const bool two_d = info != nullptr && info->alpha_shape.size() == 2;
      if (two_d && segment.alpha.size() == info->alpha_in_force.size()) {
        ImGui::TextDisabled("%lld layers × %lld dimensions", static_cast<long long>(info->alpha_shape[0]),
                            static_cast<long long>(info->alpha_shape[1]));
      } else {
        ImGui::TextDisabled("%zu layers", segment.alpha.size());
      }
      ImGui::SameLine();
      if (ImGui::SmallButton("Copy α in force")) {
        segment.alpha = in_force;
        changed = true;
      }
      if (two_d) {
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("One α per layer (every dimension of the layer)");
        ImGui::SameLine();
        if (ImGui::SmallButton("Copy per dimension")) {
          segment.alpha = info->alpha_in_force;
          changed = true;
        }
        if (ImGui::IsItemHovered()) ImGui::SetTooltip("The layer × dimension α in force now (the heat map)");
      }
    } else {
      if (segment.alpha.empty()) segment.alpha = {0.5f};
      ImGui::SetNextItemWidth(std::max(ImGui::GetContentRegionAvail().x - 40.0f, 60.0f));
      if (ImGui::SliderFloat("##alpha", &segment.alpha[0], 0.0f, 1.0f, "α = %.3f")) changed = true;
    }
    ImGui::SameLine();
    if (ImGui::SmallButton("x")) remove = static_cast<int>(i);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Remove this segment");
    ImGui::PopID();
  }
  if (remove >= 0) {
    ui.segments.erase(ui.segments.begin() + remove);
    changed = true;
  }
  if (ImGui::Button("Add segment")) {
    ScheduleSegment segment;
    segment.from = ui.segments.empty() ? 0 : ui.segments.back().from + 8;
    segment.alpha = {ui.segments.empty() || ui.segments.back().alpha.size() != 1 ? 0.5f : ui.segments.back().alpha[0]};
    ui.segments.push_back(std::move(segment));
    changed = true;
  }
  if (changed) {
    if (ui.use && !ui.segments.empty()) {
      worker.set_alpha_schedule(ui.segments);
    } else {
      worker.clear_alpha_schedule();
    }
  }
}

}  // namespace

std::vector<float> shown_control_points(const AppState& state, const SuperpositionInfo& info) {
  if (info.n_control <= 0) return {};
  if (state.dragged_control >= 0 && state.control_edit.size() == static_cast<size_t>(info.n_control)) {
    return state.control_edit;
  }
  return spline_controls_in_force(info, state.control_edit).points;
}

void record_alpha_edit(AppState& state, const SuperpositionInfo& info) {
  state.alpha_history.record(info.alpha_in_force, shown_control_points(state, info));
}

void begin_control_drag(AppState& state, const SuperpositionInfo& info, int index) {
  if (index < 0 || index >= info.n_control) return;
  record_alpha_edit(state, info);
  state.control_edit = shown_control_points(state, info);
  state.dragged_control = index;
}

void drag_control_point(AppState& state, const SuperpositionInfo& info, Worker& worker, float value) {
  if (state.dragged_control < 0 || state.control_edit.size() != static_cast<size_t>(info.n_control)) return;
  float& c = state.control_edit[static_cast<size_t>(state.dragged_control)];
  if (value == c) return;
  c = value;
  worker.set_alpha_all(alpha_from_control_points(info.alpha_basis, state.control_edit, info.layer_bias));
}

namespace {

// Sends the restored α and draws the restored control points (an entry
// recorded without them leaves the plot to fit the α).
void restore_alpha(AppState& state, Worker& worker, AlphaHistory::Entry restored) {
  if (restored.alpha.empty()) return;
  if (!restored.control.empty()) state.control_edit = std::move(restored.control);
  state.dragged_control = -1;
  worker.set_alpha_all(std::move(restored.alpha));
}

}  // namespace

void undo_alpha(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!snapshot.superposition) return;
  const SuperpositionInfo& info = *snapshot.superposition;
  restore_alpha(state, worker, state.alpha_history.take_undo({info.alpha_in_force, shown_control_points(state, info)}));
}

void redo_alpha(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!snapshot.superposition) return;
  const SuperpositionInfo& info = *snapshot.superposition;
  restore_alpha(state, worker, state.alpha_history.take_redo({info.alpha_in_force, shown_control_points(state, info)}));
}

bool export_alpha(AppState& state, const Snapshot& snapshot) {
  if (!snapshot.superposition) {
    state.app_message = "Export: no superposition is loaded";
    state.app_error = true;
    return false;
  }
  return report_export(state, [&] { return export_alpha_figure(*snapshot.superposition, state.export_path); });
}

void AlphaPanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.alpha) return;
  if (ImGui::Begin("Alpha", &state.panels.alpha)) {
    if (!snapshot.superposition) {
      ImGui::TextDisabled("No superposition loaded.");
      ImGui::End();
      return;
    }
    const SuperpositionInfo& info = *snapshot.superposition;
    const bool two_d = info.alpha_shape.size() == 2;
    const std::vector<float> learned = alpha_per_layer(info.alpha_learned, info.alpha_shape);
    const std::vector<float> in_force = alpha_per_layer(info.alpha_in_force, info.alpha_shape);

    ImGui::Text("%s α, %lld layers%s", two_d ? "2D" : "1D", static_cast<long long>(info.n_layer),
                info.alpha_overridden ? "  (edited)" : "  (learned)");
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(0.6f, 0.6f, 0.65f, 1.0f), "  learned (grey)");
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1.0f, 0.6f, 0.15f, 1.0f), "in force (orange)");
    SplineControls shown;
    if (info.n_control > 0) shown = spline_controls_in_force(info, state.control_edit);
    alpha_plot(state, info, worker, learned, in_force, shown, 150.0f);
    if (!two_d && info.n_control > 0) {
      if (shown.exact || state.dragged_control >= 0) {
        ImGui::TextDisabled("Drag a control point (square, at its Greville abscissa) up or down to reshape α.");
      } else {
        ImGui::PushTextWrapPos(0.0f);
        ImGui::TextDisabled("α in force is off the spline (layer %lld by %.3f): the grey squares are its least-squares "
                            "fit; dragging one puts α back on the spline (Undo restores).",
                            static_cast<long long>(shown.worst_layer), shown.worst);
        ImGui::PopTextWrapPos();
      }
    }
    if (two_d) {
      ImGui::TextDisabled("α in force, layer × dimension (blue 0 … orange 1)");
      alpha_heat_map(info, std::clamp(static_cast<float>(info.n_layer) * 8.0f, 40.0f, 160.0f));
    }

    // Edits: the α before the edit goes to the undo history once per drag.
    // Slider values follow the snapshot except while one of this panel's is dragged.
    const bool editing = ImGui::IsAnyItemActive() && ImGui::IsWindowFocused(ImGuiFocusedFlags_RootAndChildWindows);
    // The global slider shows the mean α in force.
    if (!editing && !in_force.empty()) {
      float sum = 0.0f;
      for (float v : in_force) sum += v;
      state.global_alpha = sum / static_cast<float>(in_force.size());
    }
    ImGui::SetNextItemWidth(-120.0f);
    if (ImGui::SliderFloat("global blend", &state.global_alpha, 0.0f, 1.0f, "α = %.3f")) {
      worker.set_alpha_global(state.global_alpha);
    }
    if (ImGui::IsItemActivated()) record_alpha_edit(state, info);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Set every layer%s to one α: 0 = base, 1 = fine", two_d ? " and dimension" : "");

    if (ImGui::Button("Reset to learned")) {
      record_alpha_edit(state, info);
      worker.reset_alpha();
      state.control_edit = info.control_points;
      state.dragged_control = -1;
    }
    ImGui::SameLine();
    ImGui::BeginDisabled(state.alpha_history.undo.empty());
    if (ImGui::Button("Undo")) undo_alpha(state, snapshot, worker);
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) ImGui::SetTooltip("Undo the last α edit (Ctrl+Z)");
    ImGui::EndDisabled();
    ImGui::SameLine();
    ImGui::BeginDisabled(state.alpha_history.redo.empty());
    if (ImGui::Button("Redo")) redo_alpha(state, snapshot, worker);
    if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) ImGui::SetTooltip("Redo (Ctrl+Y)");
    ImGui::EndDisabled();
    ImGui::SameLine();
    ImGui::SetNextItemWidth(std::max(ImGui::GetContentRegionAvail().x - 80.0f, 60.0f));
    input_text("##export_path", state.export_path);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Export writes <path>.pdf, <path>.png and <path>.csv");
    ImGui::SameLine();
    if (ImGui::Button("Export…")) export_alpha(state, snapshot);

    schedule_editor(state, snapshot, worker, in_force);

    if (state.alpha_edit.size() != in_force.size() || !editing) state.alpha_edit = in_force;
    const ImGuiTableFlags flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_BordersInnerV;
    if (ImGui::BeginTable("layers", 3, flags)) {
      ImGui::TableSetupScrollFreeze(0, 1);
      ImGui::TableSetupColumn("layer", ImGuiTableColumnFlags_WidthFixed, 50.0f);
      ImGui::TableSetupColumn(two_d ? "mean α (sets every dimension)" : "α", ImGuiTableColumnFlags_WidthStretch);
      ImGui::TableSetupColumn("autoencoder", ImGuiTableColumnFlags_WidthFixed, 100.0f);
      ImGui::TableHeadersRow();
      ImGuiListClipper clipper;
      clipper.Begin(static_cast<int>(state.alpha_edit.size()));
      while (clipper.Step()) {
        for (int l = clipper.DisplayStart; l < clipper.DisplayEnd; ++l) {
          const size_t i = static_cast<size_t>(l);
          ImGui::PushID(l);
          ImGui::TableNextRow();
          ImGui::TableSetColumnIndex(0);
          ImGui::Text("%d", l);
          ImGui::TableSetColumnIndex(1);
          ImGui::SetNextItemWidth(-1.0f);
          if (ImGui::SliderFloat("##alpha", &state.alpha_edit[i], 0.0f, 1.0f, "%.3f")) {
            worker.set_alpha_layer(l, state.alpha_edit[i]);
          }
          if (ImGui::IsItemActivated()) record_alpha_edit(state, info);
          if (ImGui::IsItemHovered()) {
            ImGui::SetTooltip("layer %d: learned %.3f; Ctrl+click to type a value", l, learned[i]);
          }
          ImGui::TableSetColumnIndex(2);
          const bool has = i < info.has_autoencoder.size() && info.has_autoencoder[i];
          bool on = i < info.autoencoder_enabled.size() && info.autoencoder_enabled[i];
          ImGui::BeginDisabled(!has);
          if (ImGui::Checkbox("##ae", &on)) worker.set_autoencoder(l, on);
          ImGui::EndDisabled();
          if (ImGui::IsItemHovered(ImGuiHoveredFlags_AllowWhenDisabled)) {
            ImGui::SetTooltip(has ? "Run this layer's autoencoder" : "No autoencoder at this layer");
          }
          ImGui::PopID();
        }
      }
      ImGui::EndTable();
    }
  }
  ImGui::End();
}

}  // namespace superpose::studio
