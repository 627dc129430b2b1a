// Offscreen frames through EGL: an OpenGL context without a display, drawing
// into a framebuffer object. GPU devices come first (EGL_EXT_platform_device),
// then Mesa's software device and surfaceless platform.
#include <cfloat>
#include <chrono>
#include <cstring>
#include <vector>

#include <EGL/egl.h>
#include <EGL/eglext.h>
#define GL_GLEXT_PROTOTYPES
#include <GL/gl.h>
#include <GL/glext.h>
#include <imgui.h>

#include "app/studio/surface.h"

namespace superpose::studio {
namespace {

class OffscreenSurface final : public Surface {
 public:
  OffscreenSurface(EGLDisplay display, EGLContext context, int width, int height)
      : display_(display), context_(context), width_(width), height_(height) {}
  ~OffscreenSurface() override {
    if (fbo_) glDeleteFramebuffers(1, &fbo_);
    if (colour_) glDeleteRenderbuffers(1, &colour_);
    eglMakeCurrent(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    eglDestroyContext(display_, context_);
    eglTerminate(display_);
  }

  // An RGBA8 colour buffer of the surface's size, bound for drawing and reading.
  bool make_framebuffer() {
    glGenRenderbuffers(1, &colour_);
    glBindRenderbuffer(GL_RENDERBUFFER, colour_);
    glRenderbufferStorage(GL_RENDERBUFFER, GL_RGBA8, width_, height_);
    glGenFramebuffers(1, &fbo_);
    glBindFramebuffer(GL_FRAMEBUFFER, fbo_);
    glFramebufferRenderbuffer(GL_FRAMEBUFFER, GL_COLOR_ATTACHMENT0, GL_RENDERBUFFER, colour_);
    return glCheckFramebufferStatus(GL_FRAMEBUFFER) == GL_FRAMEBUFFER_COMPLETE;
  }

  void attach_imgui() override {
    ImGui::GetIO().BackendPlatformName = "superpose-studio offscreen";
    last_ = std::chrono::steady_clock::now();
  }
  void detach_imgui() override { ImGui::GetIO().BackendPlatformName = nullptr; }

  // No input: the display size and the clock are all ImGui needs.
  void begin_frame() override {
    ImGuiIO& io = ImGui::GetIO();
    io.DisplaySize = ImVec2(static_cast<float>(width_), static_cast<float>(height_));
    io.DisplayFramebufferScale = ImVec2(1.0f, 1.0f);
    const auto now = std::chrono::steady_clock::now();
    const float dt = std::chrono::duration<float>(now - last_).count();
    io.DeltaTime = dt > 0.0f ? dt : 1.0f / 60.0f;
    last_ = now;
    io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
  }
  void bind_framebuffer(int& width, int& height) override {
    glBindFramebuffer(GL_FRAMEBUFFER, fbo_);
    width = width_;
    height = height_;
  }
  // The frame counts as drawn once the GPU has finished it.
  void end_frame() override { glFinish(); }

  bool should_close() const override { return closed_; }
  void request_close() override { closed_ = true; }
  float content_scale() const override { return 1.0f; }

 private:
  EGLDisplay display_;
  EGLContext context_;
  int width_, height_;
  GLuint fbo_ = 0, colour_ = 0;
  bool closed_ = false;
  std::chrono::steady_clock::time_point last_;
};

template <typename Function>
Function egl_function(const char* name) {
  return reinterpret_cast<Function>(eglGetProcAddress(name));
}

// The displays to try, GPUs first.
std::vector<EGLDisplay> candidate_displays() {
  const auto platform_display = egl_function<PFNEGLGETPLATFORMDISPLAYEXTPROC>("eglGetPlatformDisplayEXT");
  const auto query_devices = egl_function<PFNEGLQUERYDEVICESEXTPROC>("eglQueryDevicesEXT");
  const auto device_string = egl_function<PFNEGLQUERYDEVICESTRINGEXTPROC>("eglQueryDeviceStringEXT");
  std::vector<EGLDisplay> gpus, software;
  if (platform_display && query_devices) {
    EGLDeviceEXT devices[32];
    EGLint count = 0;
    if (query_devices(32, devices, &count)) {
      for (EGLint i = 0; i < count; ++i) {
        const char* extensions = device_string ? device_string(devices[i], EGL_EXTENSIONS) : nullptr;
        const bool is_software = extensions && std::strstr(extensions, "EGL_MESA_device_software");
        const EGLDisplay display = platform_display(EGL_PLATFORM_DEVICE_EXT, devices[i], nullptr);
        if (display != EGL_NO_DISPLAY) (is_software ? software : gpus).push_back(display);
      }
    }
  }
  gpus.insert(gpus.end(), software.begin(), software.end());
  if (platform_display) {
    const EGLDisplay display = platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
    if (display != EGL_NO_DISPLAY) gpus.push_back(display);
  }
  return gpus;
}

// An OpenGL 3.0 context on `display`, current without a surface; none if the
// display cannot give one.
EGLContext make_context(EGLDisplay display) {
  EGLint major = 0, minor = 0;
  if (!eglInitialize(display, &major, &minor)) return EGL_NO_CONTEXT;
  const char* extensions = eglQueryString(display, EGL_EXTENSIONS);
  const EGLint config_attributes[] = {EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT,
                                      EGL_RED_SIZE,        8,              EGL_GREEN_SIZE,   8,
                                      EGL_BLUE_SIZE,       8,              EGL_NONE};
  const EGLint context_attributes[] = {EGL_CONTEXT_MAJOR_VERSION, 3, EGL_CONTEXT_MINOR_VERSION, 0, EGL_NONE};
  EGLConfig config = nullptr;
  EGLint configs = 0;
  EGLContext context = EGL_NO_CONTEXT;
  if (extensions && std::strstr(extensions, "EGL_KHR_surfaceless_context") && eglBindAPI(EGL_OPENGL_API) &&
      eglChooseConfig(display, config_attributes, &config, 1, &configs) && configs > 0) {
    context = eglCreateContext(display, config, EGL_NO_CONTEXT, context_attributes);
  }
  if (context != EGL_NO_CONTEXT && eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, context)) return context;
  if (context != EGL_NO_CONTEXT) eglDestroyContext(display, context);
  eglTerminate(display);
  return EGL_NO_CONTEXT;
}

}  // namespace

std::unique_ptr<Surface> open_offscreen(int width, int height, std::string& error) {
  for (const EGLDisplay display : candidate_displays()) {
    const EGLContext context = make_context(display);
    if (context == EGL_NO_CONTEXT) continue;
    auto surface = std::make_unique<OffscreenSurface>(display, context, width, height);
    if (surface->make_framebuffer()) return surface;
    error = "the offscreen OpenGL context cannot make a " + std::to_string(width) + "x" + std::to_string(height) +
            " framebuffer";
    return nullptr;
  }
  error = "no EGL display gives an offscreen OpenGL 3.0 context (no GPU driver's EGL and no Mesa)";
  return nullptr;
}

}  // namespace superpose::studio
