// Evaluation against a direct computation: every model run window by window
// on its own (no batching, no padding), every metric summed in double here;
// the confidence interval against a hand computation; the report formats
// read back.
#include "analysis/eval.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "analysis/state_recorder.h"
#include "model/errors.h"
#include "model/file_util.h"
#include "model/merge.h"
#include "model/superposition_io.h"
#include "tests/support/no_eos_tokenizer.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tensor_compare.h"

namespace superpose {
namespace {

namespace fs = std::filesystem;

const fs::path kFixtures = SUPERPOSE_FIXTURES;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

const Tokenizer& gpt2() {
  static const Tokenizer tokenizer = Tokenizer::from_dir(default_tokenizer_dir());
  return tokenizer;
}

// Relative closeness with a small absolute floor (metrics that are exactly 0
// in both, e.g. the base's MSE on its own domain).
::testing::AssertionResult near(double got, double expected, double rtol = 1e-5, double atol = 1e-9) {
  if (std::isnan(expected) && std::isnan(got)) return ::testing::AssertionSuccess();
  if (std::abs(got - expected) <= rtol * std::abs(expected) + atol) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", expected " << expected << " (|diff| "
                                       << std::abs(got - expected) << ")";
}

// ---- perplexity_interval --------------------------------------------------

TEST(PerplexityInterval, MatchesAHandComputation) {
  // Three documents (and one without targets, which must not count):
  //   ΣL = 63, ΣN = 25, m = 2.52; residuals L_d − m·N_d = −2.6, −0.16, 2.76;
  //   Σ residual² = 6.76 + 0.0256 + 7.6176 = 14.4032;
  //   SE² = 3/2 · 14.4032 / 25² = 0.03456768.
  const auto r = perplexity_interval({10, 20, 0, 33}, {5, 8, 0, 12});
  const double se = std::sqrt(0.03456768);
  // Tolerance: 1e-12 relative, the rounding of a few double operations.
  EXPECT_TRUE(near(r.ppl, std::exp(2.52), 1e-12, 0));
  EXPECT_TRUE(near(r.lo, std::exp(2.52 - 1.96 * se), 1e-12, 0));
  EXPECT_TRUE(near(r.hi, std::exp(2.52 + 1.96 * se), 1e-12, 0));
  EXPECT_LT(r.lo, r.ppl);
  EXPECT_GT(r.hi, r.ppl);
}

TEST(PerplexityInterval, OneDocumentHasNoIntervalAndEqualRatesHaveAZeroWidth) {
  const auto one = perplexity_interval({12.0, 0.0}, {4.0, 0.0});
  EXPECT_DOUBLE_EQ(one.ppl, std::exp(3.0));
  EXPECT_TRUE(std::isnan(one.lo));
  EXPECT_TRUE(std::isnan(one.hi));
  // Every document at the same NLL per token: no spread, lo = ppl = hi.
  const auto flat = perplexity_interval({2.0, 6.0, 10.0}, {1.0, 3.0, 5.0});
  EXPECT_DOUBLE_EQ(flat.ppl, std::exp(2.0));
  EXPECT_DOUBLE_EQ(flat.lo, flat.ppl);
  EXPECT_DOUBLE_EQ(flat.hi, flat.ppl);
}

// ---- evaluate() against a direct computation ------------------------------

// A model under test: (1,T) ids -> logits (T,V) and states 0..L as (T,C), float64.
struct Direct {
  std::string name;
  std::function<torch::Tensor(const torch::Tensor& ids, std::vector<torch::Tensor>& states)> forward;
};

torch::Tensor recorded_forward(const std::function<torch::Tensor(ForwardObserver*)>& run, Site site, int64_t L,
                               std::vector<torch::Tensor>& states) {
  StateRecorder recorder({site});
  const auto logits = run(&recorder);  // (1,T,V)
  states.clear();
  for (int64_t i = 0; i <= L; ++i) states.push_back(recorder.at(site, i)[0].to(torch::kFloat64));
  return logits[0].to(torch::kFloat64);
}

Direct gpt2_direct(const std::string& name, GPT2 model) {
  return {name, [model](const torch::Tensor& ids, std::vector<torch::Tensor>& states) mutable {
            return recorded_forward([&](ForwardObserver* o) { return model->forward(ids, nullptr, o); },
                                    Site::kResidual, model->config().n_layer, states);
          }};
}

// The superposition with `alpha` as an override (undefined: none, the learned α).
Direct superposed_direct(const std::string& name, SuperposedModel model, torch::Tensor alpha) {
  return {name, [model, alpha](const torch::Tensor& ids, std::vector<torch::Tensor>& states) mutable {
            if (alpha.defined()) {
              model->set_alpha_override(alpha);
            } else {
              model->clear_alpha_override();
            }
            auto logits = recorded_forward([&](ForwardObserver* o) { return model->forward(ids, nullptr, o); },
                                           Site::kState, model->n_layer(), states);
            model->clear_alpha_override();
            return logits;
          }};
}

// A GPT-2 whose every parameter is (1 − w)·θ_b + w·θ_f, w chosen per parameter name.
GPT2 hand_merged(const LoadedModel& base, const LoadedModel& fine, const std::function<double(const std::string&)>& w) {
  GPT2 model(base.config);
  model->eval();
  torch::NoGradGuard no_grad;
  const auto b = base.model->named_parameters();
  const auto f = fine.model->named_parameters();
  for (auto& item : model->named_parameters()) {
    const double weight = w(item.key());
    const auto theta_b = b[item.key()].to(torch::kFloat64), theta_f = f[item.key()].to(torch::kFloat64);
    item.value().copy_(weight == 0.5 ? (theta_b + theta_f) / 2 : theta_b * (1 - weight) + theta_f * weight);
  }
  return model;
}

// Softmax of one row of logits, in double.
std::vector<double> softmax(const double* logits, int64_t V) {
  double top = -std::numeric_limits<double>::infinity();
  for (int64_t v = 0; v < V; ++v) top = std::max(top, logits[v]);
  std::vector<double> p(static_cast<size_t>(V));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += p[static_cast<size_t>(v)] = std::exp(logits[v] - top);
  for (auto& x : p) x /= sum;
  return p;
}

double l2(const torch::Tensor& x, const torch::Tensor& y, int64_t t) {
  const auto a = x[t].contiguous(), b = y[t].contiguous();
  const double* pa = a.data_ptr<double>();
  const double* pb = b.data_ptr<double>();
  double s = 0;
  for (int64_t c = 0; c < a.numel(); ++c) s += (pa[c] - pb[c]) * (pa[c] - pb[c]);
  return std::sqrt(s);
}

// Sums of one (model, label) over its documents.
struct Expected {
  std::vector<double> nll, tokens;  // per document
  double correct = 0, jsd = 0, cosine = 0, mse = 0;
  std::vector<std::array<double, 3>> l2;  // per state: Σ‖s−b‖, Σ‖s−f‖, Σ‖b−f‖
};

// Every model over every window of every document, one window at a time.
std::map<std::pair<std::string, int64_t>, Expected> direct_sums(const std::vector<Direct>& models, const Direct& base,
                                                                const Direct& fine, const std::vector<Document>& docs,
                                                                int64_t seq_len, int64_t L) {
  std::map<std::pair<std::string, int64_t>, Expected> out;
  c10::InferenceMode inference;
  for (size_t d = 0; d < docs.size(); ++d) {
    std::vector<int64_t> tokens = {*gpt2().eos_id()};
    for (int64_t id : gpt2().encode(docs[d].text)) tokens.push_back(id);
    const auto n = static_cast<int64_t>(tokens.size());
    const int64_t label = docs[d].label;
    for (auto& m : models) {
      auto& e = out[{m.name, label}];
      e.nll.push_back(0);
      e.tokens.push_back(0);
      e.l2.resize(static_cast<size_t>(L + 1));
    }
    for (int64_t begin = 0; begin + 1 < n; begin += seq_len) {
      const int64_t T = std::min(seq_len, n - 1 - begin);
      const auto ids = torch::tensor(std::vector<int64_t>(tokens.begin() + begin, tokens.begin() + begin + T),
                                     torch::kLong)
                           .view({1, T});
      std::vector<torch::Tensor> sb, sf;
      const auto lb = base.forward(ids, sb).contiguous(), lf = fine.forward(ids, sf).contiguous();
      const int64_t V = lb.size(1);
      std::vector<std::vector<double>> average;  // per position: a = (p_base + p_fine) / 2
      for (int64_t t = 0; t < T; ++t) {
        const auto pb = softmax(lb.data_ptr<double>() + t * V, V), pf = softmax(lf.data_ptr<double>() + t * V, V);
        average.emplace_back(static_cast<size_t>(V));
        for (size_t v = 0; v < pb.size(); ++v) average.back()[v] = (pb[v] + pf[v]) / 2;
      }
      for (auto& m : models) {
        std::vector<torch::Tensor> s;
        const auto lm = m.forward(ids, s).contiguous();
        auto& e = out[{m.name, label}];
        for (int64_t t = 0; t < T; ++t) {
          const int64_t target = tokens[static_cast<size_t>(begin + t + 1)];
          const double* row = lm.data_ptr<double>() + t * V;
          const auto p = softmax(row, V);
          const auto& average_t = average[static_cast<size_t>(t)];
          double jsd = 0, dot = 0, pp = 0, aa = 0;
          int64_t argmax = 0;
          for (int64_t v = 0; v < V; ++v) {
            const auto u = static_cast<size_t>(v);
            const double a = average_t[u], mix = (p[u] + a) / 2;
            if (p[u] > 0) jsd += 0.5 * p[u] * std::log(p[u] / mix);
            if (a > 0) jsd += 0.5 * a * std::log(a / mix);
            dot += p[u] * a;
            pp += p[u] * p[u];
            aa += a * a;
            if (row[v] > row[argmax]) argmax = v;
          }
          e.nll.back() += -std::log(p[static_cast<size_t>(target)]);
          e.tokens.back() += 1;
          e.correct += argmax == target ? 1 : 0;
          e.jsd += jsd;
          e.cosine += dot / std::sqrt(pp * aa);
          const auto& expert = label == 0 ? sb : sf;
          double mse = 0;
          for (int64_t i = 1; i <= L; ++i) {
            mse += (s[static_cast<size_t>(i)][t] - expert[static_cast<size_t>(i)][t]).pow(2).mean().item<double>();
          }
          e.mse += mse / static_cast<double>(L);
          for (int64_t i = 0; i <= L; ++i) {
            const auto u = static_cast<size_t>(i);
            e.l2[u][0] += l2(s[u], sb[u], t);
            e.l2[u][1] += l2(s[u], sf[u], t);
            e.l2[u][2] += l2(sb[u], sf[u], t);
          }
        }
      }
    }
  }
  return out;
}

void expect_report_matches(const EvalReport& report, const std::map<std::pair<std::string, int64_t>, Expected>& sums,
                           const std::vector<std::string>& model_names, const std::vector<std::string>& domains,
                           int64_t L) {
  ASSERT_EQ(report.rows.size(), model_names.size() * domains.size());
  ASSERT_EQ(report.layers.size(), report.rows.size() * static_cast<size_t>(L + 1));
  size_t row_index = 0, layer_index = 0;
  for (const auto& name : model_names) {
    for (int64_t label = 0; label < static_cast<int64_t>(domains.size()); ++label) {
      const auto& r = report.rows[row_index++];
      const auto& e = sums.at({name, label});
      SCOPED_TRACE(name + " / " + domains[static_cast<size_t>(label)]);
      EXPECT_EQ(r.model, name);
      EXPECT_EQ(r.domain, domains[static_cast<size_t>(label)]);
      double total = 0, nll = 0;
      for (size_t d = 0; d < e.tokens.size(); ++d) total += e.tokens[d], nll += e.nll[d];
      const auto interval = perplexity_interval(e.nll, e.tokens);
      EXPECT_EQ(r.tokens, static_cast<int64_t>(total));
      EXPECT_EQ(r.documents, static_cast<int64_t>(e.tokens.size()));
      EXPECT_TRUE(near(r.ppl, std::exp(nll / total)));
      EXPECT_TRUE(near(r.ppl_lo, interval.lo));
      EXPECT_TRUE(near(r.ppl_hi, interval.hi));
      EXPECT_TRUE(near(r.acc, e.correct / total, 0, 1e-12));
      EXPECT_TRUE(near(r.jsd, e.jsd / total));
      EXPECT_TRUE(near(r.cosine, e.cosine / total));
      EXPECT_TRUE(near(r.mse, e.mse / total));
      for (int64_t i = 0; i <= L; ++i) {
        const auto& l = report.layers[layer_index++];
        const auto& want = e.l2[static_cast<size_t>(i)];
        SCOPED_TRACE("layer " + std::to_string(i));
        EXPECT_EQ(l.model, name);
        EXPECT_EQ(l.domain, r.domain);
        EXPECT_EQ(l.layer, i);
        EXPECT_TRUE(near(l.l2_base, want[0] / total));
        EXPECT_TRUE(near(l.l2_fine, want[1] / total));
        EXPECT_TRUE(near(l.l2_base_fine, want[2] / total));
      }
    }
  }
}

// Text the base expert continues greedily from <|endoftext|>: its own argmax
// at every position, so the accuracy comparison is not one of zeros.
std::string greedy_text(GPT2 model, int64_t tokens) {
  c10::InferenceMode inference;
  std::vector<int64_t> ids = {*gpt2().eos_id()};
  for (int64_t k = 0; k < tokens; ++k) {
    const auto logits = model->forward(torch::tensor(ids, torch::kLong).view({1, -1}));  // (1,T,V)
    ids.push_back(logits[0][-1].argmax().item<int64_t>());
  }
  return gpt2().decode(std::vector<int64_t>(ids.begin() + 1, ids.end()));
}

const std::vector<Document>& documents() {
  static const std::vector<Document> docs = {
      {"The cat sat on the mat.", 0, "en", ""},
      {"Le chat dort sur le tapis.", 1, "fr", ""},
      {"A dog barked twice.", 0, "en", ""},
      {"Il pleut sur la ville.", 1, "fr", ""},
      {"Hello there.", 0, "en", ""},
  };
  return docs;
}

std::vector<std::string> all_model_names() {
  std::vector<std::string> names;
  for (EvalModel m : default_eval_models(true)) names.push_back(eval_model_name(m));
  return names;
}

class Evaluate : public ::testing::TestWithParam<AlphaVariant> {
 protected:
  void SetUp() override {
    std::tie(base_, fine_) = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", torch::kCPU,
                                          torch::kFloat32);
    torch::manual_seed(11);
    superposition_ = SuperposedModel(base_.model, fine_.model,
                                     SuperposedConfig::defaults(GetParam(), base_.config, ConvMode::kCausal));
    L_ = base_.config.n_layer;
  }

