// Window, OpenGL context and the ImGui frame loop; screenshots for headless checks.
#include "app/studio/studio.h"

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#define GLFW_INCLUDE_NONE
#include <GL/gl.h>
#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>
#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>
#include <stb_image_write.h>

#include "app/studio/app_state.h"
#include "app/studio/panels.h"
#include "app/studio/worker.h"

namespace superpose::studio {
namespace {

const char* const kFont = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

bool save_screenshot(const std::filesystem::path& path, int width, int height) {
  std::vector<unsigned char> pixels(static_cast<size_t>(width) * height * 4);
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadPixels(0, 0, width, height, GL_RGBA, GL_UNSIGNED_BYTE, pixels.data());
  stbi_flip_vertically_on_write(1);  // GL rows start at the bottom
  return stbi_write_png(path.c_str(), width, height, 4, pixels.data(), width * 4) != 0;
}

}  // namespace

std::filesystem::path default_model_dir() {
  const std::filesystem::path source(SUPERPOSE_SOURCE_DIR);
  if (std::filesystem::exists(source / "assets/models/base/config.json")) return source / "assets/models/base";
  return source / "tests/fixtures/gpt2-tiny";
}

int run_studio(const StudioOptions& options) {
  glfwSetErrorCallback([](int code, const char* text) { std::fprintf(stderr, "glfw error %d: %s\n", code, text); });
  if (!glfwInit()) {
    std::fprintf(stderr, "superpose-studio: cannot open a window (no display? try xvfb-run)\n");
    return 1;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  GLFWwindow* window = glfwCreateWindow(options.width, options.height, "Superposition Studio", nullptr, nullptr);
  if (!window) {
    std::fprintf(stderr, "superpose-studio: cannot create an OpenGL 3.0 window\n");
    glfwTerminate();
    return 1;
  }
  glfwMakeContextCurrent(window);
  glfwSwapInterval(1);

  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // layouts are not persisted yet
  if (std::filesystem::exists(kFont)) io.Fonts->AddFontFromFileTTF(kFont, 16.0f);
  ImGui::StyleColorsDark();
  ImGui_ImplGlfw_InitForOpenGL(window, true);
  ImGui_ImplOpenGL3_Init("#version 130");

  AppState state;
  state.model_dir_input = (options.model_dir.empty() ? default_model_dir() : options.model_dir).string();
  Worker worker;
  worker.load_model(state.model_dir_input);
  ModelPanel model_panel;
  TensorPanel tensor_panel;

  int frame = 0;
  int exit_code = 0;
  while (!glfwWindowShouldClose(window)) {
    glfwPollEvents();
    // For a screenshot, wait for the worker so the picture shows the loaded model.
    if (options.screenshot && worker.busy()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const auto snapshot = worker.snapshot();

    ImGui_ImplOpenGL3_NewFrame();
    ImGui_ImplGlfw_NewFrame();
    ImGui::NewFrame();
    ImGui::SetNextWindowPos(ImVec2(10, 10), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(520, 480), ImGuiCond_FirstUseEver);
    model_panel.draw(state, *snapshot, worker);
    ImGui::SetNextWindowPos(ImVec2(540, 10), ImGuiCond_FirstUseEver);
    ImGui::SetNextWindowSize(ImVec2(720, 760), ImGuiCond_FirstUseEver);
    tensor_panel.draw(state, *snapshot);
    ImGui::Render();

    int width = 0, height = 0;
    glfwGetFramebufferSize(window, &width, &height);
    glViewport(0, 0, width, height);
    glClearColor(0.10f, 0.11f, 0.13f, 1.0f);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());

    ++frame;
    if (options.screenshot && frame >= options.frames && !worker.busy()) {
      if (!save_screenshot(*options.screenshot, width, height)) {
        std::fprintf(stderr, "superpose-studio: %s: cannot write the screenshot\n", options.screenshot->c_str());
        exit_code = 1;
      }
      glfwSetWindowShouldClose(window, 1);
    }
    glfwSwapBuffers(window);
  }

  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(window);
  glfwTerminate();
  return exit_code;
}

}  // namespace superpose::studio
