// t-SNE panel: settings and Run/Cancel, the map's points drawn by OpenGL into
// an offscreen texture shown with ImGui::Image, zoom/pan, hover tooltips,
// lasso selection and export.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#define GL_GLEXT_PROTOTYPES
#include <GL/gl.h>
#include <GL/glext.h>
#include <imgui.h>
#include <torch/torch.h>

#include "analysis/figure.h"
#include "analysis/paper_figures.h"
#include "app/studio/alpha_export.h"
#include "app/studio/panels.h"

namespace superpose::studio {
namespace {

// The map's bounding box: centre and half-size (the larger of the two axes).
struct Bounds {
  float cx = 0.0f, cy = 0.0f, half = 1.0f;
};

Bounds bounds_of(const std::vector<float>& xy) {
  if (xy.size() < 2) return {};
  float x0 = xy[0], x1 = xy[0], y0 = xy[1], y1 = xy[1];
  for (size_t i = 0; i + 1 < xy.size(); i += 2) {
    x0 = std::min(x0, xy[i]);
    x1 = std::max(x1, xy[i]);
    y0 = std::min(y0, xy[i + 1]);
    y1 = std::max(y1, xy[i + 1]);
  }
  Bounds b;
  b.cx = 0.5f * (x0 + x1);
  b.cy = 0.5f * (y0 + y1);
  b.half = std::max(1e-6f, 0.5f * std::max(x1 - x0, y1 - y0)) * 1.05f;
  return b;
}

ImVec4 imgui_colour(const Rgb& c) {
  return ImVec4(static_cast<float>(c.r), static_cast<float>(c.g), static_cast<float>(c.b), 1.0f);
}

// "state 6" or "states 0, 6, 12".
std::string states_text(const std::vector<int64_t>& layers) {
  std::string text = layers.size() == 1 ? "state " : "states ";
  for (size_t i = 0; i < layers.size(); ++i) text += (i > 0 ? ", " : "") + std::to_string(layers[i]);
  return text;
}

constexpr const char* kColourChoices[] = {"model × domain", "model", "domain", "state"};

GLuint compile(GLenum kind, const char* source) {
  const GLuint shader = glCreateShader(kind);
  glShaderSource(shader, 1, &source, nullptr);
  glCompileShader(shader);
  GLint ok = 0;
  glGetShaderiv(shader, GL_COMPILE_STATUS, &ok);
  if (!ok) {
    char log[512] = {};
    glGetShaderInfoLog(shader, sizeof(log), nullptr, log);
    std::fprintf(stderr, "superpose-studio: t-SNE shader: %s\n", log);
  }
  return shader;
}

const char* const kVertexShader = R"(#version 130
in vec2 position;
in vec3 colour;
uniform vec4 transform;  // map -> NDC: scale x, scale y, offset x, offset y
out vec3 v_colour;
void main() {
  gl_Position = vec4(position * transform.xy + transform.zw, 0.0, 1.0);
  v_colour = colour;
}
)";

const char* const kFragmentShader = R"(#version 130
in vec3 v_colour;
out vec4 frag;
void main() { frag = vec4(v_colour, 0.85); }
)";

// Even-odd point-in-polygon test on (x, y) pairs.
bool inside(const std::vector<float>& polygon, float x, float y) {
  bool in = false;
  const size_t n = polygon.size() / 2;
  for (size_t i = 0, j = n - 1; i < n; j = i++) {
    const float xi = polygon[2 * i], yi = polygon[2 * i + 1], xj = polygon[2 * j], yj = polygon[2 * j + 1];
    if ((yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) in = !in;
  }
  return in;
}

std::string context_line(const TokenSource& s) {
  return s.before + "[" + s.token + "]" + s.after;
}

}  // namespace

std::vector<int> points_in_polygon(const TsneMap& map, const std::vector<float>& polygon) {
  std::vector<int> out;
  if (polygon.size() < 6) return out;
  for (size_t p = 0; 2 * p + 1 < map.embedding.size(); ++p) {
    if (inside(polygon, map.embedding[2 * p], map.embedding[2 * p + 1])) out.push_back(static_cast<int>(p));
  }
  return out;
}