  LoadedModel base_, fine_;
  SuperposedModel superposition_{nullptr};
  int64_t L_ = 0;
};

TEST_P(Evaluate, EveryModelMatchesADirectComputation) {
  // Left in training mode with an override set: evaluate must score the
  // learned α without dropout and give both back.
  superposition_->train();
  superposition_->set_alpha(0.3);
  EvalOptions options;
  options.seq_len = 4;     // several windows per document
  options.batch_size = 3;  // batches mix documents, labels and padded windows
  auto docs = documents();
  const std::string greedy = greedy_text(base_.model, 6);
  docs.push_back({greedy, 0, "en", ""});
  const EvalReport report = evaluate(base_, fine_, superposition_, docs, gpt2(), options);
  EXPECT_TRUE(superposition_->is_training());
  ASSERT_TRUE(superposition_->has_alpha_override());
  EXPECT_TRUE(torch::all(superposition_->effective_alpha() == 0.3f).item<bool>());
  superposition_->eval();
  superposition_->clear_alpha_override();

  EXPECT_EQ(all_model_names(), (std::vector<std::string>{"base", "fine", "superposition", "superposition-a0",
                                                         "superposition-a1", "linear", "task-arithmetic",
                                                         "alpha-hard"}));
  EXPECT_TRUE(report.causal);
  EXPECT_EQ(report.seq_len, 4);
  EXPECT_TRUE(report.missing_domains.empty());

  // The merges by hand: (θb+θf)/2 for linear and task arithmetic (t = λ = 0.5);
  // for alpha-hard each block at its mean learned α, the embeddings at the
  // mean over layers, ln_f from the base.
  const auto alpha = superposition_->learned_alpha().to(torch::kFloat64);
  const auto layer_alpha = alpha.dim() == 2 ? alpha.mean(1) : alpha;  // (L)
  const double mean_alpha = layer_alpha.mean().item<double>();
  const GPT2 half = hand_merged(base_, fine_, [](const std::string&) { return 0.5; });
  const GPT2 hard = hand_merged(base_, fine_, [&](const std::string& name) {
    if (name.rfind("h.", 0) == 0) return layer_alpha[std::stoll(name.substr(2))].item<double>();
    if (name == "wte.weight" || name == "wpe.weight") return mean_alpha;
    return 0.0;
  });
  const auto zeros = torch::zeros_like(superposition_->learned_alpha());
  const std::vector<Direct> models = {
      gpt2_direct("base", base_.model),
      gpt2_direct("fine", fine_.model),
      superposed_direct("superposition", superposition_, {}),
      superposed_direct("superposition-a0", superposition_, zeros),
      superposed_direct("superposition-a1", superposition_, zeros + 1),
      gpt2_direct("linear", half),
      gpt2_direct("task-arithmetic", half),
      gpt2_direct("alpha-hard", hard),
  };
  const auto sums = direct_sums(models, models[0], models[1], docs, 4, L_);
  expect_report_matches(report, sums, all_model_names(), {"en", "fr"}, L_);

  // An expert against itself, and its greedy text.
  EXPECT_EQ(report.rows[0].mse, 0.0);  // base on its own domain
  EXPECT_EQ(report.layers[0].l2_base, 0.0);
  EXPECT_GT(report.rows[0].acc, 0.1);
}

TEST_P(Evaluate, MergedModelsAreTheHandMerges) {
  // The weights behind the linear / task-arithmetic / alpha-hard rows.
  MergeOptions linear;
  linear.method = MergeMethod::kLinear;
  const GPT2 merged = merged_model(base_, fine_, linear);
  const auto b = base_.model->named_parameters(), f = fine_.model->named_parameters();
  for (const auto& item : merged->named_parameters()) {
    SCOPED_TRACE(item.key());
    EXPECT_TRUE(testing::all_close(item.value(), (b[item.key()] + f[item.key()]) / 2, 1e-7));
  }
  const MergeOptions hard = alpha_hard_options(*superposition_);
  const auto alpha = superposition_->learned_alpha().to(torch::kFloat64);
  ASSERT_EQ(hard.layer_alpha.size(), static_cast<size_t>(L_));
  for (int64_t l = 0; l < L_; ++l) {
    const double want = alpha.dim() == 2 ? alpha[l].mean().item<double>() : alpha[l].item<double>();
    EXPECT_NEAR(hard.layer_alpha[static_cast<size_t>(l)], want, 1e-12);
  }
  EXPECT_TRUE(hard.blend_embeddings);
}

TEST_P(Evaluate, OneDocumentPerDomainHasNoIntervalAndSubsetsKeepTheirOrder) {
  EvalOptions options;
  options.seq_len = 5;
  options.max_documents = 1;
  options.models = parse_eval_models("alpha-hard,base", true);
  const EvalReport report = evaluate(base_, fine_, superposition_, documents(), gpt2(), options);
  ASSERT_EQ(report.rows.size(), 4u);
  EXPECT_EQ(report.rows[0].model, "alpha-hard");
  EXPECT_EQ(report.rows[2].model, "base");
  for (const auto& r : report.rows) {
    EXPECT_EQ(r.documents, 1);
    EXPECT_TRUE(std::isnan(r.ppl_lo));
    EXPECT_TRUE(std::isnan(r.ppl_hi));
    EXPECT_TRUE(std::isfinite(r.ppl));
  }
  // The first document of each label, in file order: "The cat ..." and "Le chat ...";
  // every token of a document is a target once (its first after the EOS).
  EXPECT_EQ(report.rows[2].tokens, static_cast<int64_t>(gpt2().encode(documents()[0].text).size()));
  EXPECT_EQ(report.rows[3].tokens, static_cast<int64_t>(gpt2().encode(documents()[1].text).size()));
}

INSTANTIATE_TEST_SUITE_P(Variants, Evaluate, ::testing::Values(AlphaVariant::k1D, AlphaVariant::k2D),
                         [](const auto& info) { return info.param == AlphaVariant::k1D ? "1D" : "2D"; });

class EvaluateExperts : public ::testing::Test {
 protected:
  void SetUp() override {
    std::tie(base_, fine_) = load_experts(kFixtures / "gpt2-tiny", kFixtures / "gpt2-tiny-fine", torch::kCPU,
                                          torch::kFloat32);
  }
  LoadedModel base_, fine_;
};

TEST_F(EvaluateExperts, WithoutASuperpositionOnlyExpertsAndMergesAndOneLabelGivesOneDomain) {
  std::vector<Document> english;
  for (const auto& d : documents()) {
    if (d.label == 0) english.push_back(d);
  }
  EvalOptions options;
  options.seq_len = 3;
  const EvalReport report = evaluate(base_, fine_, SuperposedModel(nullptr), english, gpt2(), options);
  std::vector<std::string> models;
  for (const auto& r : report.rows) {
    EXPECT_EQ(r.domain, "en");
    models.push_back(r.model);
  }
  EXPECT_EQ(models, (std::vector<std::string>{"base", "fine", "linear", "task-arithmetic"}));
  EXPECT_EQ(report.missing_domains, (std::vector<std::string>{"fine"}));
  EXPECT_TRUE(report.causal);
}

TEST_F(EvaluateExperts, BadOptionsAndDataThrowNamedErrors) {
  auto run = [&](EvalOptions o) {
    if (o.seq_len == 128) o.seq_len = 8;  // the default is beyond the tiny models' 64 positions
    return evaluate(base_, fine_, SuperposedModel(nullptr), documents(), gpt2(), o);
  };
  EvalOptions o;
  o.seq_len = 0;
  SUPERPOSE_EXPECT_THROW_WITH(run(o), Error, "--seq-len", "at least 1");
  o.seq_len = 65;
  SUPERPOSE_EXPECT_THROW_WITH(run(o), Error, "--seq-len", "65", "context of 64");
  o = {};
  o.batch_size = 0;
  SUPERPOSE_EXPECT_THROW_WITH(run(o), Error, "--batch-size");
  o = {};
  o.max_documents = -1;
  SUPERPOSE_EXPECT_THROW_WITH(run(o), Error, "--max-documents");
  o = {};
  o.models = {EvalModel::kBase, EvalModel::kSuperposition};
  SUPERPOSE_EXPECT_THROW_WITH(run(o), Error, "--models", "'superposition' needs a superposition");
  o = {};
  o.progress = [](int64_t, int64_t) { return false; };
  SUPERPOSE_EXPECT_THROW_WITH(run(o), Error, "eval: cancelled");

  SUPERPOSE_EXPECT_THROW_WITH(parse_eval_models("base,nope", false), Error, "--models", "unknown model 'nope'");
  SUPERPOSE_EXPECT_THROW_WITH(parse_eval_models("base,base", false), Error, "'base' is listed twice");
  SUPERPOSE_EXPECT_THROW_WITH(parse_eval_models("", false), Error, "--models", "unknown model ''");
  SUPERPOSE_EXPECT_THROW_WITH(parse_eval_models("alpha-hard", false), Error, "needs a superposition");
}

TEST_F(EvaluateExperts, DocumentsWithoutATargetTokenAreAnError) {
  // GPT-2's vocabulary without <|endoftext|>: nothing precedes a document,
  // so a one-token document predicts nothing.
  testing::TempDir tmp;
  testing::write_tokenizer_without_eos(tmp.path());
  const Tokenizer no_eos = Tokenizer::from_dir(tmp.path());
  ASSERT_FALSE(no_eos.eos_id().has_value());
  const std::vector<Document> docs = {{"Hello", 0, "", ""}, {"world", 1, "", ""}};
  EvalOptions options;
  options.seq_len = 8;
  SUPERPOSE_EXPECT_THROW_WITH(evaluate(base_, fine_, SuperposedModel(nullptr), docs, no_eos, options), Error,
                              "eval: no document has a target token");
}

// ---- Output formats --------------------------------------------------------

EvalReport sample_report() {
  EvalReport report;
  report.seq_len = 128;
  report.causal = false;
  report.rows = {
      {"base", "en", 31.25, 29.5, 33.0625, 0.375, 0.0123, 0.96875, 0.0, 1024, 12, true},
      {"superposition", "fr, \"quoted\"", 12.5, kNaN, kNaN, 0.5, 0.25, 0.75, 1.5e-3, 7, 1, false},
  };
  report.layers = {
      {"base", "en", 0, 0.0, 0.3125, 0.3125, true},
      {"superposition", "fr, \"quoted\"", 3, 4.75, 4.5, 2.875, false},
  };
  return report;
}

// A minimal RFC 4180 reader: fields of each line, quotes undone.
std::vector<std::vector<std::string>> read_csv(const std::string& text) {
  std::vector<std::vector<std::string>> lines(1, std::vector<std::string>(1));
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        lines.back().back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        lines.back().back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      lines.back().emplace_back();
    } else if (c == '\n') {
      lines.emplace_back(1);
    } else {
      lines.back().back() += c;
    }
  }
  if (lines.back().size() == 1 && lines.back()[0].empty()) lines.pop_back();
  return lines;
}

