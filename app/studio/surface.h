// Where the studio's frames go: a GLFW window on a display, or an offscreen
// OpenGL framebuffer made through EGL (no display needed: servers, CI, docs).
#pragma once

#include <memory>
#include <string>

namespace superpose::studio {

class Surface {
 public:
  virtual ~Surface() = default;

  // Connects Dear ImGui's platform side (input, display size, time) to this
  // surface; call once after ImGui::CreateContext(), and detach before
  // ImGui::DestroyContext().
  virtual void attach_imgui() = 0;
  virtual void detach_imgui() = 0;

  // Polls input and starts the platform side of an ImGui frame.
  virtual void begin_frame() = 0;
  // Makes the frame's framebuffer current and returns its size in pixels.
  virtual void bind_framebuffer(int& width, int& height) = 0;
  // Shows the frame (window) or waits until the GPU has drawn it (offscreen).
  virtual void end_frame() = 0;

  virtual bool should_close() const = 0;
  virtual void request_close() = 0;
  // Display scale for fonts (1 where unknown).
  virtual float content_scale() const = 0;
};

// A window with an OpenGL 3.0 context current; vsync paces it when asked.
// Returns null with `error` set when there is no display or no such context.
std::unique_ptr<Surface> open_window(int width, int height, bool vsync, std::string& error);

// An offscreen OpenGL 3.0 framebuffer of width × height, through EGL: a GPU
// device when the driver offers one, else Mesa's software renderer. Returns
// null with `error` set when EGL or such a context is not available.
std::unique_ptr<Surface> open_offscreen(int width, int height, std::string& error);

}  // namespace superpose::studio