bool export_tsne(AppState& state, const Snapshot& snapshot) {
  return report_export(state, [&] {
    if (!snapshot.tsne || snapshot.tsne->embedding.empty()) throw std::runtime_error("no t-SNE map to export yet");
    const TsneMap& map = *snapshot.tsne;
    const auto points = static_cast<int64_t>(map.embedding.size() / 2);
    const torch::Tensor embedding =
        torch::from_blob(const_cast<float*>(map.embedding.data()), {points, 2}, torch::kFloat32).clone();
    const TsneColouring colours = tsne_colouring(map, state.tsne.colour);
    Figure figure = tsne_figure(embedding, colours.categories, colours.names,
                                "t-SNE of " + states_text(map.layers) + " (iteration " +
                                    std::to_string(map.iteration) + ")",
                                colours.colours);
    if (!map.causal) mark_non_causal(figure);
    return export_figure(figure, state.tsne.export_path);
  });
}

TsnePanel::~TsnePanel() = default;

void TsnePanel::release() {
  if (program_ != 0) glDeleteProgram(program_);
  if (vbo_ != 0) glDeleteBuffers(1, &vbo_);
  if (vao_ != 0) glDeleteVertexArrays(1, &vao_);
  if (texture_ != 0) glDeleteTextures(1, &texture_);
  if (fbo_ != 0) glDeleteFramebuffers(1, &fbo_);
  program_ = vbo_ = vao_ = texture_ = fbo_ = 0;
  width_ = height_ = 0;
  uploaded_version_ = 0;
}

const TsneColouring& TsnePanel::colouring(const TsneMap& map, TsneColour by) {
  if (coloured_map_ != map.id || coloured_points_ != map.points() || coloured_by_ != by) {
    colouring_ = tsne_colouring(map, by);
    coloured_map_ = map.id;
    coloured_points_ = map.points();
    coloured_by_ = by;
    uploaded_version_ = 0;  // the buffer's colours are stale
  }
  return colouring_;
}

