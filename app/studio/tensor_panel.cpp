// Tensor panel: the checkpoint's tensor table, clipped so large models stay fast.
#include <string>
#include <vector>

#include <imgui.h>

#include "app/studio/panels.h"

namespace superpose::studio {

void TensorPanel::draw(AppState& state, const Snapshot& snapshot) {
  if (!state.panels.tensors) return;
  if (ImGui::Begin("Tensors", &state.panels.tensors)) {
    char filter[128] = {};
    state.tensor_filter.copy(filter, sizeof(filter) - 1);
    if (ImGui::InputTextWithHint("##filter", "filter by name", filter, sizeof(filter))) state.tensor_filter = filter;
    std::vector<const TensorRow*> rows;
    for (const auto& row : snapshot.tensors) {
      if (state.tensor_filter.empty() || row.name.find(state.tensor_filter) != std::string::npos) rows.push_back(&row);
    }
    ImGui::Text("%zu of %zu tensors", rows.size(), snapshot.tensors.size());
    const auto flags = ImGuiTableFlags_RowBg | ImGuiTableFlags_ScrollY | ImGuiTableFlags_Resizable;
    if (ImGui::BeginTable("tensors", 4, flags)) {
      ImGui::TableSetupScrollFreeze(0, 1);
      ImGui::TableSetupColumn("name", ImGuiTableColumnFlags_WidthStretch, 4.0f);
      ImGui::TableSetupColumn("dtype", ImGuiTableColumnFlags_WidthStretch, 0.8f);
      ImGui::TableSetupColumn("shape", ImGuiTableColumnFlags_WidthStretch, 1.6f);
      ImGui::TableSetupColumn("bytes", ImGuiTableColumnFlags_WidthStretch, 1.2f);
      ImGui::TableHeadersRow();
      ImGuiListClipper clipper;
      clipper.Begin(static_cast<int>(rows.size()));
      while (clipper.Step()) {
        for (int i = clipper.DisplayStart; i < clipper.DisplayEnd; ++i) {
          const TensorRow& row = *rows[static_cast<size_t>(i)];
          ImGui::PushID(i);
          ImGui::TableNextRow();
          ImGui::TableSetColumnIndex(0);
          ImGui::TextUnformatted(row.name.c_str());
          ImGui::TableSetColumnIndex(1);
          ImGui::TextUnformatted(row.dtype.c_str());
          ImGui::TableSetColumnIndex(2);
          std::string shape = "[";
          for (size_t d = 0; d < row.shape.size(); ++d) shape += (d ? ", " : "") + std::to_string(row.shape[d]);
          shape += "]";
          ImGui::TextUnformatted(shape.c_str());
          ImGui::TableSetColumnIndex(3);
          ImGui::Text("%llu", static_cast<unsigned long long>(row.bytes));
          ImGui::PopID();
        }
      }
      ImGui::EndTable();
    }
  }
  ImGui::End();
}

}  // namespace superpose::studio
