// Activation capture against direct forward passes of each window, the
// file round trip, and bad inputs.
#include "analysis/capture.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "analysis/state_recorder.h"
#include "model/errors.h"
#include "model/safetensors.h"
#include "model/superposition_io.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;
using testing::all_close;

const fs::path kFixtures = SUPERPOSE_FIXTURES;

const Tokenizer& gpt2() {
  static const Tokenizer tokenizer = Tokenizer::from_dir(default_tokenizer_dir());
  return tokenizer;
}

std::vector<Document> documents() {
  return {
      {"The cat sleeps on the mat near the door.", 0, "en", "en/1"},
      {"Le chat dort sur le tapis.", 1, "fr", "fr/1"},
      {"A dog barked twice.", 0, "en", "en/2"},
      {"Il pleut sur la ville depuis ce matin.", 1, "fr", "fr/2"},
      {"Hi.", 0, "en", "en/3"},
  };
}

// Tolerance for a state computed in a padded batch against the same window
// alone: float32 reductions over a few hundred terms in a different order.
constexpr double kAtol = 2e-5;

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::tie(base_, fine_) = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", torch::kCPU,
                                          torch::kFloat32);
    torch::manual_seed(5);
    superposition_ = SuperposedModel(base_.model, fine_.model,
                                     SuperposedConfig::defaults(AlphaVariant::k1D, base_.config, ConvMode::kCausal));
    superposition_->eval();
    L_ = base_.config.n_layer;
  }

  // The (T,C) states of one direct forward pass of `ids` for a model.
  torch::Tensor direct(const std::string& model, const std::vector<int64_t>& ids, Site site, int64_t index) {
    StateRecorder recorder({site});
    const auto input = torch::tensor(ids).unsqueeze(0);
    torch::NoGradGuard no_grad;
    if (model == "base") base_.model->forward(input, nullptr, &recorder);
    if (model == "fine") fine_.model->forward(input, nullptr, &recorder);
    if (model == "superposition") superposition_->forward(input, nullptr, &recorder);
    return recorder.at(site, index)[0];
  }

  // The document's sequence as the capture reads it: EOS, then its text tokens.
  static std::vector<int64_t> sequence(const Capture& c, int64_t d) {
    std::vector<int64_t> ids{*gpt2().eos_id()};
    const auto text = c.document(d);
    ids.insert(ids.end(), text.begin(), text.end());
    return ids;
  }

  LoadedModel base_, fine_;
  SuperposedModel superposition_{nullptr};
  int64_t L_ = 0;
};

TEST_F(CaptureTest, AllPositionsMatchDirectForwardPassesOfEachWindow) {
  CaptureOptions o;
  o.seq_len = 4;     // documents span several windows
  o.batch_size = 3;  // batches mix documents and padded windows
  o.mlp_layers = {1};
  const Capture c = capture_states(base_, fine_, superposition_, documents(), gpt2(), o);
  ASSERT_EQ(c.models, (std::vector<std::string>{"base", "fine", "superposition"}));
  ASSERT_EQ(static_cast<int64_t>(c.residual_layers.size()), L_ + 1);
  ASSERT_EQ(c.sources, (std::vector<std::string>{"en/1", "fr/1", "en/2", "fr/2", "en/3"}));
  EXPECT_EQ(c.domains, (std::vector<std::string>{"en", "fr"}));

  // Every text token once, documents in order, positions 0.. within each.
  int64_t expected_rows = 0;
  for (const auto& d : documents()) expected_rows += static_cast<int64_t>(gpt2().encode(d.text).size());
  ASSERT_EQ(c.rows(), expected_rows);
  for (int64_t r = 0; r < c.rows(); ++r) {
    const int64_t d = c.documents[r].item<int64_t>(), p = c.positions[r].item<int64_t>();
    ASSERT_EQ(c.token_ids[r].item<int64_t>(), c.document(d)[static_cast<size_t>(p)]);
    ASSERT_EQ(c.labels[r].item<int64_t>(), documents()[static_cast<size_t>(d)].label);
    if (r > 0 && c.documents[r - 1].item<int64_t>() == d) {
      ASSERT_EQ(c.positions[r - 1].item<int64_t>(), p - 1);
    }
  }

  // Each row against a direct pass of the window that holds it: window w of
  // the sequence (EOS at 0) covers [4w, 4w+4), the text token p is at p+1.
  const struct {
    std::string model, tensor;
    Site site;
    int64_t index;
  } checks[] = {{"base", "base.residual.0", Site::kResidual, 0},
                {"base", "base.residual." + std::to_string(L_), Site::kResidual, L_},
                {"fine", "fine.residual.1", Site::kResidual, 1},
                {"base", "base.mlp.1", Site::kMlpActivation, 1},
                {"superposition", "superposition.residual.2", Site::kState, 2},
                {"superposition", "superposition.mlp_fine.1", Site::kFineMlpActivation, 1}};
  for (const auto& check : checks) {
    SCOPED_TRACE(check.tensor);
    const auto& captured = c.tensor(check.tensor);
    for (int64_t r = 0; r < c.rows(); ++r) {
      const int64_t d = c.documents[r].item<int64_t>(), p = c.positions[r].item<int64_t>();
      const auto seq = sequence(c, d);
      const int64_t q = p + 1, begin = (q / 4) * 4, end = std::min<int64_t>(begin + 4, static_cast<int64_t>(seq.size()));
      const auto states = direct(check.model, std::vector<int64_t>(seq.begin() + begin, seq.begin() + end), check.site,
                                 check.index);
      ASSERT_TRUE(all_close(captured[r], states[q - begin], kAtol)) << "row " << r;
    }
  }
}