void TsnePanel::render_points(const TsneMap& map, const float transform[4], int width, int height,
                              float point_size) {
  if (program_ == 0) {
    program_ = glCreateProgram();
    const GLuint vs = compile(GL_VERTEX_SHADER, kVertexShader), fs = compile(GL_FRAGMENT_SHADER, kFragmentShader);
    glAttachShader(program_, vs);
    glAttachShader(program_, fs);
    glBindAttribLocation(program_, 0, "position");
    glBindAttribLocation(program_, 1, "colour");
    glLinkProgram(program_);
    glDeleteShader(vs);
    glDeleteShader(fs);
    glGenVertexArrays(1, &vao_);
    glGenBuffers(1, &vbo_);
    glGenFramebuffers(1, &fbo_);
    glGenTextures(1, &texture_);
  }
  GLint previous_fbo = 0, previous_viewport[4] = {}, previous_program = 0, previous_vao = 0, previous_texture = 0;
  glGetIntegerv(GL_FRAMEBUFFER_BINDING, &previous_fbo);
  glGetIntegerv(GL_VIEWPORT, previous_viewport);
  glGetIntegerv(GL_CURRENT_PROGRAM, &previous_program);
  glGetIntegerv(GL_VERTEX_ARRAY_BINDING, &previous_vao);
  glGetIntegerv(GL_TEXTURE_BINDING_2D, &previous_texture);

  if (width != width_ || height != height_) {
    glBindTexture(GL_TEXTURE_2D, texture_);
    glTexImage2D(GL_TEXTURE_2D, 0, GL_RGBA8, width, height, 0, GL_RGBA, GL_UNSIGNED_BYTE, nullptr);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MIN_FILTER, GL_NEAREST);
    glTexParameteri(GL_TEXTURE_2D, GL_TEXTURE_MAG_FILTER, GL_NEAREST);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo_);
    glFramebufferTexture2D(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_TEXTURE_2D, texture_, 0);
    width_ = width;
    height_ = height;
  }
  glBindVertexArray(vao_);
  glBindBuffer(GL_ARRAY_BUFFER, vbo_);
  const int points = static_cast<int>(map.embedding.size() / 2);
  if (uploaded_version_ != map.id * 1000003u + static_cast<uint64_t>(map.iteration) || uploaded_points_ != points) {
    // Interleaved x, y, r, g, b per point.
    std::vector<float> vertices(static_cast<size_t>(points) * 5);
    for (int p = 0; p < points; ++p) {
      const int category = p < static_cast<int>(colouring_.categories.size()) ? colouring_.categories[p] : 0;
      const Rgb c = static_cast<size_t>(category) < colouring_.colours.size() ? colouring_.colours[category] : Rgb{};
      float* v = &vertices[static_cast<size_t>(p) * 5];
      v[0] = map.embedding[2 * p];
      v[1] = map.embedding[2 * p + 1];
      v[2] = static_cast<float>(c.r);
      v[3] = static_cast<float>(c.g);
      v[4] = static_cast<float>(c.b);
    }
    glBufferData(GL_ARRAY_BUFFER, static_cast<GLsizeiptr>(vertices.size() * sizeof(float)), vertices.data(),
                 GL_DYNAMIC_DRAW);
    glEnableVertexAttribArray(0);
    glVertexAttribPointer(0, 2, GL_FLOAT, GL_FALSE, 5 * sizeof(float), nullptr);
    glEnableVertexAttribArray(1);
    glVertexAttribPointer(1, 3, GL_FLOAT, GL_FALSE, 5 * sizeof(float), reinterpret_cast<void*>(2 * sizeof(float)));
    uploaded_version_ = map.id * 1000003u + static_cast<uint64_t>(map.iteration);
    uploaded_points_ = points;
  }
  glBindFramebuffer(GL_FRAMEBUFFER, fbo_);
  glViewport(0, 0, width, height);
  glClearColor(0.97f, 0.97f, 0.97f, 1.0f);
  glClear(GL_COLOR_BUFFER_BIT);
  glEnable(GL_BLEND);
  glBlendFunc(GL_SRC_ALPHA, GL_ONE_MINUS_SRC_ALPHA);
  glDisable(GL_SCISSOR_TEST);
  glUseProgram(program_);
  glUniform4f(glGetUniformLocation(program_, "transform"), transform[0], transform[1], transform[2], transform[3]);
  glPointSize(point_size);
  glDrawArrays(GL_POINTS, 0, points);

  glBindFramebuffer(GL_FRAMEBUFFER, static_cast<GLuint>(previous_fbo));
  glViewport(previous_viewport[0], previous_viewport[1], previous_viewport[2], previous_viewport[3]);
  glUseProgram(static_cast<GLuint>(previous_program));
  glBindVertexArray(static_cast<GLuint>(previous_vao));
  glBindTexture(GL_TEXTURE_2D, static_cast<GLuint>(previous_texture));
}

