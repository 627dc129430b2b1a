// The 1D α spline's control points as the Alpha panel shows them: control
// points that give the α in force, whichever edit (drag, per-layer or global
// slider, reset, undo, a session) put it there. Plain data, no window.
#pragma once

#include <cstdint>
#include <vector>

#include "app/studio/worker.h"

namespace superpose::studio {

// The largest |α difference| at a layer for control points to count as
// giving the α in force (α is float32 in [0, 1]; the sliders show 3 decimals).
inline constexpr float kSplineTolerance = 1e-5f;

// Control points to draw, and how well they give the α in force.
struct SplineControls {
  std::vector<float> points;  // (K)
  // clamp(basis · points + 0.1 bias, 0, 1) is the α in force within
  // kSplineTolerance at every layer. False only where no control points give
  // it (more layers than control points): `points` are then a least-squares fit.
  bool exact = false;
  float worst = 0.0f;        // the largest |difference| over layers
  int64_t worst_layer = 0;   // where it is
};

// The control points to show for a 1D superposition (info.n_control > 0):
// - the learned ones while the learned α is in force;
// - else `reference` (K values: the control points last dragged or restored
//   by Undo/Redo; another size counts as the learned ones) where it gives the
//   α in force;
// - else the control points nearest to `reference` (least Euclidean change)
//   that give it: reference + Bᵀ(BBᵀ)⁻¹r for the residual r of the layers it
//   misses (a layer clamped at 0 or 1 that the reference also pushes past the
//   bound counts as met); with more layers than control points, the
//   least-squares solution (BᵀB)⁻¹Bᵀ instead.
// The nearest change keeps the other squares still where an edit touched one
// layer, and brings them back exactly when Undo restores that layer's α.
SplineControls spline_controls_in_force(const SuperpositionInfo& info, const std::vector<float>& reference);

}  // namespace superpose::studio