double number(const std::string& text) { return text == "nan" ? kNaN : std::stod(text); }

TEST(EvalOutput, JsonHasExactlyTheDocumentedKeys) {
  const auto report = sample_report();
  const auto j = eval_json(report, "val.jsonl");
  std::set<std::string> top, row, layer;
  for (const auto& item : j.items()) top.insert(item.key());
  for (const auto& item : j["rows"][0].items()) row.insert(item.key());
  for (const auto& item : j["layers"][0].items()) layer.insert(item.key());
  EXPECT_EQ(top, (std::set<std::string>{"rows", "layers", "causal", "data", "seq_len"}));
  EXPECT_EQ(row, (std::set<std::string>{"model", "domain", "ppl", "ppl_lo", "ppl_hi", "acc", "jsd", "cosine", "mse",
                                        "tokens", "documents"}));
  EXPECT_EQ(layer, (std::set<std::string>{"model", "domain", "layer", "l2_base", "l2_fine", "l2_base_fine"}));
  EXPECT_EQ(j["causal"], false);
  EXPECT_EQ(j["data"], "val.jsonl");
  EXPECT_EQ(j["seq_len"], 128);
  EXPECT_EQ(j["rows"][0]["ppl_lo"].get<double>(), 29.5);
  EXPECT_EQ(j["rows"][0]["tokens"], 1024);
  EXPECT_TRUE(j["rows"][1]["ppl_lo"].is_null());  // NaN
  EXPECT_TRUE(j["rows"][1]["ppl_hi"].is_null());
  EXPECT_EQ(j["rows"][1]["domain"], "fr, \"quoted\"");
  EXPECT_EQ(j["layers"][1]["layer"], 3);
  EXPECT_EQ(j["layers"][1]["l2_base_fine"].get<double>(), 2.875);
  // Serialises (NaN would not) and parses back to the same document.
  EXPECT_EQ(nlohmann::json::parse(j.dump()), j);
}

