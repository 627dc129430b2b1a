// The ImGui frame loop over a window or an offscreen framebuffer; screenshots for headless checks.
#include "app/studio/studio.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include <GL/gl.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>
#include <stb_image_write.h>

#include "app/studio/panels.h"
#include "app/studio/surface.h"

namespace superpose::studio {
namespace {

const char* const kFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
// Latin, Greek (α), punctuation and arrows, maths, box drawing, U+FFFD; ImGui keeps the pointer.
const ImWchar kGlyphRanges[] = {0x0020, 0x024F, 0x0370, 0x03FF, 0x2000, 0x22FF, 0x2500, 0x25FF, 0xFFFD, 0xFFFD, 0};

bool save_screenshot(const std::filesystem::path& path, int width, int height) {
  std::vector<unsigned char> pixels(static_cast<size_t>(width) * height * 4);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadPixels(0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE, pixels.data());
  stbi_flip_vertically_on_write(1);  // GL rows start at the bottom
  return stbi_write_png(path.c_str(), width, height, 4, pixels.data(), width * 4) != 0;
}

// DejaVu Sans at the display's content scale, with the glyphs the panels use
// (Latin, Greek α, arrows, box drawing, U+FFFD).
void load_fonts(float scale) {
  ImGuiIO& io = ImGui::GetIO();
  if (std::filesystem::exists(kFont)) {
    io.Fonts->AddFontFromFileTTF(kFont, 16.0f * scale, nullptr, kGlyphRanges);
  }
  ImGui::GetStyle().ScaleAllSizes(scale);
}

void open_at_start(const StudioOptions& options, AppState& state, Worker& worker) {
  LoadSettings load;
  load.device = options.device;
  state.device = options.device;
  state.model_dir_input = (options.model_dir.empty() ? default_model_dir() : options.model_dir).string();
  if (options.session) {
    apply_session(*options.session, state, worker);
  } else if (!options.base_dir.empty()) {
    state.base_dir = options.base_dir.string();
    state.fine_dir = options.fine_dir.string();
    worker.load_experts(options.base_dir, options.fine_dir, load);
  } else if (!options.superposition_dir.empty()) {
    state.superposition_dir = options.superposition_dir.string();
    worker.load_superposition(options.superposition_dir, load);
  } else if (!options.model_dir.empty()) {
    state.panels.model = state.panels.tensors = true;
    worker.load_model(options.model_dir);
  } else if (std::filesystem::exists(default_superposition_dir() / "superposition.json")) {
    state.superposition_dir = default_superposition_dir().string();
    worker.load_superposition(default_superposition_dir(), load);
  } else {
    state.app_message = "No default superposition at " + default_superposition_dir().string() +
                        ": open one with File > Open… (Ctrl+O) or --superposition DIR";
    state.app_error = true;
  }
}

void main_menu(AppState& state, const Snapshot& snapshot, Worker& worker) {
  if (!ImGui::BeginMainMenuBar()) return;
  if (ImGui::BeginMenu("File")) {
    if (ImGui::MenuItem("Open…", "Ctrl+O")) show_open_dialog(state, snapshot);
    ImGui::Separator();
    ImGui::SetNextItemWidth(260.0f);
    input_text("session file", state.session_path);
    if (ImGui::MenuItem("Save session")) {
      try {
        save_session(capture_session(state, snapshot), state.session_path);
        state.app_message = "Saved " + state.session_path;
        state.app_error = false;
      } catch (const std::exception& e) {
        state.app_message = e.what();
        state.app_error = true;
      }
    }
    if (ImGui::MenuItem("Open session")) {
      try {
        const Session session = load_session(state.session_path);
        apply_session(session, state, worker);
        state.app_message = "Opened " + state.session_path;
        state.app_error = false;
      } catch (const std::exception& e) {
        state.app_message = e.what();
        state.app_error = true;
      }
    }
    ImGui::Separator();
    ImGui::SetNextItemWidth(260.0f);
    input_text("superposition", state.superposition_dir);
    if (ImGui::MenuItem("Load superposition", nullptr, false, !state.superposition_dir.empty())) {
      LoadSettings load;
      load.device = state.device;
      state.base_dir.clear();
      state.fine_dir.clear();
      state.forget_alpha_edits();
      worker.load_superposition(state.superposition_dir, load);
    }
    ImGui::EndMenu();
  }
  if (ImGui::BeginMenu("View")) {
    ImGui::MenuItem("Generate", nullptr, &state.panels.generate);
    ImGui::MenuItem("Alpha", nullptr, &state.panels.alpha);
    ImGui::MenuItem("Layers", nullptr, &state.panels.layers);
    ImGui::MenuItem("Model", nullptr, &state.panels.model);
    ImGui::MenuItem("Tensors", nullptr, &state.panels.tensors);
    ImGui::Separator();
    ImGui::MenuItem("t-SNE", nullptr, &state.panels.tsne);
    ImGui::MenuItem("Neurons", nullptr, &state.panels.neurons);
    ImGui::MenuItem("Trajectories", nullptr, &state.panels.trajectories);
    ImGui::MenuItem("Metrics", nullptr, &state.panels.metrics);
    ImGui::EndMenu();
  }
  ImGui::EndMainMenuBar();
}

void shortcuts(AppState& state, const Snapshot& snapshot, Worker& worker) {
  const ImGuiIO& io = ImGui::GetIO();
  auto pressed = [](ImGuiKey key) { return ImGui::IsKeyPressed(ImGui::GetKeyIndex(key), false); };
  if (io.KeyCtrl && (pressed(ImGuiKey_Enter) || pressed(ImGuiKey_KeyPadEnter)) && snapshot.superposition) {
    start_generation(state, worker);
  }
  if (pressed(ImGuiKey_Escape) && snapshot.generation.running) worker.stop_generation();
  // Dear ImGui 1.86 names only the editing letters; the GLFW backend fills
  // KeysDown by GLFW key code, so O is asked for by that code (GLFW_KEY_O).
  constexpr int kGlfwKeyO = 79;
  if (io.KeyCtrl && ImGui::IsKeyPressed(kGlfwKeyO, false)) show_open_dialog(state, snapshot);
  // Ctrl+Z / Ctrl+Y undo α edits unless a text field has the keyboard.
  if (io.KeyCtrl && !io.WantTextInput) {
    if (pressed(ImGuiKey_Z)) undo_alpha(state, snapshot, worker);
    if (pressed(ImGuiKey_Y)) redo_alpha(state, snapshot, worker);
  }
}

}  // namespace

std::filesystem::path default_superposition_dir() {
  return std::filesystem::path(SUPERPOSE_SOURCE_DIR) / "assets/models/superposition-1d";
}

std::filesystem::path default_model_dir() {
  const std::filesystem::path source(SUPERPOSE_SOURCE_DIR);
  if (std::filesystem::exists(source / "assets/models/base/config.json")) return source / "assets/models/base";
  return source / "tests/fixtures/gpt2-tiny";
}

int run_studio(const StudioOptions& options) {
  std::string error;
  const std::unique_ptr<Surface> surface =
      options.offscreen ? open_offscreen(options.width, options.height, error)
                        : open_window(options.width, options.height, !options.screenshot && !options.script, error);
  if (!surface) {
    std::fprintf(stderr, "superpose-studio: %s%s\n", options.offscreen ? "--offscreen: " : "", error.c_str());
    return 1;
  }

  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // layouts are not persisted yet
  ImGui::StyleColorsDark();
  load_fonts(surface->content_scale());
  surface->attach_imgui();
  ImGui_ImplOpenGL3_Init("#version 130");

  AppState state;
  if (const auto* renderer = reinterpret_cast<const char*>(glGetString(GL_RENDERER))) state.renderer = renderer;
  Worker worker;
  open_at_start(options, state, worker);
  ModelPanel model_panel;
  TensorPanel tensor_panel;
  GeneratePanel generate_panel;
  AlphaPanel alpha_panel;
  LayersPanel layers_panel;
  TsnePanel tsne_panel;
  NeuronsPanel neurons_panel;
  TrajectoriesPanel trajectories_panel;
  MetricsPanel metrics_panel;
  OpenDialog open_dialog;
  StatusBar status_bar;

  int frame = 0;
  int exit_code = 0;
  bool script_running = static_cast<bool>(options.script);
  while (!surface->should_close()) {
    // For a screenshot, wait for the worker so the picture shows the loaded model.
    if (options.screenshot && worker.busy()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto snapshot = worker.snapshot();
    if (script_running) {
      ScriptFrame script_frame{frame, worker, state, *snapshot};
      script_running = options.script(script_frame);
      snapshot = worker.snapshot();
    }

    ImGui_ImplOpenGL3_NewFrame();
    surface->begin_frame();
    ImGui::NewFrame();
    shortcuts(state, *snapshot, worker);
    main_menu(state, *snapshot, worker);

    const float scale = ImGui::GetFontSize() / 16.0f;
    const float top = ImGui::GetFrameHeight() + 6.0f;
    const float w = static_cast<float>(options.width), h = static_cast<float>(options.height) - top - 40.0f * scale;
    ImGui::SetNextWindowPos(ImVec2(6, top), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.5f - 9, h * 0.55f), ImGuiCond_FirstUseEver);
    generate_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(w * 0.5f + 3, top), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.5f - 9, h * 0.55f), ImGuiCond_FirstUseEver);
    alpha_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(6, top + h * 0.55f + 6), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.5f - 9, h * 0.45f - 6), ImGuiCond_FirstUseEver);
    layers_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(w * 0.5f + 3, top + h * 0.55f + 6), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.25f - 6, h * 0.45f - 6), ImGuiCond_FirstUseEver);
    model_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(w * 0.75f, top + h * 0.55f + 6), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.25f - 6, h * 0.45f - 6), ImGuiCond_FirstUseEver);
    tensor_panel.draw(state, *snapshot);
    // The analysis panels open over the others, large enough for their plots.
    ImGui::SetNextWindowPos(ImVec2(w * 0.30f, top + 20.0f), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.45f, h * 0.62f), ImGuiCond_FirstUseEver);
    tsne_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(w * 0.20f, top + h * 0.50f), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.60f, h * 0.48f), ImGuiCond_FirstUseEver);
    neurons_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(w * 0.05f, top + 40.0f), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.45f, h * 0.60f), ImGuiCond_FirstUseEver);
    trajectories_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(w * 0.50f, top + 60.0f), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(w * 0.48f, h * 0.60f), ImGuiCond_FirstUseEver);
    metrics_panel.draw(state, *snapshot, worker);
    open_dialog.draw(state, *snapshot, worker);
    status_bar.draw(state, *snapshot, worker);
    ImGui::Render();

    int width = 0, height = 0;
    surface->bind_framebuffer(width, height);
    glViewport(0, 0, width, height);
    glClearColor(0.10f, 0.11f, 0.13f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());

    ++frame;
    const bool script_done = options.script && !script_running;
    const bool screenshot_due = options.screenshot && frame >= options.frames && !script_running && !worker.busy();
    if (screenshot_due) {
      if (!save_screenshot(*options.screenshot, width, height)) {
        std::fprintf(stderr, "superpose-studio: %s: cannot write the screenshot\n", options.screenshot->c_str());
        exit_code = 1;
      }
      surface->request_close();
    } else if (script_done && !options.screenshot) {
      surface->request_close();
    }
    surface->end_frame();
  }

  tsne_panel.release();
  ImGui_ImplOpenGL3_Shutdown();
  surface->detach_imgui();
  ImGui::DestroyContext();
  return exit_code;
}

}  // namespace superpose::studio
