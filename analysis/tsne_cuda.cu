// Fused CUDA kernels for the exact t-SNE iteration (see tsne_cuda.h).
#include "analysis/tsne_cuda.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include <cuda_runtime.h>

namespace superpose::tsne_cuda {
namespace {

constexpr int kThreads = 128;

void check(cudaError_t error, const char* what) {
  if (error != cudaSuccess) {
    throw std::runtime_error(std::string("t-SNE CUDA kernel: ") + what + ": " + cudaGetErrorString(error));
  }
}

int multiprocessors() {
  static const int count = [] {
    int device = 0, value = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&value, cudaDevAttrMultiProcessorCount, device), "multiprocessor count");
    return std::max(value, 1);
  }();
  return count;
}

// Block (x, y) sums the interactions of rows x·kThreads.. with the columns
// y·span..: the columns pass through shared memory a tile at a time, and the
// partial sums of the row land in rep and z_rows by atomics (zeroed before).
template <int D>
__global__ void repulsion_kernel(const float* __restrict__ y, int64_t n, int64_t span, float* __restrict__ rep,
                                 float* __restrict__ z_rows) {
  __shared__ float tile[kThreads * D];
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  const int64_t j_begin = static_cast<int64_t>(blockIdx.y) * span;
  const int64_t j_end = j_begin + span < n ? j_begin + span : n;
  float yi[D];
#pragma unroll
  for (int d = 0; d < D; ++d) yi[d] = i < n ? y[i * D + d] : 0.f;
  float r[D] = {};
  double z = 0;
  for (int64_t start = j_begin; start < j_end; start += kThreads) {
    const int64_t j = start + threadIdx.x;
#pragma unroll
    for (int d = 0; d < D; ++d) tile[threadIdx.x * D + d] = j < j_end ? y[j * D + d] : 0.f;
    __syncthreads();
    const int count = static_cast<int>(j_end - start < kThreads ? j_end - start : kThreads);
    float z_tile = 0;
    for (int t = 0; t < count; ++t) {
      float diff[D];
      float d2 = 0;
#pragma unroll
      for (int d = 0; d < D; ++d) {
        diff[d] = yi[d] - tile[t * D + d];
        d2 = fmaf(diff[d], diff[d], d2);
      }
      const float w = __fdividef(1.f, 1.f + d2);  // fast reciprocal, 2 ulp
      z_tile += w;
      const float w2 = w * w;
#pragma unroll
      for (int d = 0; d < D; ++d) r[d] = fmaf(w2, diff[d], r[d]);
    }
    z += z_tile;
    __syncthreads();
  }
  if (i < n) {
    if (i >= j_begin && i < j_end) z -= 1.0;  // the point itself: w = 1 and no force
#pragma unroll
    for (int d = 0; d < D; ++d) atomicAdd(&rep[i * D + d], r[d]);
    atomicAdd(&z_rows[i], static_cast<float>(z));
  }
}

// Per point: attraction over its row of P, the gradient, gains, momentum and
// the move into y_next. Every block first sums z_rows itself (Z), which
// saves a launch and a synchronisation; the exact path is for N up to tens
// of thousands, where that read is cheap.
template <int D>
__global__ void update_kernel(ExactStep s) {
  __shared__ double partial[kThreads];
  double acc = 0;
  for (int64_t k = threadIdx.x; k < s.n; k += kThreads) acc += s.z_rows[k];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
    __syncthreads();
  }
  const float inv_z = static_cast<float>(1.0 / partial[0]);
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= s.n) return;
  float yi[D], attract[D] = {};
#pragma unroll
  for (int d = 0; d < D; ++d) yi[d] = s.y[i * D + d];
  for (int64_t e = s.row_ptr[i]; e < s.row_ptr[i + 1]; ++e) {
    const int64_t j = s.cols[e];
    float diff[D];
    float d2 = 0;
#pragma unroll
    for (int d = 0; d < D; ++d) {
      diff[d] = yi[d] - s.y[j * D + d];
      d2 = fmaf(diff[d], diff[d], d2);
    }
    const float pw = __fdividef(s.vals[e], 1.f + d2);
#pragma unroll
    for (int d = 0; d < D; ++d) attract[d] = fmaf(pw, diff[d], attract[d]);
  }
#pragma unroll
  for (int d = 0; d < D; ++d) {
    const int64_t k = i * D + d;
    const float grad = 4.f * (s.exaggeration * attract[d] - s.repulsion[k] * inv_z);
    float v = s.velocity[k], g = s.gains[k];
    g = v * grad < 0.f ? g + 0.2f : g * 0.8f;
    g = fmaxf(g, s.min_gain);
    v = s.momentum * v - s.learning_rate * (g * grad);
    s.gains[k] = g;
    s.velocity[k] = v;
    s.y_next[k] = yi[d] + v;
  }
}

template <int D>
void launch_repulsion(const float* y, int64_t n, float* rep, float* z_rows, cudaStream_t stream) {
  check(cudaMemsetAsync(rep, 0, sizeof(float) * static_cast<size_t>(n * D), stream), "clearing the repulsion");
  check(cudaMemsetAsync(z_rows, 0, sizeof(float) * static_cast<size_t>(n), stream), "clearing Z");
  const int64_t row_blocks = (n + kThreads - 1) / kThreads;
  // Split the columns until there are about four blocks per multiprocessor.
  const int64_t wanted = 4 * static_cast<int64_t>(multiprocessors());
  const int64_t splits = std::clamp<int64_t>((wanted + row_blocks - 1) / row_blocks, 1, row_blocks);
  int64_t span = (n + splits - 1) / splits;
  span = (span + kThreads - 1) / kThreads * kThreads;
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>((n + span - 1) / span));
  repulsion_kernel<D><<<grid, kThreads, 0, stream>>>(y, n, span, rep, z_rows);
  check(cudaGetLastError(), "repulsion launch");
}

}  // namespace

void exact_repulsion(const float* y, int64_t n, int dims, float* repulsion, float* z_rows, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  if (dims == 2) {
    launch_repulsion<2>(y, n, repulsion, z_rows, s);
  } else if (dims == 3) {
    launch_repulsion<3>(y, n, repulsion, z_rows, s);
  } else {
    throw std::invalid_argument("t-SNE CUDA kernel: dims must be 2 or 3, got " + std::to_string(dims));
  }
}

void exact_step(const ExactStep& step) {
  exact_repulsion(step.y, step.n, step.dims, step.repulsion, step.z_rows, step.stream);
  auto stream = static_cast<cudaStream_t>(step.stream);
  const auto blocks = static_cast<unsigned>((step.n + kThreads - 1) / kThreads);
  if (step.dims == 2) {
    update_kernel<2><<<blocks, kThreads, 0, stream>>>(step);
  } else {
    update_kernel<3><<<blocks, kThreads, 0, stream>>>(step);
  }
  check(cudaGetLastError(), "update launch");
}

}  // namespace superpose::tsne_cuda
