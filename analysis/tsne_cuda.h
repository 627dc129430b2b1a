// Fused CUDA kernels for the exact t-SNE iteration: all-pairs repulsion and
// one kernel for attraction, gradient and the optimiser update. Built only
// where LibTorch has CUDA and nvcc is found (SUPERPOSE_HAVE_CUDA_KERNELS);
// the LibTorch code in tsne.cpp is the reference and the fallback.
// Plain pointers (device memory, float32, row-major) so that this header
// needs neither ATen nor the CUDA headers.
#pragma once

#include <cstdint>

namespace superpose::tsne_cuda {

struct ExactStep {
  int64_t n = 0;
  int dims = 2;              // 2 or 3
  const float* y = nullptr;  // (n,dims) the current layout
  float* y_next = nullptr;   // (n,dims) written: the layout after the step (must not alias y)
  float* velocity = nullptr; // (n,dims) updated in place
  float* gains = nullptr;    // (n,dims) updated in place
  // P's entries as CSR rows: row_ptr (n+1), cols and vals (row_ptr[n]).
  const int64_t* row_ptr = nullptr;
  const int64_t* cols = nullptr;
  const float* vals = nullptr;
  float* repulsion = nullptr;  // (n,dims) scratch
  float* z_rows = nullptr;     // (n) scratch
  float exaggeration = 1, momentum = 0.5f, learning_rate = 200, min_gain = 0.01f;
  void* stream = nullptr;      // cudaStream_t
};

// One step of exact-gradient t-SNE: the gradient
// 4·(exaggeration·Σ_j p_ij w_ij (y_i − y_j) − Σ_j w_ij² (y_i − y_j) / Z),
// w = 1/(1 + |y_i − y_j|²), Z = Σ_{i≠j} w_ij, then gains, momentum and the
// move, exactly as Tsne::step does it with LibTorch operations. Two kernel
// launches and two memsets on `stream`, no synchronisation.
void exact_step(const ExactStep& step);

// The repulsive sums alone: repulsion_i = Σ_j w_ij² (y_i − y_j) and
// z_rows_i = Σ_{j≠i} w_ij, on `stream`. For tests and the gradient API.
void exact_repulsion(const float* y, int64_t n, int dims, float* repulsion, float* z_rows, void* stream);

}  // namespace superpose::tsne_cuda