TEST(EvalOutput, CsvReadsBackToTheSameNumbers) {
  const auto report = sample_report();
  const auto rows = read_csv(eval_rows_csv(report));
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"model", "domain", "ppl", "ppl_lo", "ppl_hi", "acc", "jsd", "cosine",
                                               "mse", "tokens", "documents", "causal"}));
  for (size_t i = 0; i < report.rows.size(); ++i) {
    const auto& r = report.rows[i];
    const auto& f = rows[i + 1];
    ASSERT_EQ(f.size(), 12u);
    EXPECT_EQ(f[0], r.model);
    EXPECT_EQ(f[1], r.domain);
    const double values[] = {r.ppl, r.ppl_lo, r.ppl_hi, r.acc, r.jsd, r.cosine, r.mse};
    for (size_t k = 0; k < 7; ++k) {
      if (std::isnan(values[k])) {
        EXPECT_EQ(f[2 + k], "nan");
      } else {
        EXPECT_EQ(number(f[2 + k]), values[k]) << rows[0][2 + k];  // shortest text that reads back exactly
      }
    }
    EXPECT_EQ(std::stoll(f[9]), r.tokens);
    EXPECT_EQ(std::stoll(f[10]), r.documents);
    EXPECT_EQ(f[11], r.causal ? "true" : "false");
  }
  const auto layers = read_csv(eval_layers_csv(report));
  ASSERT_EQ(layers.size(), 3u);
  EXPECT_EQ(layers[0],
            (std::vector<std::string>{"model", "domain", "layer", "l2_base", "l2_fine", "l2_base_fine", "causal"}));
  EXPECT_EQ(layers[2], (std::vector<std::string>{"superposition", "fr, \"quoted\"", "3", "4.75", "4.5", "2.875",
                                                 "false"}));
  EXPECT_EQ(number(layers[1][4]), 0.3125);
}

