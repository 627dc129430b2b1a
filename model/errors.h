// User and data errors: what goes wrong because of a file, an argument or an
// input, as opposed to a bug (those are assertions / TORCH_CHECK).
#pragma once

#include <stdexcept>
#include <string>

namespace superpose {

// A user or data error. what() is one line that names the file, tensor or
// argument and says what is wrong with it; the CLI prints it as is and the app
// shows it in a message. Thrown by every loader and parser in the project.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
  // "where: what", e.g. Error("model.safetensors", "header length 9e9 exceeds file size 812").
  Error(const std::string& where, const std::string& what)
      : std::runtime_error(where + ": " + what) {}
};

}  // namespace superpose
