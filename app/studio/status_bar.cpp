// Status bar: a fixed strip along the bottom of the main viewport: the
// superposition and its device, memory in use, the job in progress, messages.
#include <filesystem>

#include <imgui.h>

#include "app/studio/panels.h"

namespace superpose::studio {

void StatusBar::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  const ImGuiViewport* viewport = ImGui::GetMainViewport();
  const float height = ImGui::GetFrameHeightWithSpacing() + ImGui::GetStyle().WindowPadding.y * 2.0f;
  ImGui::SetNextWindowPos(ImVec2(viewport->WorkPos.x, viewport->WorkPos.y + viewport->WorkSize.y - height));
  ImGui::SetNextWindowSize(ImVec2(viewport->WorkSize.x, height));
  const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                                 ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_NoFocusOnAppearing |
                                 ImGuiWindowFlags_NoBringToFrontOnFocus;
  if (ImGui::Begin("##status", nullptr, flags)) {
    if (snapshot.superposition) {
      const SuperpositionInfo& info = *snapshot.superposition;
      const std::string name = info.dir.empty() ? std::filesystem::path(info.base_dir).filename().string() + " + " +
                                                      std::filesystem::path(info.fine_dir).filename().string()
                                                : std::filesystem::path(info.dir).filename().string();
      ImGui::Text("%s | %s | %s α", info.device.c_str(), name.c_str(), info.variant.c_str());
      if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip("%s\nbase %s\nfine %s\n%s, convolution %s\ndrawn by %s", info.dir.c_str(),
                          info.base_dir.c_str(), info.fine_dir.c_str(), info.dtype.c_str(), info.convolution.c_str(),
                          state.renderer.c_str());
      }
      ImGui::SameLine();
      if (info.causal) {
        ImGui::TextDisabled("| causal");
      } else {
        ImGui::TextColored(ImVec4(1.0f, 0.7f, 0.3f, 1.0f), "| non-causal");
      }
    } else if (snapshot.status == Snapshot::Status::kLoading) {
      ImGui::Text("loading %s", snapshot.model_dir.c_str());
    } else {
      ImGui::TextDisabled("no superposition loaded");
    }
    const std::string device = snapshot.superposition ? snapshot.superposition->device : std::string("cpu");
    if (memory_time_ < 0.0 || ImGui::GetTime() - memory_time_ > 0.5) {
      memory_ = memory_use(torch::Device(device));
      memory_time_ = ImGui::GetTime();
    }
    ImGui::SameLine();
    if (memory_.device_known) {
      ImGui::Text("| RAM %s, %s %s", size_text(memory_.host_resident).c_str(), device.c_str(),
                  size_text(memory_.device_allocated).c_str());
      if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip("resident in RAM %s\n%s: %s in tensors, %s reserved by the caching allocator",
                          size_text(memory_.host_resident).c_str(), device.c_str(),
                          size_text(memory_.device_allocated).c_str(), size_text(memory_.device_reserved).c_str());
      }
    } else {
      ImGui::Text("| RAM %s", size_text(memory_.host_resident).c_str());
    }
    if (snapshot.job) {
      const JobProgress& job = *snapshot.job;
      ImGui::SameLine();
      ImGui::Text("| %s", job.name.c_str());
      ImGui::SameLine();
      const float fraction = job.fraction < 0.0 ? static_cast<float>(ImGui::GetTime() * 0.5 - static_cast<int>(ImGui::GetTime() * 0.5))
                                                : static_cast<float>(job.fraction);
      ImGui::ProgressBar(fraction, ImVec2(120.0f, 0.0f), job.fraction < 0.0 ? "" : nullptr);
      if (job.cancellable) {
        ImGui::SameLine();
        if (ImGui::SmallButton("Cancel")) worker.cancel_jobs();
      }
    }
    const bool worker_error = snapshot.errors > state.errors_seen && !snapshot.message.empty();
    if (worker_error || !state.app_message.empty()) {
      ImGui::SameLine();
      const std::string& text = worker_error ? snapshot.message : state.app_message;
      const ImVec4 colour = worker_error || state.app_error ? ImVec4(1.0f, 0.35f, 0.3f, 1.0f) : ImVec4(0.6f, 0.9f, 0.6f, 1.0f);
      ImGui::TextColored(colour, "| %s", text.c_str());
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", text.c_str());
      ImGui::SameLine();
      if (ImGui::SmallButton("Dismiss")) {
        state.errors_seen = snapshot.errors;
        state.app_message.clear();
        state.app_error = false;
      }
    }
  }
  ImGui::End();
}

}  // namespace superpose::studio
