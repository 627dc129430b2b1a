// Activation capture: a labeled dataset run through the experts and the
// superposition in batches, keeping per-layer states at every token, per
// document means, or one chosen token, traceable to the text they came from.
//
// Rows. Each document is tokenized with the experts' tokenizer and, as in
// training and evaluation, preceded by EOS when the vocabulary has one. The
// sequence is cut into consecutive windows of at most seq_len tokens; each
// window is a forward pass of its own (context resets at a window boundary).
// The EOS prefix is read but never captured. By CapturePositions:
//   all    one row per text token, documents in file order, tokens in order
//          (rows of one document are contiguous);
//   mean   one row per document: the mean state over its text tokens;
//   first  one row per document: its first text token;
//   last   one row per document: its last text token (the whole context read,
//          when the document fits one window);
//   index  one row per document that has text token `index` (0-based).
// Every model sees exactly the same windows, so row r of every tensor is the
// same token (or document) in every model.
//
// Tensors (float32, CPU, rows as above):
//   "{model}.residual.{i}"  (N,C), i = 0..L: for base and fine the HF hidden
//                           state i (i = L includes ln_f); for the
//                           superposition state.i of the trace (0 = blended
//                           embeddings, l+1 = what block l passes on, after
//                           its autoencoder, before ln_f);
//   "{model}.mlp.{l}"       (N,inner), l = 0..L-1: MLP activations after the
//                           nonlinearity, for base and fine;
//   "superposition.mlp_base.{l}", "superposition.mlp_fine.{l}": the MLP
//                           activations of the two experts' blocks inside the
//                           superposed pass (both read the same blended input).
// Row metadata (int64, (N)): "labels" (0/1), "documents" (index into the
// captured documents), "positions" (text token index; −1 for mean rows),
// "token_ids" (−1 for mean rows). The captured documents' text tokens:
// "document_tokens" (ΣT_d) int64 and "document_starts" (D+1) int64, so any
// row's context can be decoded with the experts' tokenizer.
//
// The file is safetensors with string metadata: "format" = "superpose-capture",
// "version" = "1", "models", "residual_layers", "mlp_layers" (JSON arrays),
// "positions" (all|mean|first|last|N), "domains" (JSON array, index = label),
// "sources" (JSON array per captured document), "causal" (true|false),
// "n_layer", "seq_len", "data" (the dataset's path as given).
//
// Memory: the output buffers are allocated once, at their final size (the
// row count is known from the token counts before any forward pass), and
// each batch's states are copied into them and released, so a capture holds
// one batch of device memory at a time whatever the dataset's size, and
// repeated captures do not grow the process.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "model/dataset.h"
#include "model/model_dir.h"
#include "model/superposed.h"
#include "model/tokenizer.h"

namespace superpose {

enum class CaptureModel { kBase, kFine, kSuperposition };
std::string capture_model_name(CaptureModel model);  // "base", "fine", "superposition"
// "base,fine,superposition" (any subset, no repeats). Throws Error(option, ...)
// for an unknown or repeated name, an empty list, or "superposition" when
// with_superposition is false.
std::vector<CaptureModel> parse_capture_models(const std::string& list, bool with_superposition,
                                               const std::string& option = "--models");

enum class CapturePositions { kAll, kMean, kFirst, kLast, kIndex };
struct PositionSelection {
  CapturePositions mode = CapturePositions::kAll;
  int64_t index = 0;  // kIndex only
  std::string name() const;  // "all", "mean", "first", "last" or the index
};
// "all", "mean", "first", "last" or a non-negative integer; Error(option, ...) otherwise.
PositionSelection parse_positions(const std::string& text, const std::string& option = "--positions");

// Called after each batch; returns false to cancel (capture then throws
// Error("capture", "cancelled")).
using CaptureProgress = std::function<bool(int64_t batches_done, int64_t batches_total)>;

struct CaptureOptions {
  std::vector<CaptureModel> models;        // empty: base, fine, and the superposition when given
  std::vector<int64_t> residual_layers;    // state indices 0..L; empty: all
  std::vector<int64_t> mlp_layers;         // blocks 0..L-1; empty: none
  bool residual = true;                    // false: MLP activations only
  PositionSelection positions;
  int64_t seq_len = 0;                     // tokens per window, 1..n_positions; 0: min(128, n_positions)
  int64_t batch_size = 16;                 // windows per forward pass
  int64_t max_documents = 0;               // per label, the first in file order; 0 = all
  CaptureProgress progress;
};

struct Capture {
  std::map<std::string, torch::Tensor> tensors;  // the named tensors above
  torch::Tensor labels, documents, positions, token_ids;  // (N) int64
  torch::Tensor document_tokens, document_starts;          // (ΣT_d), (D+1) int64
  std::vector<std::string> models;
  std::vector<int64_t> residual_layers, mlp_layers;
  PositionSelection positions_mode;
  std::vector<std::string> domains;  // index = label
  std::vector<std::string> sources;  // per captured document ("" when the data had none)
  bool causal = true;
  int64_t n_layer = 0, seq_len = 0;
  std::string data;

  int64_t rows() const { return labels.defined() ? labels.size(0) : 0; }
  // The text tokens of captured document d.
  std::vector<int64_t> document(int64_t d) const;
  // "{model}.residual.{i}" and the like; throws Error naming the tensor and
  // listing what the capture holds when it is absent.
  const torch::Tensor& tensor(const std::string& name) const;
  static std::string residual_name(const std::string& model, int64_t layer);
};

// Runs the capture. `superposition` may be empty (nullptr) when no
// superposition model is asked for; it runs with its α and autoencoder
// settings as they are (set overrides before). The models must be on one
// device. Throws Error naming the option for seq_len/batch_size/max_documents
// out of range, a layer beyond the model, nothing to capture, or no document
// with a text token at the chosen position. Leaves the models as it found them.
Capture capture_states(const LoadedModel& base, const LoadedModel& fine, SuperposedModel superposition,
                       const std::vector<Document>& documents, const Tokenizer& tokenizer,
                       const CaptureOptions& options);

// Writes / reads the file format above (save is atomic). load_capture throws
// Error naming the file when it is not a capture or is inconsistent (row
// counts that differ, a tensor the metadata lists that is missing).
void save_capture(const std::filesystem::path& path, const Capture& capture);
Capture load_capture(const std::filesystem::path& path);

// The text around row `row`'s token: the decoded tokens before it (at most
// `before`), the token itself and the tokens after it (at most `after`),
// within its document. For a mean row, `token` is empty and `before` holds
// the start of the document.
struct ContextSnippet {
  std::string before, token, after;
  int64_t document = 0, position = 0;
};
ContextSnippet context_snippet(const Capture& capture, const Tokenizer& tokenizer, int64_t row, int64_t before = 8,
                               int64_t after = 4);

}  // namespace superpose
