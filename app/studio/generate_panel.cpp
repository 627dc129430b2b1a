// Generate panel: prompt, controls, sampling settings and the streamed tokens.
#include <algorithm>
#include <numeric>

#include <imgui.h>

#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

float mean(const std::vector<float>& values) {
  if (values.empty()) return 0.5f;
  return std::accumulate(values.begin(), values.end(), 0.0f) / static_cast<float>(values.size());
}

// Newlines and tabs as visible marks so every token stays on its line.
std::string visible(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\n') {
      out += "\xE2\x86\xB5";  // ↵
    } else if (c == '\t') {
      out += "\xE2\x87\xA5";  // ⇥
    } else {
      out += c;
    }
  }
  return out;
}

void top_tokens_tooltip(const GeneratedToken& token, bool causal) {
  ImGui::BeginTooltip();
  ImGui::Text("token %lld '%s'   mean α %.3f   closer to %s (%.2f)%s", static_cast<long long>(token.id),
              visible(token.text).c_str(), mean(token.alpha), token.fine_affinity <= 0.5f ? "base" : "fine",
              token.fine_affinity, causal ? "" : "   (non-causal)");
  ImGui::TextDisabled("Most likely tokens at this step");
  if (ImGui::BeginTable("top", 3, ImGuiTableFlags_Borders | ImGuiTableFlags_RowBg)) {
    ImGui::TableSetupColumn("base");
    ImGui::TableSetupColumn("fine");
    ImGui::TableSetupColumn("superposition");
    ImGui::TableHeadersRow();
    const std::vector<TopToken>* columns[3] = {&token.top_base, &token.top_fine, &token.top_superposed};
    size_t rows = 0;
    for (const auto* c : columns) rows = std::max(rows, c->size());
    for (size_t r = 0; r < rows; ++r) {
      ImGui::TableNextRow();
      for (int c = 0; c < 3; ++c) {
        ImGui::TableSetColumnIndex(c);
        if (r >= columns[c]->size()) continue;
        const TopToken& t = (*columns[c])[r];
        const bool chosen = t.id == token.id;
        if (chosen) ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(1.0f, 0.85f, 0.3f, 1.0f));
        ImGui::Text("%5.1f%%  '%s'", 100.0f * t.prob, visible(t.text).c_str());
        if (chosen) ImGui::PopStyleColor();
      }
    }
    ImGui::EndTable();
  }
  ImGui::EndTooltip();
}

void sampling_controls(AppState& state) {
  GenerationSettings& s = state.settings;
  ImGui::PushItemWidth(110.0f);
  int max_tokens = static_cast<int>(s.max_new_tokens);
  if (ImGui::InputInt("max tokens", &max_tokens)) s.max_new_tokens = std::clamp(max_tokens, 0, 4096);
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("Tokens to generate after the prompt");
  ImGui::SameLine();
  ImGui::Checkbox("greedy", &s.greedy);
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("Always take the most likely token");
  ImGui::SameLine();
  ImGui::Checkbox("stop at end-of-text", &s.stop_at_eos);
  ImGui::BeginDisabled(s.greedy);
  float temperature = static_cast<float>(s.temperature);
  if (ImGui::SliderFloat("temperature", &temperature, 0.05f, 2.0f, "%.2f")) s.temperature = temperature;
  ImGui::SameLine();
  int top_k = static_cast<int>(s.top_k);
  if (ImGui::InputInt("top-k", &top_k)) s.top_k = std::max(top_k, 0);
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("Sample among the k most likely tokens; 0 = all");
  ImGui::SameLine();
  float top_p = static_cast<float>(s.top_p);
  if (ImGui::SliderFloat("top-p", &top_p, 0.01f, 1.0f, "%.2f")) s.top_p = top_p;
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("Sample among the most likely tokens that make up this probability");
  ImGui::EndDisabled();
  int seed = static_cast<int>(s.seed);
  if (ImGui::InputInt("seed", &seed)) s.seed = static_cast<uint64_t>(std::max(seed, 0));
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("Same seed, same tokens");
  ImGui::SameLine();
  int step = static_cast<int>(state.step_tokens);
  if (ImGui::InputInt("tokens per step", &step)) state.step_tokens = std::clamp(step, 1, 256);
  ImGui::PopItemWidth();
}

// How the streamed tokens are coloured.
void colour_choice(AppState& state) {
  ImGui::TextUnformatted("Colour tokens by");
  ImGui::SameLine();
  if (ImGui::RadioButton("α in force", !state.colour_by_expert)) state.colour_by_expert = false;
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("The mean α over layers the token was generated under");
  ImGui::SameLine();
  if (ImGui::RadioButton("closer expert", state.colour_by_expert)) state.colour_by_expert = true;
  if (ImGui::IsItemHovered()) {
    ImGui::SetTooltip("KL(s‖base) / (KL(s‖base) + KL(s‖fine)) of the step's next-token distributions:\n"
                      "blue = predicts as the base, orange = as the fine expert");
  }
}

}  // namespace

