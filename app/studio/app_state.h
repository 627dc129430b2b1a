// Everything the studio's frames depend on besides the worker's snapshot.
#pragma once

#include <string>

namespace superpose::studio {

// Plain UI state: window visibility, inputs, selections. Frames are a
// function of this and the current Snapshot.
struct AppState {
  std::string model_dir_input;  // the path field of the model panel
  bool show_model = true;
  bool show_tensors = true;
  std::string tensor_filter;    // substring filter for the tensor table
};

}  // namespace superpose::studio
