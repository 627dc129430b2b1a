// The α plot's control points without a window: they give the α in force
// after every kind of edit (a drag, a per-layer or global slider, undo and
// redo through the Alpha panel's own commands), move as little as they can,
// and are the least-squares fit where no control points give the α.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "app/studio/alpha_spline.h"
#include "app/studio/app_state.h"
#include "app/studio/panels.h"
#include "model/alpha.h"
#include "tests/app/worker_wait.h"

namespace superpose::studio {
namespace {

using superpose::testing::wait_idle;

// The largest |a - b| and where it is, for messages.
struct Worst {
  double value = 0.0;
  size_t at = 0;
};
template <typename A, typename B>
Worst worst_difference(const A& a, const B& b) {
  Worst w;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
    if (d > w.value) w = {d, i};
  }
  return w;
}

// α of control points `control` under `info`'s spline.
std::vector<float> spline_alpha(const SuperpositionInfo& info, const std::vector<float>& control) {
  return alpha_from_control_points(info.alpha_basis, control, info.layer_bias);
}

// Expects `shown` to give the α in force within kSplineTolerance at every layer.
void expect_gives_alpha_in_force(const SuperpositionInfo& info, const SplineControls& shown) {
  ASSERT_EQ(shown.points.size(), static_cast<size_t>(info.n_control));
  EXPECT_TRUE(shown.exact) << "worst layer " << shown.worst_layer << " off by " << shown.worst;
  const Worst w = worst_difference(spline_alpha(info, shown.points), info.alpha_in_force);
  EXPECT_LE(w.value, kSplineTolerance) << "layer " << w.at;
}

// A 1D spline of K control points over L layers, as the worker publishes it:
// seeded control points in [0.3, 0.7] and biases in [-0.5, 0.5], so that the
// learned α stays inside (0, 1).
SuperpositionInfo synthetic_spline(int64_t layers, int64_t n_control) {
  SuperpositionInfo info;
  info.variant = "1d";
  info.n_layer = layers;
  info.alpha_shape = {layers};
  info.n_control = n_control;
  info.degree = 3;
  const torch::Tensor basis = bspline_basis(n_control, 3, layers).to(torch::kFloat32).contiguous();  // (L,K)
  info.alpha_basis.assign(basis.data_ptr<float>(), basis.data_ptr<float>() + basis.numel());
  torch::manual_seed(3);
  const torch::Tensor control = (0.3 + 0.4 * torch::rand({n_control})).contiguous();
  const torch::Tensor bias = (torch::rand({layers}) - 0.5).contiguous();
  info.control_points.assign(control.data_ptr<float>(), control.data_ptr<float>() + n_control);
  info.layer_bias.assign(bias.data_ptr<float>(), bias.data_ptr<float>() + layers);
  info.alpha_learned = spline_alpha(info, info.control_points);
  info.alpha_in_force = info.alpha_learned;
  return info;
}

// The reference's nearest correction in float64: reference + pinv(B) r, r the
// residual of the unclamped spline (no layer is clamped in these cases).
std::vector<double> pinv_correction(const SuperpositionInfo& info, const std::vector<float>& reference) {
  const int64_t layers = info.n_layer, n_control = info.n_control;
  const auto b = torch::tensor(info.alpha_basis, torch::kFloat64).view({layers, n_control});
  const auto c = torch::tensor(reference, torch::kFloat64);
  const auto target = torch::tensor(info.alpha_in_force, torch::kFloat64) -
                      0.1 * torch::tensor(info.layer_bias, torch::kFloat64);
  const auto out = (c + torch::matmul(torch::linalg_pinv(b), target - torch::matmul(b, c))).contiguous();
  return std::vector<double>(out.data_ptr<double>(), out.data_ptr<double>() + out.numel());
}

TEST(SplineControls, TheLearnedOnesWhileTheLearnedAlphaIsInForce) {
  SuperpositionInfo info = synthetic_spline(12, 16);
  const std::vector<float> dragged(16, 0.9f);  // a reference left over from an earlier edit
  const SplineControls shown = spline_controls_in_force(info, dragged);
  EXPECT_EQ(shown.points, info.control_points);
  EXPECT_TRUE(shown.exact) << shown.worst;
}

TEST(SplineControls, FollowAPerLayerEditWithTheLeastChangeAndComeBackAfterIt) {
  // GPT-2 small's shape: more control points than layers, so every α in
  // (0, 1) has control points that give it; the nearest ones are shown.
  SuperpositionInfo info = synthetic_spline(12, 16);
  const std::vector<float> reference = info.control_points;
  info.alpha_overridden = true;
  info.alpha_in_force[5] = 0.9f;  // the layer 5 slider
  const SplineControls shown = spline_controls_in_force(info, reference);
  expect_gives_alpha_in_force(info, shown);
  const Worst from_pinv = worst_difference(shown.points, pinv_correction(info, reference));
  EXPECT_LE(from_pinv.value, 1e-5) << "control point " << from_pinv.at;

  // The slider back where it was: the squares are back where they were,
  // from the reference and from the squares shown meanwhile alike.
  info.alpha_in_force = info.alpha_learned;
  EXPECT_EQ(spline_controls_in_force(info, reference).points, reference);
  const Worst back = worst_difference(spline_controls_in_force(info, shown.points).points, reference);
  EXPECT_LE(back.value, 1e-5) << "control point " << back.at;

  // The global slider: one α everywhere, given exactly too.
  info.alpha_in_force.assign(12, 0.25f);
  expect_gives_alpha_in_force(info, spline_controls_in_force(info, reference));
}

TEST(SplineControls, ALayerClampedLikeTheReferenceStaysAsItIs) {
  SuperpositionInfo info = synthetic_spline(12, 16);
  std::vector<float> reference = info.control_points;
  reference[0] = -0.6f;  // dragged below 0: layer 0's spline is < 0, clamped to α = 0
  info.alpha_overridden = true;
  info.alpha_in_force = spline_alpha(info, reference);
  ASSERT_EQ(info.alpha_in_force[0], 0.0f);
  EXPECT_EQ(spline_controls_in_force(info, reference).points, reference);  // gives it already
  info.alpha_in_force[6] = 0.05f;
  const SplineControls shown = spline_controls_in_force(info, reference);
  expect_gives_alpha_in_force(info, shown);
  EXPECT_EQ(spline_alpha(info, shown.points)[0], 0.0f);
}

TEST(SplineControls, ALeastSquaresFitWhereNoControlPointsGiveTheAlpha) {
  // More layers than control points: a single-layer edit leaves the spline.
  SuperpositionInfo info = synthetic_spline(48, 8);
  info.alpha_overridden = true;
  info.alpha_in_force[20] = std::min(info.alpha_in_force[20] + 0.3f, 0.95f);
  const SplineControls shown = spline_controls_in_force(info, info.control_points);
  EXPECT_FALSE(shown.exact);
  EXPECT_GT(shown.worst, 0.01f);
  const std::vector<float> alpha = spline_alpha(info, shown.points);
  const Worst w = worst_difference(alpha, info.alpha_in_force);
  EXPECT_FLOAT_EQ(shown.worst, static_cast<float>(w.value));
  EXPECT_EQ(shown.worst_layer, static_cast<int64_t>(w.at));
  // Least squares: the same points as pinv(B)(α - 0.1 b), wherever it starts.
  const Worst from_pinv = worst_difference(shown.points, pinv_correction(info, info.control_points));
  EXPECT_LE(from_pinv.value, 1e-4) << "control point " << from_pinv.at;
  const Worst other_start =
      worst_difference(spline_controls_in_force(info, std::vector<float>(8, 0.5f)).points, shown.points);
  EXPECT_LE(other_start.value, 1e-4) << "control point " << other_start.at;
}

// The Alpha panel's commands on a real worker: the control points the plot
// shows give the α in force after each edit, and Undo/Redo bring back the
// control points shown before.
class AlphaPanelSplineTest : public superpose::testing::TinyWorkerTest {
 protected:
  const SuperpositionInfo& info() {
    snapshot_ = wait_idle(worker_);
    return *snapshot_->superposition;
  }
  // What the α plot draws gives the α in force.
  void expect_plot_gives_alpha_in_force() {
    const std::vector<float> points = shown_control_points(state_, info());
    ASSERT_EQ(points.size(), static_cast<size_t>(info().n_control));
    const Worst w = worst_difference(spline_alpha(info(), points), info().alpha_in_force);
    EXPECT_LE(w.value, kSplineTolerance) << "layer " << w.at;
  }
  std::shared_ptr<const Snapshot> snapshot_;
  AppState state_;
};

TEST_F(AlphaPanelSplineTest, ShownControlPointsFollowEveryEditAndUndo) {
  ASSERT_GT(info().n_control, 0);
  const std::vector<float> learned = info().control_points;
  std::vector<std::vector<float>> alphas = {info().alpha_in_force}, shown = {shown_control_points(state_, info())};
  EXPECT_EQ(shown[0], learned);

  // Drag control point 7 to 0.8 and let go.
  begin_control_drag(state_, info(), 7);
  drag_control_point(state_, info(), worker_, 0.8f);
  const std::vector<float> dragged = state_.control_edit;
  state_.dragged_control = -1;
  EXPECT_EQ(dragged[7], 0.8f);
  EXPECT_EQ(info().alpha_in_force, spline_alpha(info(), dragged)) << snapshot_->message;
  EXPECT_EQ(shown_control_points(state_, info()), dragged);
  alphas.push_back(info().alpha_in_force);
  shown.push_back(dragged);

  // The layer 0 slider, as the panel sends it: the dragged control points no
  // longer give the α in force (what the plot used to keep drawing).
  record_alpha_edit(state_, info());
  worker_.set_alpha_layer(0, 0.9);
  const std::vector<float> stale_alpha = spline_alpha(info(), state_.control_edit);
  EXPECT_GT(std::abs(stale_alpha[0] - info().alpha_in_force[0]), 0.01f);
  expect_plot_gives_alpha_in_force();
  alphas.push_back(info().alpha_in_force);
  shown.push_back(shown_control_points(state_, info()));

  // The global slider.
  record_alpha_edit(state_, info());
  worker_.set_alpha_global(0.25);
  EXPECT_EQ(info().alpha_in_force, std::vector<float>(3, 0.25f));
  expect_plot_gives_alpha_in_force();
  alphas.push_back(info().alpha_in_force);
  shown.push_back(shown_control_points(state_, info()));

  // Undo three times, then redo three times: the α and the squares of each step.
  for (int step = 2; step >= 0; --step) {
    SCOPED_TRACE("undo to step " + std::to_string(step));
    undo_alpha(state_, *snapshot_, worker_);
    EXPECT_EQ(info().alpha_in_force, alphas[static_cast<size_t>(step)]) << snapshot_->message;
    EXPECT_EQ(shown_control_points(state_, info()), shown[static_cast<size_t>(step)]);
    expect_plot_gives_alpha_in_force();
  }
  EXPECT_TRUE(state_.alpha_history.undo.empty());
  for (int step = 1; step <= 3; ++step) {
    SCOPED_TRACE("redo to step " + std::to_string(step));
    redo_alpha(state_, *snapshot_, worker_);
    EXPECT_EQ(info().alpha_in_force, alphas[static_cast<size_t>(step)]) << snapshot_->message;
    EXPECT_EQ(shown_control_points(state_, info()), shown[static_cast<size_t>(step)]);
    expect_plot_gives_alpha_in_force();
  }

  // Reset (the worker's; the panel's button also records the edit): the learned ones.
  worker_.reset_alpha();
  EXPECT_FALSE(info().alpha_overridden);
  EXPECT_EQ(shown_control_points(state_, info()), learned);
}

}  // namespace
}  // namespace superpose::studio
