// Which expert a superposition's next-token distribution is closer to.
#pragma once

#include <torch/torch.h>

namespace superpose {

// KL(s‖base) / (KL(s‖base) + KL(s‖fine)) for next-token logits (V) of the
// superposition s and the two experts at the same position: 0 when s predicts
// exactly as the base, 1 when exactly as the fine-tuned expert, 0.5 when it is
// equally far from both (or both experts predict alike). Any device and dtype;
// computed in float32.
float fine_affinity(const torch::Tensor& superposed_logits, const torch::Tensor& base_logits,
                    const torch::Tensor& fine_logits);

}  // namespace superpose
