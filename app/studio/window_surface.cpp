// The studio's window: GLFW with an OpenGL 3.0 context and ImGui's GLFW backend.
#include <algorithm>
#include <cstdio>

#define GLFW_INCLUDE_NONE
#include <GL/gl.h>
#include <GLFW/glfw3.h>
#include <backends/imgui_impl_glfw.h>

#include "app/studio/surface.h"

namespace superpose::studio {
namespace {

class WindowSurface final : public Surface {
 public:
  explicit WindowSurface(GLFWwindow* window) : window_(window) {}
  ~WindowSurface() override {
    glfwDestroyWindow(window_);
    glfwTerminate();
  }

  void attach_imgui() override { ImGui_ImplGlfw_InitForOpenGL(window_, true); }
  void detach_imgui() override { ImGui_ImplGlfw_Shutdown(); }

  void begin_frame() override {
    glfwPollEvents();
    ImGui_ImplGlfw_NewFrame();
  }
  void bind_framebuffer(int& width, int& height) override { glfwGetFramebufferSize(window_, &width, &height); }
  void end_frame() override { glfwSwapBuffers(window_); }

  bool should_close() const override { return glfwWindowShouldClose(window_) != 0; }
  void request_close() override { glfwSetWindowShouldClose(window_, 1); }
  float content_scale() const override {
    float x = 1.0f, y = 1.0f;
    glfwGetWindowContentScale(window_, &x, &y);
    return std::max(1.0f, std::max(x, y));
  }

 private:
  GLFWwindow* window_;
};

}  // namespace

std::unique_ptr<Surface> open_window(int width, int height, bool vsync, std::string& error) {
  glfwSetErrorCallback([](int code, const char* text) { std::fprintf(stderr, "glfw error %d: %s\n", code, text); });
  if (!glfwInit()) {
    error = "cannot open a window (no display? try xvfb-run, or --offscreen)";
    return nullptr;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 0);
  GLFWwindow* window = glfwCreateWindow(width, height, "Superposition Studio", nullptr, nullptr);
  if (!window) {
    error = "cannot create an OpenGL 3.0 window";
    glfwTerminate();
    return nullptr;
  }
  glfwMakeContextCurrent(window);
  glfwSwapInterval(vsync ? 1 : 0);
  return std::make_unique<WindowSurface>(window);
}

}  // namespace superpose::studio
