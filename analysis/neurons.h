// Neuron analyses of one layer (SPEC §6): per-neuron domain statistics
// (normalised mean difference, polysemantic share, sparsity), neuron
// diversity by k-means over bag-of-token contexts, top activations, and the
// layer × neuron map.
//
// Activations are `acts` (N,D): N rows (token positions or sequences), D
// neurons (residual-stream channels or MLP units), any float dtype, CPU or
// CUDA. Every function computes on its inputs' device (reductions in float64)
// and returns CPU tensors; inputs are never modified.
//
// Batched k-means works on Gram matrices only (linear-kernel k-means): with
// G_im = x_i·x_m and S_j the points of cluster j,
//   ‖x_i − c_j‖² = G_ii − (2/|S_j|) Σ_{m∈S_j} G_im + (1/|S_j|²) Σ_{m,n∈S_j} G_mn,
// which is ordinary Lloyd k-means with centroids the means of their points.
// Conventions, pinned by the tests:
//   - initialisation: k-means++ (first centre uniform, each next one drawn
//     with probability proportional to the squared distance to the nearest
//     centre already chosen); when every remaining distance is 0 the lowest
//     unchosen point is taken, so a centre is never chosen twice. Group g
//     draws from its own std::mt19937_64 seeded by (seed, g), on the CPU, so
//     a result does not depend on the device or on how groups are batched.
//   - the first assignment is to the nearest initial centre point; each
//     iteration then recomputes the means and reassigns, until no assignment
//     changes (per group) or max_iterations iterations have run;
//   - ties go to the lowest cluster index;
//   - a cluster that loses all its points stays empty (distance +inf); it
//     happens only when initial centres coincide, and the cluster then counts
//     as size 0.
// With integer-valued Grams (token counts) every step is exact or correctly
// rounded, so CPU and CUDA give identical assignments; with general float
// Grams near-ties may resolve differently across devices.
//
// Errors: superpose::Error with one line "argument: what is wrong" for shapes
// that disagree, empty inputs, labels other than 0/1, a domain without rows,
// NaN activations and options out of range. Every function is pure and may
// be called from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace superpose {

// ---- Per-neuron domain statistics ----

struct NeuronStats {
  torch::Tensor mean_a;                 // (D) float32: mean activation over domain-A rows (label 0)
  torch::Tensor mean_b;                 // (D) float32: mean over domain-B rows (label 1)
  torch::Tensor normalized_difference;  // (D) float32: |μ_A − μ_B| / max(|μ_A|, |μ_B|); 0 where both are 0
  torch::Tensor sparsity;               // (D) float32: share of all rows with |a| < sparsity_epsilon
};

// `acts` (N,D), `labels` (N) integer 0 (domain A) or 1 (domain B), any
// devices. Rows are processed in chunks, so a large CPU `acts` costs no full
// extra copy. Throws Error("acts" / "labels", ...) when acts is not (N,D)
// with N, D ≥ 1, labels is not (N) integers, a label is not 0 or 1, a domain
// has no rows, or an activation is NaN; Error("sparsity_epsilon", ...) when
// it is negative.
NeuronStats neuron_stats(const torch::Tensor& acts, const torch::Tensor& labels, double sparsity_epsilon = 1e-4);

// Share of neurons with normalized_difference < threshold (the paper uses
// 0.05): neurons that fire alike for both domains. Throws
// Error("threshold", ...) for a negative or NaN threshold, Error("stats", ...)
// for stats without neurons.
double polysemantic_share(const NeuronStats& stats, double threshold);

// Mean over neurons of their sparsity: the share of all activations of the
// layer below the epsilon (from the float32 per-neuron shares). Throws
// Error("stats", ...) without neurons.
double sparsity_share(const NeuronStats& stats);

// ---- Batched k-means on Gram matrices ----

struct KmeansResult {
  torch::Tensor assignments;  // (G,P) int64: cluster of each point, in [0, k)
  torch::Tensor inertia;      // (G) float64: Σ_i ‖x_i − mean of its cluster‖² for the returned assignments
  torch::Tensor iterations;   // (G) int64: mean-update iterations run; the last changed nothing unless
                              //            max_iterations stopped the group
};

// k-means++ centres for G problems of P points given by their Gram matrices
// `gram` (G,P,P) (symmetric, any float dtype, CPU or CUDA): (G,k) int64 point
// indices, in the order chosen. Throws Error("gram", ...) when gram is not
// (G,P,P) with P ≥ 1 or holds a non-finite value, Error("k", ...) when k is
// outside [1, P].
torch::Tensor kmeanspp_init(const torch::Tensor& gram, int64_t k, uint64_t seed);