void TsnePanel::draw(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!state.panels.tsne) return;
  if (!ImGui::Begin("t-SNE", &state.panels.tsne)) {
    ImGui::End();
    return;
  }
  TsneUi& ui = state.tsne;
  TsneRequest& r = ui.request;
  const int64_t max_layer = snapshot.superposition ? snapshot.superposition->n_layer : 12;
  // States to map: toggles 0..L; at least one stays chosen.
  ImGui::TextUnformatted("states");
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("Click states to add them to the map or take them out");
  for (int64_t layer = 0; layer <= max_layer; ++layer) {
    ImGui::SameLine(0.0f, layer == 0 ? -1.0f : 2.0f);
    const auto it = std::find(r.layers.begin(), r.layers.end(), layer);
    const bool chosen = it != r.layers.end();
    const std::string label = std::to_string(layer);
    ImGui::PushID(static_cast<int>(layer));
    if (ImGui::Selectable(label.c_str(), chosen, 0, ImVec2(ImGui::CalcTextSize("00").x, 0.0f))) {
      if (!chosen) {
        r.layers.insert(std::upper_bound(r.layers.begin(), r.layers.end(), layer), layer);
      } else if (r.layers.size() > 1) {
        r.layers.erase(it);
      }
    }
    ImGui::PopID();
  }
  ImGui::Checkbox("base", &r.base);
  ImGui::SameLine();
  ImGui::Checkbox("fine", &r.fine);
  ImGui::SameLine();
  ImGui::Checkbox("superposition", &r.superposition);
  int docs = static_cast<int>(r.max_documents), iterations = static_cast<int>(r.iterations);
  float perplexity = static_cast<float>(r.perplexity);
  ImGui::SetNextItemWidth(90.0f);
  if (ImGui::InputInt("docs/domain", &docs)) r.max_documents = std::max(0, docs);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(90.0f);
  if (ImGui::InputFloat("perplexity", &perplexity, 0.0f, 0.0f, "%.1f")) r.perplexity = std::max(1.0f, perplexity);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(90.0f);
  if (ImGui::InputInt("iterations", &iterations, 50)) r.iterations = std::max(1, iterations);
  ImGui::SetNextItemWidth(-170.0f);
  input_text("data", r.data);
  const bool running = snapshot.tsne && snapshot.tsne->running;
  ImGui::SameLine();
  ImGui::BeginDisabled(!snapshot.superposition || running);
  if (ImGui::Button("Run")) worker.run_tsne(r);
  ImGui::EndDisabled();
  ImGui::SameLine();
  ImGui::BeginDisabled(!running);
  if (ImGui::Button("Cancel")) worker.cancel_tsne();
  ImGui::EndDisabled();

  if (!snapshot.tsne) {
    ImGui::TextDisabled("Run maps the chosen states of the chosen models over the data's tokens.");
    ImGui::End();
    return;
  }
  const TsneMap& map = *snapshot.tsne;
  if (map.capturing) {
    ImGui::Text("capturing states…");
  } else {
    const float fraction = map.iterations > 0 ? static_cast<float>(map.iteration) / map.iterations : 0.0f;
    char overlay[96];
    std::snprintf(overlay, sizeof(overlay), "iteration %lld / %lld%s", static_cast<long long>(map.iteration),
                  static_cast<long long>(map.iterations), map.cancelled ? " (cancelled)" : "");
    ImGui::ProgressBar(fraction, ImVec2(-170.0f, 0.0f), overlay);
  }
  ImGui::SameLine();
  ImGui::Text("%zu points", map.embedding.size() / 2);
  if (!map.causal) {
    ImGui::SameLine();
    ImGui::TextColored(ImVec4(1.0f, 0.6f, 0.2f, 1.0f), "non-causal");
  }
  // Colour choice and legend.
  int colour = static_cast<int>(ui.colour);
  ImGui::SetNextItemWidth(140.0f);
  if (ImGui::Combo("colour by", &colour, kColourChoices, IM_ARRAYSIZE(kColourChoices))) {
    ui.colour = static_cast<TsneColour>(colour);
  }
  const TsneColouring& colours = colouring(map, ui.colour);
  const float right = ImGui::GetWindowPos().x + ImGui::GetWindowContentRegionMax().x;
  for (size_t c = 0; c < colours.names.size(); ++c) {
    const float h = ImGui::GetTextLineHeight();
    const ImGuiStyle& style = ImGui::GetStyle();
    ImGui::SameLine();
    // Wrap the legend rather than run past the window's edge.
    if (ImGui::GetCursorScreenPos().x + h + style.ItemSpacing.x + ImGui::CalcTextSize(colours.names[c].c_str()).x >
        right) {
      ImGui::NewLine();
    }
    ImGui::PushID(static_cast<int>(c));
    ImGui::ColorButton("##swatch", imgui_colour(colours.colours[c]),
                       ImGuiColorEditFlags_NoTooltip | ImGuiColorEditFlags_NoDragDrop, ImVec2(h, h));
    ImGui::PopID();
    ImGui::SameLine();
    ImGui::TextUnformatted(colours.names[c].c_str());
  }
  ImGui::SetNextItemWidth(160.0f);
  input_text("##export", ui.export_path);
  ImGui::SameLine();
  if (ImGui::Button("Export")) export_tsne(state, snapshot);
  ImGui::SameLine();
  if (ImGui::Button("Fit")) {
    ui.zoom = 1.0f;
    ui.pan_x = ui.pan_y = 0.0f;
  }
  ImGui::SameLine();
  ImGui::SetNextItemWidth(80.0f);
  ImGui::SliderFloat("point", &ui.point_size, 1.0f, 8.0f, "%.0f px");

  // The plot: the rest of the window above the selection list.
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float list_height = ui.selected.empty() ? 0.0f : std::min(160.0f, avail.y * 0.35f);
  const ImVec2 size(std::max(64.0f, avail.x), std::max(64.0f, avail.y - list_height));
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const Bounds b = bounds_of(map.embedding);
  // Map -> pixels within the plot: fit the bounds in the smaller side, then zoom and pan.
  const float fit = 0.5f * std::min(size.x, size.y) / b.half * ui.zoom;
  const float centre_x = 0.5f * size.x + ui.pan_x, centre_y = 0.5f * size.y + ui.pan_y;
  auto to_pixel = [&](float x, float y) {
    return ImVec2(origin.x + centre_x + (x - b.cx) * fit, origin.y + centre_y - (y - b.cy) * fit);
  };
  auto to_map = [&](ImVec2 p) {
    return ImVec2((p.x - origin.x - centre_x) / fit + b.cx, -(p.y - origin.y - centre_y) / fit + b.cy);
  };
  const int width = static_cast<int>(size.x), height = static_cast<int>(size.y);
  // Map -> NDC for the shader (texture rows are flipped by the Image's UVs).
  const float transform[4] = {2.0f * fit / size.x, 2.0f * fit / size.y,
                              2.0f * (centre_x - b.cx * fit) / size.x - 1.0f,
                              1.0f - 2.0f * (centre_y + b.cy * fit) / size.y};
  if (!map.embedding.empty()) render_points(map, transform, width, height, ui.point_size);
  if (texture_ != 0) {
    ImGui::Image(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(texture_)), size, ImVec2(0, 1), ImVec2(1, 0));
  } else {
    ImGui::InvisibleButton("##plot", size);
  }
  const bool hovered = ImGui::IsItemHovered();
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const ImGuiIO& io = ImGui::GetIO();

  if (ui.selected_map != map.id) {
    ui.selected.clear();
    ui.lasso.clear();
  }
  if (hovered && io.MouseWheel != 0.0f) {
    // Zoom about the mouse: keep the map point under it in place.
    const ImVec2 before = to_map(io.MousePos);
    ui.zoom = std::clamp(ui.zoom * std::pow(1.2f, io.MouseWheel), 0.2f, 200.0f);
    const float new_fit = 0.5f * std::min(size.x, size.y) / b.half * ui.zoom;
    ui.pan_x = io.MousePos.x - origin.x - 0.5f * size.x - (before.x - b.cx) * new_fit;
    ui.pan_y = io.MousePos.y - origin.y - 0.5f * size.y + (before.y - b.cy) * new_fit;
  }
  if (hovered && ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
    if (io.KeyShift) {
      ui.lasso.clear();
      ui.selected_map = map.id;
    } else {
      ui.lasso.clear();
    }
  }
  if (ImGui::IsMouseDragging(ImGuiMouseButton_Left) && (hovered || !ui.lasso.empty())) {
    if (io.KeyShift || !ui.lasso.empty()) {
      const ImVec2 p = to_map(io.MousePos);
      ui.lasso.push_back(p.x);
      ui.lasso.push_back(p.y);
    } else if (hovered) {
      ui.pan_x += io.MouseDelta.x;
      ui.pan_y += io.MouseDelta.y;
    }
  }
  if (ImGui::IsMouseReleased(ImGuiMouseButton_Left) && !ui.lasso.empty()) {
    ui.selected = points_in_polygon(map, ui.lasso);
    ui.selected_map = map.id;
    ui.lasso.clear();
  }
  draw->PushClipRect(origin, ImVec2(origin.x + size.x, origin.y + size.y), true);
  if (ui.lasso.size() >= 4) {
    std::vector<ImVec2> polygon;
    for (size_t i = 0; i + 1 < ui.lasso.size(); i += 2) polygon.push_back(to_pixel(ui.lasso[i], ui.lasso[i + 1]));
    draw->AddPolyline(polygon.data(), static_cast<int>(polygon.size()), IM_COL32(40, 40, 40, 255), ImDrawFlags_Closed,
                      1.5f);
  }
  // Selected points get a ring (at most a few thousand).
  for (size_t i = 0; i < ui.selected.size() && i < 4000; ++i) {
    const auto p = static_cast<size_t>(ui.selected[i]);
    if (2 * p + 1 >= map.embedding.size()) continue;
    draw->AddCircle(to_pixel(map.embedding[2 * p], map.embedding[2 * p + 1]), ui.point_size + 1.5f,
                    IM_COL32(20, 20, 20, 220), 8, 1.0f);
  }
  draw->PopClipRect();

  // Hover: the nearest point within a few pixels.
  if (hovered && ui.lasso.empty() && map.rows > 0) {
    int best = -1;
    float best_d = (ui.point_size + 4.0f) * (ui.point_size + 4.0f);
    for (size_t p = 0; 2 * p + 1 < map.embedding.size(); ++p) {
      const ImVec2 q = to_pixel(map.embedding[2 * p], map.embedding[2 * p + 1]);
      const float dx = q.x - io.MousePos.x, dy = q.y - io.MousePos.y;
      if (dx * dx + dy * dy < best_d) {
        best_d = dx * dx + dy * dy;
        best = static_cast<int>(p);
      }
    }
    if (best >= 0) {
      const TokenSource& s = map.sources[static_cast<size_t>(best % map.rows)];
      ImGui::BeginTooltip();
      const int category = colours.categories[static_cast<size_t>(best)];
      ImGui::TextColored(imgui_colour(colours.colours[static_cast<size_t>(category)]), "%s",
                         tsne_point_label(map, best).c_str());
      ImGui::PushTextWrapPos(ImGui::GetFontSize() * 30.0f);
      ImGui::Text("token '%s'", s.token.c_str());
      ImGui::TextWrapped("%s", context_line(s).c_str());
      ImGui::PopTextWrapPos();
      ImGui::TextDisabled("document %lld, position %lld%s%s", static_cast<long long>(s.document),
                          static_cast<long long>(s.position), s.source.empty() ? "" : ", ", s.source.c_str());
      ImGui::EndTooltip();
    }
  }

  if (!ui.selected.empty()) {
    ImGui::Text("%zu selected", ui.selected.size());
    ImGui::SameLine();
    if (ImGui::SmallButton("Clear")) ui.selected.clear();
    if (ImGui::BeginChild("##selected", ImVec2(0, 0), true)) {
      ImGuiListClipper clipper;
      clipper.Begin(static_cast<int>(ui.selected.size()));
      while (clipper.Step()) {
        for (int i = clipper.DisplayStart; i < clipper.DisplayEnd; ++i) {
          const int p = ui.selected[static_cast<size_t>(i)];
          if (map.rows == 0 || p < 0 || static_cast<size_t>(p) >= colours.categories.size()) continue;
          const TokenSource& s = map.sources[static_cast<size_t>(p % map.rows)];
          const int category = colours.categories[static_cast<size_t>(p)];
          ImGui::PushID(i);
          ImGui::TextColored(imgui_colour(colours.colours[static_cast<size_t>(category)]), "%s",
                             tsne_point_label(map, p).c_str());
          ImGui::SameLine();
          ImGui::TextUnformatted(context_line(s).c_str());
          ImGui::PopID();
        }
      }
      clipper.End();
    }
    ImGui::EndChild();
  }
  ImGui::End();
}

}  // namespace superpose::studio
