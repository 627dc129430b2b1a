// The studio's panels: each draws from AppState and the current Snapshot.
#pragma once

#include "app/studio/app_state.h"
#include "app/studio/worker.h"

namespace superpose::studio {

// Model directory field, Load button, status line and the loaded config.
struct ModelPanel {
  void draw(AppState& state, const Snapshot& snapshot, Worker& worker);
};

// The checkpoint's tensors: name, dtype, shape, bytes; filterable.
struct TensorPanel {
  void draw(AppState& state, const Snapshot& snapshot);
};

}  // namespace superpose::studio
