// Small widgets the panels share: std::string text fields, the α colour ramp, byte sizes.
#include <algorithm>
#include <cstdio>

#include <imgui.h>

#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

int resize_string(ImGuiInputTextCallbackData* data) {
  if (data->EventFlag == ImGuiInputTextFlags_CallbackResize) {
    auto* text = static_cast<std::string*>(data->UserData);
    text->resize(static_cast<size_t>(data->BufTextLen));
    data->Buf = text->data();
  }
  return 0;
}

}  // namespace

bool input_text(const char* label, std::string& value, int flags) {
  value.reserve(256);
  return ImGui::InputText(label, value.data(), value.capacity() + 1, flags | ImGuiInputTextFlags_CallbackResize,
                          resize_string, &value);
}

bool input_text_multiline(const char* label, std::string& value, float height) {
  value.reserve(1024);
  return ImGui::InputTextMultiline(label, value.data(), value.capacity() + 1, ImVec2(-1.0f, height),
                                   ImGuiInputTextFlags_CallbackResize, resize_string, &value);
}

unsigned int alpha_colour(float alpha) {
  // Blue (α = 0, all base) to orange (α = 1, all fine), through a light grey.
  const float t = std::clamp(alpha, 0.0f, 1.0f);
  const ImVec4 blue(0.35f, 0.62f, 1.00f, 1.0f), mid(0.85f, 0.85f, 0.85f, 1.0f), orange(1.00f, 0.60f, 0.15f, 1.0f);
  const ImVec4& a = t < 0.5f ? blue : mid;
  const ImVec4& b = t < 0.5f ? mid : orange;
  const float u = t < 0.5f ? t * 2.0f : (t - 0.5f) * 2.0f;
  return ImGui::ColorConvertFloat4ToU32(
      ImVec4(a.x + (b.x - a.x) * u, a.y + (b.y - a.y) * u, a.z + (b.z - a.z) * u, 1.0f));
}

std::string size_text(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return text;
}

}  // namespace superpose::studio