// Lloyd k-means from given centres: `initial_centres` (G,k) point indices
// (repeats allowed; see the file comment). max_iterations ≥ 0; with 0 the
// result is the assignment to the nearest centre point. Throws Error("gram",
// ...) as above, Error("initial_centres", ...) for a wrong shape or an index
// outside [0, P), Error("max_iterations", ...) when negative.
KmeansResult batched_kmeans_gram_from(const torch::Tensor& gram, const torch::Tensor& initial_centres,
                                      int64_t max_iterations);

// kmeanspp_init followed by batched_kmeans_gram_from; same errors.
KmeansResult batched_kmeans_gram(const torch::Tensor& gram, int64_t k, uint64_t seed, int64_t max_iterations = 100);

// ---- Neuron diversity ----

// (Not DiversityOptions: that name belongs to the generation metrics of
// analysis/diversity.h.)
struct NeuronDiversityOptions {
  int64_t top = 100;            // top activations per neuron (all N when N < top), ≥ 1
  int64_t clusters = 5;         // k, ≥ 1 and at most min(top, N)
  int64_t context = 5;          // tokens each side of a window: W = 2·context + 1, ≥ 0
  uint64_t seed = 0;            // k-means++ seed; neuron d draws as group d (independent of batching)
  int64_t max_iterations = 100; // Lloyd iterations per neuron, ≥ 0
  int64_t neuron_batch = 0;     // neurons clustered at once; 0: as many as fit in about
                                // 256 MiB of temporaries (1 GiB on CUDA)
};

// (N,W) windows of token ids around each row's token, W = 2·context + 1,
// column `context` being the row's own token. Rows are consecutive tokens of
// documents: `token_ids` (N) ids ≥ 0, `documents` (N) any integer document
// ids, the rows of one document contiguous and in order. A window never
// crosses into another document or past either end: those places hold −1.
// int64, CPU. Throws Error("token_ids" / "documents" / "context", ...) for
// shapes that disagree, a negative id, a document whose rows are not
// contiguous, or a negative context.
torch::Tensor context_windows(const torch::Tensor& token_ids, const torch::Tensor& documents, int64_t context);

// Bag-of-tokens Gram matrices of `windows` (G,P,W) integer token ids, −1 for
// padding: G_im = bag_i · bag_m = Σ_a Σ_b [t_ia = t_mb ≥ 0], the number of
// equal token pairs between the two windows. Computed without
// vocabulary-sized vectors: the bags are indexed by each group's own distinct
// tokens (at most P·W). Exact. (G,P,P) float64, CPU.
// Throws Error("windows", ...) when not 3-D integers.
torch::Tensor window_gram(const torch::Tensor& windows);

// Diversity of every neuron: its top-`top` rows by activation (ties to the
// lower row; the rows then taken in ascending row order as the k-means
// points), their `contexts` windows as bags of tokens, k-means (linear kernel,
// k = clusters) over them, and the Shannon entropy in nats, −Σ p ln p, of
// the cluster sizes: 0 when all contexts fall in one cluster, ln k at most.
// `acts` (N,D), `contexts` (N, 2·context+1) int64 with −1 padding (e.g. from
// context_windows); contexts are moved to acts' device. (D) float32, CPU.
// Throws Error("acts" / "contexts", ...) for shapes that disagree, N = 0 or
// NaN activations, Error("<option name>", ...) for an option out of range
// (clusters above min(top, N) included).
torch::Tensor neuron_diversity(const torch::Tensor& acts, const torch::Tensor& contexts,
                               const NeuronDiversityOptions& options = {});

// ---- Top contexts and layer maps ----

struct NeuronContext {
  int64_t row = 0;          // row of acts
  double activation = 0;
};

// The min(k, N) highest activations of `neuron`, highest first, ties by the
// lower row (text rendering is the caller's). Throws Error("acts", ...) when
// acts is not (N,D) or the neuron's column holds a NaN, Error("neuron", ...)
// outside [0, D), Error("k", ...) when negative.
std::vector<NeuronContext> top_activations(const torch::Tensor& acts, int64_t neuron, int64_t k);

// Per-layer neuron values (each (D), e.g. normalized_difference or
// diversity) stacked into an (L,D) float32 CPU map. Throws
// Error("per_layer", ...) for no layers, a layer that is not 1-D, or widths
// that differ.
torch::Tensor stack_layer_map(const std::vector<torch::Tensor>& per_layer);

}  // namespace superpose