void start_generation(AppState& state, Worker& worker) {
  GenerationSettings settings = state.settings;
  settings.pause_after = 0;
  state.selected_token = -1;
  worker.generate(state.prompt, settings);
}

void GeneratePanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.generate) return;
  if (ImGui::Begin("Generate", &state.panels.generate)) {
    const GenerationState& g = snapshot.generation;
    const bool loaded = snapshot.superposition.has_value();
    ImGui::TextDisabled("Prompt");
    input_text_multiline("##prompt", state.prompt, ImGui::GetTextLineHeight() * 3.5f);

    ImGui::BeginDisabled(!loaded);
    if (ImGui::Button("Generate")) start_generation(state, worker);
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Generate after the prompt (Ctrl+Enter)");
    ImGui::SameLine();
    ImGui::BeginDisabled(!g.running);
    if (ImGui::Button("Stop")) worker.stop_generation();
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("End the generation before its next token (Esc)");
    ImGui::SameLine();
    if (g.paused) {
      if (ImGui::Button("Resume")) worker.resume_generation(0);
    } else if (ImGui::Button("Pause")) {
      worker.pause_generation();
    }
    ImGui::EndDisabled();
    ImGui::SameLine();
    if (ImGui::Button("Step")) {
      if (g.running) {
        if (!g.paused) worker.pause_generation();
        worker.resume_generation(state.step_tokens);
      } else {
        GenerationSettings settings = state.settings;
        settings.pause_after = state.step_tokens;
        state.selected_token = -1;
        worker.generate(state.prompt, settings);
      }
    }
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("Generate the next token(s), then pause: change α in between");
    ImGui::EndDisabled();
    if (g.running) {
      ImGui::SameLine();
      ImGui::Text(g.paused ? "paused after %zu tokens" : "generating: %zu tokens", g.tokens.size());
    } else if (g.id > 0) {
      ImGui::SameLine();
      ImGui::Text("%zu tokens, %s, %.1f tokens/s", g.tokens.size(), g.stop_reason.c_str(), g.tokens_per_second);
    }
    if (!g.causal && g.id > 0) {
      ImGui::SameLine();
      ImGui::TextColored(ImVec4(1.0f, 0.7f, 0.3f, 1.0f), "non-causal");
      if (ImGui::IsItemHovered()) {
        ImGui::SetTooltip("A centered convolution reads token t+1: probabilities are not a causal language model's");
      }
    }
    if (ImGui::CollapsingHeader("Sampling")) sampling_controls(state);
    colour_choice(state);

    ImGui::Separator();
    if (ImGui::BeginChild("output", ImVec2(0, 0), true)) {
      ImGui::PushStyleVar(ImGuiStyleVar_ItemSpacing, ImVec2(0.0f, ImGui::GetStyle().ItemSpacing.y));
      if (g.id > 0) {
        ImGui::PushStyleColor(ImGuiCol_Text, ImVec4(0.6f, 0.6f, 0.6f, 1.0f));
        ImGui::TextWrapped("%s", g.prompt.c_str());
        ImGui::PopStyleColor();
      }
      const float right = ImGui::GetWindowContentRegionMax().x;
      for (size_t i = 0; i < g.tokens.size(); ++i) {
        const GeneratedToken& token = g.tokens[i];
        const std::string text = visible(token.text);
        const float width = ImGui::CalcTextSize(text.c_str()).x;
        if (i > 0) {
          ImGui::SameLine();
          if (ImGui::GetCursorPosX() + width > right) ImGui::NewLine();
        }
        ImGui::PushID(static_cast<int>(i));
        ImGui::PushStyleColor(ImGuiCol_Text,
                              alpha_colour(state.colour_by_expert ? token.fine_affinity : mean(token.alpha)));
        const bool selected = state.selected_token == static_cast<int>(i);
        if (ImGui::Selectable(text.c_str(), selected, 0, ImVec2(width, 0))) {
          state.selected_token = static_cast<int>(i);
          state.lens_position = static_cast<int>(g.prompt_ids.size() + i) - 1;
        }
        ImGui::PopStyleColor();
        if (ImGui::IsItemHovered()) top_tokens_tooltip(token, g.causal);
        ImGui::PopID();
      }
      ImGui::PopStyleVar();
      if (g.running && !g.paused && ImGui::GetScrollY() >= ImGui::GetScrollMaxY()) ImGui::SetScrollHereY(1.0f);
    }
    ImGui::EndChild();
  }
  ImGui::End();
}

}  // namespace superpose::studio
