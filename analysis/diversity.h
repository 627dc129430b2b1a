// Generation-diversity metrics (SPEC §6) over a set of generated token-id
// sequences: distinct-n, self-BLEU and n-gram entropy.
//
// A generation is a sequence of token ids; ids are opaque symbols (any int64
// value). N-grams are contiguous and never cross generations; a generation of
// length L has max(0, L − n + 1) n-grams. Empty generations are allowed.
//
// distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for
//   Neural Conversation Models"), corpus level: the number of distinct n-grams
//   over all generations divided by the total number of n-grams over all
//   generations. For n = 1 that is distinct tokens / tokens, the paper's
//   wording; for n > 1 the denominator is n-grams, not tokens, as in most
//   implementations. Also the per-generation mean: the mean, over generations
//   with at least one n-gram, of distinct / total n-grams within each.
//
// n-gram entropy: Shannon entropy in nats of the n-gram frequency
//   distribution pooled over all generations,
//   H_n = −Σ_g p(g) ln p(g),  p(g) = count(g) / total n-grams.
//   Bits are nats / ln 2 (to_json writes both).
//
// BLEU-N is exactly NLTK's
//   sentence_bleu(references, hypothesis, weights=(1/N,)*N,
//                 smoothing_function=SmoothingFunction().method1)
//   (nltk.translate.bleu_score; method1 with its default ε = 0.1):
//     p_m = Σ_g min(c_h(g), max_r c_r(g)) / max(1, Σ_g c_h(g)),  m = 1..N,
//       c_h, c_r the m-gram counts of the hypothesis and of reference r: the
//       clip is the largest count in any one reference, not the sum;
//     a p_m whose numerator is 0 becomes 0.1 / its denominator (method1);
//     BLEU = BP · exp(Σ_m (1/N) ln p_m),
//     BP = 1 if h > r, 0 if h = 0, else exp(1 − r/h), with h the hypothesis
//       length and r the reference length closest to h (ties: the shorter);
//     BLEU = 0 when no unigram of the hypothesis occurs in any reference
//       (NLTK returns 0 before smoothing), so an empty hypothesis scores 0.
//
// self-BLEU-N: for each generation, BLEU-N with that generation as hypothesis
//   and all the other generations as references; the mean over generations.
//   This is the leave-one-out definition of Texygen's SelfBleu
//   (get_bleu_parallel with gram = N; its default "fast" path scores only the
//   first 500 sentences) and of fast-bleu's SelfBLEU (smoothing_func = 1).
//   Those tools tokenise words; numbers agree only on the same tokens.
//   Computed in O(total n-grams) per order, not O(G²): for every n-gram the
//   largest and second-largest count over generations (and which generation
//   holds the largest) give the largest count over "all others".
//
// Undefined values are NaN (JSON null): distinct-n and entropy when no
// generation is at least n tokens long, the per-generation mean likewise.
//
// Errors: superpose::Error with one line naming the argument — "generations"
// for an empty set, or fewer than two generations for self-BLEU;
// "references" for an empty reference set; "n", "max_n" and the
// DiversityOptions field names for orders below 1. Every function is pure
// and may be called from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace superpose {

// distinct-n of a set of generations.
struct DistinctN {
  int64_t n = 0;
  int64_t distinct = 0;             // distinct n-grams over all generations
  int64_t ngrams = 0;               // total n-grams over all generations
  double corpus = 0;                // distinct / ngrams; NaN when ngrams == 0
  double mean_per_generation = 0;   // see the file comment; NaN when no generation has an n-gram
};

// Entropy of the pooled n-gram distribution.
struct NgramEntropy {
  int64_t n = 0;
  int64_t distinct = 0;  // support size
  int64_t ngrams = 0;    // total n-grams
  double nats = 0;       // NaN when ngrams == 0
};

// Throws Error("generations", ...) for an empty set, Error("n", ...) for n < 1.
DistinctN distinct_n(const std::vector<std::vector<int64_t>>& generations, int64_t n);
NgramEntropy ngram_entropy(const std::vector<std::vector<int64_t>>& generations, int64_t n);

// BLEU-max_n of one hypothesis against its references (NLTK definition above).
// Throws Error("references", ...) for no reference, Error("max_n", ...) for max_n < 1.
double sentence_bleu(const std::vector<int64_t>& hypothesis, const std::vector<std::vector<int64_t>>& references,
                     int64_t max_n = 4);

// Self-BLEU-max_n of every generation against all the others, in input order,
// and their mean. Throws Error("generations", ...) for fewer than two
// generations, Error("max_n", ...) for max_n < 1.
std::vector<double> self_bleu_scores(const std::vector<std::vector<int64_t>>& generations, int64_t max_n = 4);
double self_bleu(const std::vector<std::vector<int64_t>>& generations, int64_t max_n = 4);

struct DiversityOptions {
  std::vector<int64_t> distinct_orders = {1, 2};  // distinct-n for each n, each >= 1
  int64_t entropy_max_n = 4;                      // entropy for n = 1..entropy_max_n, >= 1
  int64_t bleu_max_n = 4;                         // self-BLEU-bleu_max_n, >= 1
};

struct DiversityReport {
  int64_t generations = 0;
  int64_t tokens = 0;                 // Σ lengths
  std::vector<DistinctN> distinct;    // one per DiversityOptions::distinct_orders, same order
  std::vector<NgramEntropy> entropy;  // n = 1..entropy_max_n
  int64_t bleu_max_n = 0;
  double self_bleu = 0;               // mean self-BLEU-bleu_max_n
};

// All the metrics above for one set of generations. Throws
// Error("generations", ...) for fewer than two generations (self-BLEU needs
// two), Error("distinct_orders" / "entropy_max_n" / "bleu_max_n", ...) for an
// order below 1.
DiversityReport diversity_report(const std::vector<std::vector<int64_t>>& generations,
                                 const DiversityOptions& options = {});

// {"generations": G, "tokens": T,
//  "distinct": [{"n", "distinct", "ngrams", "corpus", "mean_per_generation"}...],
//  "entropy": [{"n", "distinct", "ngrams", "nats", "bits"}...],
//  "self_bleu": {"max_n": N, "smoothing": "nltk-method1-epsilon-0.1", "mean": x}};
// NaN numbers are null.
nlohmann::json to_json(const DiversityReport& report);

}  // namespace superpose
