// Analysis speed: t-SNE of 768-d states and neuron diversity of a layer, timed
// as one plain program (runs of seconds to minutes) printing one JSON line per
// measurement. bench/run-analysis drives it next to the scikit-learn
// references bench/reference_tsne.py and bench/reference_diversity.py.
//
//   bench_analysis make-data --out FILE [--n 10000] [--dim 768] [--clusters 10] [--seed 0]
//       A Gaussian mixture: "x" (N,dim) float32, "labels" (N) int64.
//   bench_analysis tsne --data FILE [--device cpu|cuda] [--iterations 1000] [--n N]
//       t-SNE (perplexity 30, PCA to 50 dims first) of the first N rows:
//       construction (upload, PCA, kNN, affinities, initial layout) and the
//       optimisation timed apart; KL and, for N ≤ 20000, trustworthiness
//       (k = 10, on the first 5000 rows at most) measured after, untimed.
//   bench_analysis make-neurons --out FILE [--n 20000] [--neurons 768] [--vocab 8192] [--docs 200] [--seed 0]
//       Synthetic activations of neurons that fire on recurring phrases (see
//       make_neurons): "acts" (N,D) float32, "token_ids" (N) int64,
//       "documents" (N) int64.
//   bench_analysis diversity --data FILE [--device cpu|cuda] [--out-values FILE.json]
//       neuron_diversity with its defaults (top 100, ±5 tokens, k = 5), the
//       context windows included in the time.
//
// The data are deterministic in --seed: drawn from torch's CPU generator (and
// a std::mt19937_64 for make-neurons' text), so a file is the same on every
// machine with the same LibTorch. On CUDA a small
// run first loads the kernels and libraries, and the clocks stop only after
// the device has finished (torch::cuda::synchronize).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include "analysis/knn.h"
#include "analysis/neurons.h"
#include "analysis/tsne.h"
#include "model/device.h"
#include "model/errors.h"
#include "model/safetensors.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// "--key value" pairs after the subcommand; a key not in `allowed` is an error.
class Args {
 public:
  Args(int argc, char** argv, const std::set<std::string>& allowed) {
    for (int i = 2; i < argc; i += 2) {
      const std::string key = argv[i];
      if (key.rfind("--", 0) != 0 || !allowed.count(key.substr(2))) throw superpose::Error(key, "unknown option");
      if (i + 1 >= argc) throw superpose::Error(key, "needs a value");
      values_[key.substr(2)] = argv[i + 1];
    }
  }
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  std::string text(const std::string& key, const std::string& fallback = "") const {
    const auto it = values_.find(key);
    if (it != values_.end()) return it->second;
    if (fallback.empty()) throw superpose::Error("--" + key, "is required");
    return fallback;
  }
  int64_t integer(const std::string& key, int64_t fallback, int64_t least = 1) const {
    if (!has(key)) return fallback;
    const std::string value = values_.at(key);
    size_t used = 0;
    int64_t parsed = 0;
    try {
      parsed = std::stoll(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != value.size() || parsed < least) {
      throw superpose::Error("--" + key, "expected an integer of at least " + std::to_string(least) + ", got '" + value + "'");
    }
    return parsed;
  }

 private:
  std::map<std::string, std::string> values_;
};

// One flat JSON object, keys in insertion order.
class JsonLine {
 public:
  JsonLine& add(const std::string& key, const std::string& value) {
    std::string quoted = "\"";
    for (const char c : value) {
      if (c == '"' || c == '\\') quoted += '\\';
      quoted += (c == '\n' ? ' ' : c);
    }
    return raw(key, quoted + "\"");
  }
  JsonLine& add(const std::string& key, const char* value) { return add(key, std::string(value)); }
  JsonLine& add(const std::string& key, bool value) { return raw(key, value ? "true" : "false"); }
  JsonLine& add(const std::string& key, int64_t value) { return raw(key, std::to_string(value)); }
  JsonLine& add(const std::string& key, double value) {
    std::ostringstream text;
    text << std::setprecision(6) << value;
    return raw(key, std::isfinite(value) ? text.str() : "null");
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  JsonLine& raw(const std::string& key, const std::string& value) {
    body_ += (body_.empty() ? "\"" : ", \"") + key + "\": " + value;
    return *this;
  }
  std::string body_;
};

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

std::string device_label(const torch::Device& device) { return device.is_cuda() ? "cuda" : "cpu"; }

// ---- make-data ----

int make_data(const Args& args) {
  const int64_t n = args.integer("n", 10000), dim = args.integer("dim", 768), clusters = args.integer("clusters", 10);
  const int64_t seed = args.integer("seed", 0, 0);
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  // Centres drawn like the points, so about as far apart (|c_a − c_b|² ≈
  // 2·dim) as two points of one cluster, and clusters of widths 0.5 to 1.5.
  const auto centres = torch::randn({clusters, dim}, generator, torch::kFloat32);                      // (C,dim)
  const auto widths = torch::rand({clusters}, generator, torch::kFloat32) + 0.5;                        // (C)
  const auto labels = torch::randint(clusters, {n}, generator, torch::TensorOptions(torch::kLong));     // (N)
  auto x = torch::randn({n, dim}, generator, torch::kFloat32);                                          // (N,dim)
  x.mul_(widths.index_select(0, labels).unsqueeze(1)).add_(centres.index_select(0, labels));
  const auto out = args.text("out");
  superpose::save_safetensors(out, {{"x", x}, {"labels", labels}},
                              {{"generator", "bench_analysis make-data"}, {"seed", std::to_string(seed)}});
  std::cout << JsonLine().add("what", "make-data").add("n", n).add("dim", dim).add("clusters", clusters).add("out", out).str()
            << std::endl;
  return 0;
}

// ---- tsne ----

int tsne(const Args& args) {
  const auto device = superpose::parse_device(args.text("device", "cpu"));
  const int64_t iterations = args.integer("iterations", 1000);
  const superpose::SafetensorsFile file(args.text("data"));
  auto x = file.load("x", torch::kFloat32);  // (N,dim)
  int64_t n = x.size(0);
  if (args.has("n")) {
    const int64_t wanted = args.integer("n", n);
    if (wanted > n) throw superpose::Error("--n", std::to_string(wanted) + " is more than the " + std::to_string(n) + " rows of the file");
    n = wanted;
    x = x.narrow(0, 0, n).clone();
  }
  superpose::TsneOptions options;
  options.iterations = iterations;
  options.device = device;

  if (device.is_cuda()) {
    // First use of cuBLAS, cuFFT and every kernel of both gradients.
    const auto warm = torch::randn({2000, x.size(1)});
    for (const auto method : {superpose::TsneGradient::kExact, superpose::TsneGradient::kFft}) {
      auto warm_options = options;
      warm_options.gradient = method;
      warm_options.iterations = 5;
      superpose::Tsne run(warm, warm_options);
      run.step(5);
      run.kl_divergence();
    }
    synchronize(device);
    // Page-locked host memory: the upload (timed, in the construction) runs at
    // the bus's speed, as it would for states already on the device.
    x = x.pin_memory();
  }

  auto start = Clock::now();
  superpose::Tsne run(x, options);
  synchronize(device);
  const double setup = seconds_since(start);
  std::cerr << "tsne: " << n << " points, construction " << setup << " s" << std::endl;  // for runs cut short
  start = Clock::now();
  run.step(iterations);
  synchronize(device);
  const double optimise = seconds_since(start);

  const double kl = run.kl_divergence();
  JsonLine line;
  line.add("what", "tsne").add("n", n).add("dim", x.size(1)).add("device", device_label(device))
      .add("gradient", run.method() == superpose::TsneGradient::kExact ? "exact" : "fft")
      .add("fused", run.fused())
      .add("knn", std::string(device.is_cpu() && superpose::knn_uses_faiss() ? "faiss" : "torch") +
                      (n > superpose::KnnOptions{}.approximate_above ? " approximate" : " exact"))
      .add("threads", static_cast<int64_t>(torch::get_num_threads())).add("iterations", iterations)
      .add("setup_s", setup).add("optimise_s", optimise).add("total_s", setup + optimise).add("kl", kl);
  if (n <= 20000) {
    // The input's own 768-d neighbourhoods, as scikit-learn's trustworthiness
    // measures them; the first rows are a random sample (labels are i.i.d.).
    const int64_t rows = std::min<int64_t>(n, 5000);
    const auto embedding = run.embedding();
    line.add("trustworthiness_k10", superpose::trustworthiness(x.narrow(0, 0, rows).cpu(), embedding.narrow(0, 0, rows), 10))
        .add("trustworthiness_rows", rows);
  }
  std::cout << line.str() << std::endl;
  return 0;
}

// ---- make-neurons ----

// Text made of filler and recurring phrases, and neurons that fire on
// phrases. A phrase repeats one 11-token motif three times, so the ±5-token
// window of each of its 23 inner tokens holds the motif's 11 tokens once: the
// same bag of tokens. A neuron fires (strength 2 to 3.5, over Gaussian noise
// of std 0.5) on the inner tokens of 1 to 4 motifs, so its top 100 rows are
// the windows of one motif or a mixture of a few, in proportions set by the
// strengths and the noise. Their clustering has a definite answer (a few
// groups of identical bags), so two k-means implementations can be compared
// on it, and a neuron's diversity says how many kinds of context it has.
constexpr int64_t kMotif = 11;                   // tokens: the window of context 5
constexpr int64_t kPhrase = 3 * kMotif;          // a motif three times
constexpr int64_t kMotifs = 64;
constexpr int64_t kMaxTriggers = 4;

int make_neurons(const Args& args) {
  const int64_t n = args.integer("n", 20000), d = args.integer("neurons", 768), vocab = args.integer("vocab", 8192),
                docs = args.integer("docs", 200);
  const int64_t seed = args.integer("seed", 0, 0);
  if (n / docs < 2 * kPhrase) {
    throw superpose::Error("--docs", std::to_string(docs) + " documents of " + std::to_string(n / docs) +
                                         " rows: each needs at least " + std::to_string(2 * kPhrase));
  }
  // The layout of the text comes from a mt19937_64 (portable: only its raw
  // output is used), the activations' noise from torch's generator.
  std::mt19937_64 rng(static_cast<uint64_t>(seed));
  const auto below = [&](int64_t bound) { return static_cast<int64_t>(rng() % static_cast<uint64_t>(bound)); };
  // Token ids from a Zipf law, p(id) ∝ 1 / (id + 1), as in text.
  std::vector<double> cumulative(static_cast<size_t>(vocab));
  double total = 0;
  for (int64_t id = 0; id < vocab; ++id) cumulative[static_cast<size_t>(id)] = total += 1.0 / static_cast<double>(id + 1);
  const auto zipf_token = [&] {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * total;
    return std::min<int64_t>(std::upper_bound(cumulative.begin(), cumulative.end(), u) - cumulative.begin(), vocab - 1);
  };
  std::vector<std::vector<int64_t>> motifs(kMotifs, std::vector<int64_t>(kMotif));
  for (auto& motif : motifs) {
    for (auto& token : motif) token = zipf_token();
  }

  std::vector<int64_t> token_ids, documents, motif_of;  // motif_of: the motif of an inner phrase row, else kMotifs
  token_ids.reserve(static_cast<size_t>(n));
  for (int64_t doc = 0; doc < docs; ++doc) {
    const int64_t length = n / docs + (doc < n % docs ? 1 : 0);
    const auto emit = [&](int64_t token, int64_t motif) {
      token_ids.push_back(token);
      documents.push_back(doc);
      motif_of.push_back(motif);
    };
    for (int64_t used = 0; used < length;) {
      for (int64_t filler = below(8); filler > 0 && used < length; --filler, ++used) emit(zipf_token(), kMotifs);
      if (length - used < kPhrase) continue;  // no phrase cut by the document's end
      const int64_t m = below(kMotifs);
      for (int64_t i = 0; i < kPhrase; ++i, ++used) {
        const bool inner = i >= kMotif / 2 && i < kPhrase - kMotif / 2;
        emit(motifs[static_cast<size_t>(m)][static_cast<size_t>(i % kMotif)], inner ? m : kMotifs);
      }
    }
  }

  // Response of each neuron to each motif (a last row of zeros for the rest): (kMotifs+1, D).
  auto response = torch::zeros({kMotifs + 1, d}, torch::kFloat32);
  auto r = response.accessor<float, 2>();
  for (int64_t neuron = 0; neuron < d; ++neuron) {
    for (int64_t t = below(kMaxTriggers) + 1; t > 0; --t) {
      r[below(kMotifs)][neuron] = 2.0f + 1.5f * static_cast<float>(static_cast<double>(rng() >> 11) * 0x1.0p-53);
    }
  }
  auto generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  auto acts = torch::randn({n, d}, generator, torch::kFloat32).mul_(0.5);  // (N,D)
  acts.add_(response.index_select(0, torch::tensor(motif_of, torch::kLong)));
  const auto out = args.text("out");
  superpose::save_safetensors(out,
                              {{"acts", acts}, {"token_ids", torch::tensor(token_ids, torch::kLong)},
                               {"documents", torch::tensor(documents, torch::kLong)}},
                              {{"generator", "bench_analysis make-neurons"}, {"seed", std::to_string(seed)}});
  std::cout << JsonLine().add("what", "make-neurons").add("rows", n).add("neurons", d).add("vocab", vocab)
                   .add("docs", docs).add("out", out).str()
            << std::endl;
  return 0;
}

// ---- diversity ----

int diversity(const Args& args) {
  const auto device = superpose::parse_device(args.text("device", "cpu"));
  const superpose::SafetensorsFile file(args.text("data"));
  const auto token_ids = file.load("token_ids", torch::kLong), documents = file.load("documents", torch::kLong);
  // The activations start on the device, as after a capture there.
  const auto acts = file.load("acts", torch::kFloat32).to(device);  // (N,D)
  const superpose::NeuronDiversityOptions options;                  // top 100, ±5 tokens, k = 5
  if (device.is_cuda()) {
    const auto contexts = superpose::context_windows(token_ids, documents, options.context);
    superpose::neuron_diversity(acts.narrow(1, 0, std::min<int64_t>(8, acts.size(1))), contexts, options);
    synchronize(device);
  }
  const auto start = Clock::now();
  const auto contexts = superpose::context_windows(token_ids, documents, options.context);  // (N,11)
  const auto values = superpose::neuron_diversity(acts, contexts, options);                 // (D) CPU
  const double seconds = seconds_since(start);
  std::cout << JsonLine().add("what", "diversity").add("neurons", acts.size(1)).add("rows", acts.size(0))
                   .add("device", device_label(device)).add("threads", static_cast<int64_t>(torch::get_num_threads()))
                   .add("seconds", seconds).add("mean_diversity", values.to(torch::kFloat64).mean().item<double>()).str()
            << std::endl;
  if (args.has("out-values")) {
    const auto path = args.text("out-values");
    std::ofstream out(path);
    out << std::setprecision(7) << "[";
    const auto v = values.contiguous();
    const auto a = v.accessor<float, 1>();
    for (int64_t i = 0; i < v.size(0); ++i) out << (i ? ", " : "") << a[i];
    out << "]\n";
    if (!out) throw superpose::Error(path, "could not be written");
  }
  return 0;
}

int usage() {
  std::cerr << "usage: bench_analysis make-data|tsne|make-neurons|diversity --option value ...\n"
               "  (the options are listed at the top of bench/bench_analysis.cpp)\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string command = argv[1];
  superpose::tune_cpu_allocator();
  try {
    if (command == "make-data") return make_data(Args(argc, argv, {"n", "dim", "clusters", "seed", "out"}));
    if (command == "tsne") return tsne(Args(argc, argv, {"data", "device", "iterations", "n"}));
    if (command == "make-neurons") return make_neurons(Args(argc, argv, {"n", "neurons", "vocab", "docs", "seed", "out"}));
    if (command == "diversity") return diversity(Args(argc, argv, {"data", "device", "out-values"}));
    return usage();
  } catch (const std::exception& e) {
    // A JSON line too, so that a failed run (out of memory, say) shows in the results table.
    std::string message = e.what();
    message = message.substr(0, message.find('\n'));
    std::cout << JsonLine().add("what", command).add("error", message).str() << std::endl;
    std::cerr << "bench_analysis " << command << ": " << message << "\n";
    return 1;
  }
}