// The cells of each Markdown table line ("| a | b |" -> {"a", "b"}).
std::vector<std::vector<std::string>> markdown_rows(const std::string& text) {
  std::vector<std::vector<std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| ", 0) != 0) continue;
    std::vector<std::string> cells;
    size_t start = 2;
    for (size_t bar; (bar = line.find(" | ", start)) != std::string::npos; start = bar + 3) {
      cells.push_back(line.substr(start, bar - start));
    }
    cells.push_back(line.substr(start, line.size() - 2 - start));
    out.push_back(cells);
  }
  return out;
}

TEST(EvalOutput, MarkdownReadsBackToTheSameNumbersAtItsPrecision) {
  const auto report = sample_report();
  const std::string md = eval_markdown(report, "val.jsonl");
  EXPECT_NE(md.find("non-causal"), std::string::npos);
  const auto rows = markdown_rows(md);
  // Header, then the rows table, header, then the layers table ("|---|" lines are not "| " lines).
  ASSERT_EQ(rows.size(), 2u + report.rows.size() + report.layers.size());
  EXPECT_EQ(rows[0], (std::vector<std::string>{"model", "domain", "ppl [95% CI]", "acc", "JSD", "cosine", "MSE"}));
  // "| base | en | 31.25 [29.50, 33.06] | ..." : ppl and interval to 2 decimals, acc and cosine to 4,
  // JSD and MSE to 4 significant digits.
  const auto& base = rows[1];
  EXPECT_EQ(base[0], "base");
  double ppl = 0, lo = 0, hi = 0;
  ASSERT_EQ(std::sscanf(base[2].c_str(), "%lf [%lf, %lf]", &ppl, &lo, &hi), 3) << base[2];
  const auto& r = report.rows[0];
  EXPECT_NEAR(ppl, r.ppl, 0.005);
  EXPECT_NEAR(lo, r.ppl_lo, 0.005);
  EXPECT_NEAR(hi, r.ppl_hi, 0.005);
  EXPECT_NEAR(std::stod(base[3]), r.acc, 5e-5);
  EXPECT_NEAR(std::stod(base[4]), r.jsd, 5e-4 * r.jsd);
  EXPECT_NEAR(std::stod(base[5]), r.cosine, 5e-5);
  EXPECT_EQ(std::stod(base[6]), r.mse);
  const auto& sp = rows[2];
  EXPECT_EQ(sp[1], "fr, \"quoted\"");
  EXPECT_EQ(sp[2], "12.50 n/a");  // one document: no interval
  EXPECT_NEAR(std::stod(sp[6]), 1.5e-3, 1e-9);
  const auto& layer = rows[rows.size() - 1];
  EXPECT_EQ(layer, (std::vector<std::string>{"superposition", "fr, \"quoted\"", "3", "4.75", "4.5", "2.875"}));
  // A causal report has no note.
  auto causal = report;
  causal.causal = true;
  EXPECT_EQ(eval_markdown(causal, "val.jsonl").find("non-causal"), std::string::npos);
}

}  // namespace
}  // namespace superpose