TEST_F(CaptureTest, MeanRowsAreTheMeansOfTheDocumentsTokenRows) {
  CaptureOptions all, mean;
  all.seq_len = mean.seq_len = 5;
  all.residual_layers = mean.residual_layers = {0, 2};
  mean.positions = parse_positions("mean");
  const Capture a = capture_states(base_, fine_, superposition_, documents(), gpt2(), all);
  const Capture m = capture_states(base_, fine_, superposition_, documents(), gpt2(), mean);
  ASSERT_EQ(m.rows(), 5);
  EXPECT_TRUE(torch::equal(m.positions, torch::full({5}, -1, torch::kInt64)));
  EXPECT_TRUE(torch::equal(m.token_ids, torch::full({5}, -1, torch::kInt64)));
  EXPECT_TRUE(torch::equal(m.labels, torch::tensor({0, 1, 0, 1, 0}, torch::kInt64)));
  for (const std::string name : {"base.residual.2", "superposition.residual.0", "fine.residual.2"}) {
    for (int64_t d = 0; d < 5; ++d) {
      const auto rows = a.documents.eq(d).nonzero().squeeze(1);
      // Float64 sums over a few tokens: agreement to float32 rounding.
      EXPECT_TRUE(all_close(m.tensor(name)[d], a.tensor(name).index_select(0, rows).mean(0), 1e-5)) << name << " " << d;
    }
  }
}

TEST_F(CaptureTest, ChosenPositionsReadTheWindowEndingAtTheirToken) {
  for (const std::string mode : {"first", "last", "3"}) {
    SCOPED_TRACE(mode);
    CaptureOptions o;
    o.seq_len = 4;
    o.positions = parse_positions(mode);
    o.residual_layers = {1};
    const Capture c = capture_states(base_, fine_, superposition_, documents(), gpt2(), o);
    // "Hi." has 2 tokens: token 3 does not exist there, so that document is left out.
    ASSERT_EQ(c.rows(), mode == "3" ? 4 : 5);
    for (int64_t r = 0; r < c.rows(); ++r) {
      const int64_t d = c.documents[r].item<int64_t>(), p = c.positions[r].item<int64_t>();
      const auto seq = sequence(c, d);
      const int64_t n = static_cast<int64_t>(seq.size()) - 1;
      EXPECT_EQ(p, mode == "first" ? 0 : mode == "last" ? n - 1 : 3);
      const int64_t end = p + 2, begin = std::max<int64_t>(0, end - 4);
      const auto states = direct("fine", std::vector<int64_t>(seq.begin() + begin, seq.begin() + end), Site::kResidual, 1);
      EXPECT_TRUE(all_close(c.tensor("fine.residual.1")[r], states[end - begin - 1], kAtol)) << "row " << r;
    }
  }
}

TEST_F(CaptureTest, SavesAndLoadsEveryTensorAndTheMetadata) {
  CaptureOptions o;
  o.seq_len = 8;
  o.models = {CaptureModel::kSuperposition, CaptureModel::kBase};
  o.residual_layers = {1, 0};
  o.mlp_layers = {0};
  Capture c = capture_states(base_, fine_, superposition_, documents(), gpt2(), o);
  c.data = "some/validation.jsonl";
  testing::TempDir dir;
  save_capture(dir / "c.safetensors", c);
  const Capture back = load_capture(dir / "c.safetensors");
  EXPECT_EQ(back.models, (std::vector<std::string>{"superposition", "base"}));
  EXPECT_EQ(back.residual_layers, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(back.mlp_layers, (std::vector<int64_t>{0}));
  EXPECT_EQ(back.positions_mode.name(), "all");
  EXPECT_EQ(back.domains, c.domains);
  EXPECT_EQ(back.sources, c.sources);
  EXPECT_EQ(back.data, "some/validation.jsonl");
  EXPECT_EQ(back.n_layer, L_);
  EXPECT_EQ(back.seq_len, 8);
  EXPECT_TRUE(back.causal);
  ASSERT_EQ(back.tensors.size(), c.tensors.size());
  for (const auto& [name, value] : c.tensors) EXPECT_TRUE(torch::equal(back.tensor(name), value)) << name;
  for (const auto& [a, b] : {std::pair{&back.labels, &c.labels}, {&back.documents, &c.documents},
                             {&back.positions, &c.positions}, {&back.token_ids, &c.token_ids},
                             {&back.document_tokens, &c.document_tokens}, {&back.document_starts, &c.document_starts}}) {
    EXPECT_TRUE(torch::equal(*a, *b));
  }
  // superposition: 2 residual + 2 MLP sites; base: 2 residual + 1 MLP.
  EXPECT_EQ(c.tensors.size(), 7u);
  EXPECT_EQ(c.tensor("superposition.mlp_base.0").size(1), base_.config.mlp_width());
}

TEST_F(CaptureTest, ContextSnippetsDecodeAroundTheRowsToken) {
  CaptureOptions o;
  o.residual_layers = {0};
  o.models = {CaptureModel::kBase};
  const Capture c = capture_states(base_, fine_, nullptr, documents(), gpt2(), o);
  // Document 0, "The cat sleeps on the mat near the door.": token 2 is " sle" or " sleeps".
  int64_t row = -1;
  for (int64_t r = 0; r < c.rows(); ++r) {
    if (c.documents[r].item<int64_t>() == 0 && c.positions[r].item<int64_t>() == 2) row = r;
  }
  ASSERT_GE(row, 0);
  const auto s = context_snippet(c, gpt2(), row, 2, 3);
  EXPECT_EQ(s.before, "The cat");
  const auto tokens = c.document(0);
  EXPECT_EQ(s.before + s.token + s.after, gpt2().decode(std::vector<int64_t>(tokens.begin(), tokens.begin() + 6)));
  EXPECT_EQ(s.document, 0);
  EXPECT_EQ(s.position, 2);
}

TEST_F(CaptureTest, BadOptionsNameTheirOption) {
  using testing::all_close;
  const auto run = [&](CaptureOptions o, SuperposedModel sp) { capture_states(base_, fine_, sp, documents(), gpt2(), o); };
  CaptureOptions o;
  o.residual_layers = {L_ + 1};
  SUPERPOSE_EXPECT_THROW_WITH(run(o, superposition_), Error, "--layers", "state " + std::to_string(L_ + 1));
  o = {};
  o.mlp_layers = {L_};
  SUPERPOSE_EXPECT_THROW_WITH(run(o, superposition_), Error, "--mlp-layers");
  o = {};
  o.seq_len = 65;  // the tiny model has 64 positions
  SUPERPOSE_EXPECT_THROW_WITH(run(o, superposition_), Error, "--seq-len", "1..64");
  o = {};
  o.models = {CaptureModel::kSuperposition};
  SUPERPOSE_EXPECT_THROW_WITH(run(o, nullptr), Error, "--models", "needs a superposition");
  o = {};
  o.positions = parse_positions("500");
  SUPERPOSE_EXPECT_THROW_WITH(run(o, superposition_), Error, "--positions", "no document has text token 500");
  o = {};
  o.residual = false;
  SUPERPOSE_EXPECT_THROW_WITH(run(o, superposition_), Error, "nothing to capture");
  SUPERPOSE_EXPECT_THROW_WITH(parse_positions("middle"), Error, "--positions", "'middle'");
  SUPERPOSE_EXPECT_THROW_WITH(parse_capture_models("base,base", true), Error, "named twice");
  SUPERPOSE_EXPECT_THROW_WITH(parse_capture_models("merged", true), Error, "'merged'");
}

TEST_F(CaptureTest, LoadRefusesFilesThatAreNotConsistentCaptures) {
  testing::TempDir dir;
  save_safetensors(dir / "plain.safetensors", {{"x", torch::zeros({2, 2})}});
  SUPERPOSE_EXPECT_THROW_WITH(load_capture(dir / "plain.safetensors"), Error, "plain.safetensors", "not a capture");

  CaptureOptions o;
  o.residual_layers = {0};
  o.models = {CaptureModel::kBase};
  Capture c = capture_states(base_, fine_, nullptr, documents(), gpt2(), o);
  c.tensors["base.residual.0"] = c.tensors["base.residual.0"].narrow(0, 0, 3);
  save_capture(dir / "short.safetensors", c);
  SUPERPOSE_EXPECT_THROW_WITH(load_capture(dir / "short.safetensors"), Error, "short.safetensors",
                              "'base.residual.0' does not have one row per captured row");
}

}  // namespace
}  // namespace superpose
