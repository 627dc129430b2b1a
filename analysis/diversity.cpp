// Generation-diversity metrics: every n-gram is interned once per order to a
// dense id, and all counting then runs over flat arrays of those ids.
#include "analysis/diversity.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <iterator>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>

#include "model/errors.h"

namespace superpose {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMethod1Epsilon = 0.1;  // NLTK SmoothingFunction() default

using Sequence = std::vector<int64_t>;

// The sequences laid end to end, every token replaced by its rank among the
// distinct tokens. Ranks 0..vocab-1 need only `bits` bits each, so n-grams
// pack exactly into a 64-bit key for larger n than raw ids would allow.
struct RankedCorpus {
  std::vector<uint32_t> ranks;   // all tokens, sequence after sequence
  std::vector<int64_t> offsets;  // sequence i is ranks[offsets[i], offsets[i+1])
  int bits = 1;                  // smallest b >= 1 with 2^b >= vocabulary size

  size_t size() const { return offsets.size() - 1; }
  int64_t length(size_t i) const { return offsets[i + 1] - offsets[i]; }
  int64_t max_length() const {
    int64_t longest = 0;
    for (size_t i = 0; i < size(); ++i) longest = std::max(longest, length(i));
    return longest;
  }
};

RankedCorpus rank_tokens(const std::vector<const Sequence*>& sequences) {
  RankedCorpus corpus;
  corpus.offsets.reserve(sequences.size() + 1);
  corpus.offsets.push_back(0);
  std::vector<int64_t> vocab;
  for (const Sequence* s : sequences) {
    vocab.insert(vocab.end(), s->begin(), s->end());
    corpus.offsets.push_back(corpus.offsets.back() + static_cast<int64_t>(s->size()));
  }
  std::sort(vocab.begin(), vocab.end());
  vocab.erase(std::unique(vocab.begin(), vocab.end()), vocab.end());
  assert(vocab.size() <= std::numeric_limits<uint32_t>::max());
  corpus.ranks.reserve(static_cast<size_t>(corpus.offsets.back()));
  for (const Sequence* s : sequences) {
    for (int64_t id : *s) {
      corpus.ranks.push_back(static_cast<uint32_t>(std::lower_bound(vocab.begin(), vocab.end(), id) - vocab.begin()));
    }
  }
  while (corpus.bits < 32 && (uint64_t{1} << corpus.bits) < vocab.size()) ++corpus.bits;
  return corpus;
}

std::vector<const Sequence*> pointers_to(const std::vector<Sequence>& sequences) {
  std::vector<const Sequence*> out;
  out.reserve(sequences.size());
  for (const auto& s : sequences) out.push_back(&s);
  return out;
}

// Every n-gram of a corpus as a dense id 0..distinct-1 (first-seen order).
struct NgramIds {
  std::vector<int64_t> offsets;  // sequence i's n-grams are ids[offsets[i], offsets[i+1]), by position
  std::vector<int64_t> ids;
  int64_t distinct = 0;

  int64_t count(size_t i) const { return offsets[i + 1] - offsets[i]; }
  const int64_t* begin(size_t i) const { return ids.data() + offsets[i]; }
};

uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

NgramIds intern_ngrams(const RankedCorpus& corpus, int64_t n) {
  assert(n >= 1);
  NgramIds out;
  const size_t sequences = corpus.size();
  out.offsets.assign(sequences + 1, 0);
  for (size_t i = 0; i < sequences; ++i) {
    out.offsets[i + 1] = out.offsets[i] + std::max<int64_t>(0, corpus.length(i) - n + 1);
  }
  out.ids.resize(static_cast<size_t>(out.offsets[sequences]));
  if (out.ids.empty()) return out;

  if (n <= 64 / corpus.bits) {
    // The n ranks side by side in one 64-bit key: exact, no collisions.
    const int shift = corpus.bits;
    const int key_bits = static_cast<int>(n) * shift;
    const uint64_t mask = key_bits == 64 ? ~uint64_t{0} : (uint64_t{1} << key_bits) - 1;
    std::unordered_map<uint64_t, int64_t> index;
    index.reserve(out.ids.size());
    for (size_t i = 0; i < sequences; ++i) {
      const int64_t length = corpus.length(i);
      if (length < n) continue;
      const uint32_t* tokens = corpus.ranks.data() + corpus.offsets[i];
      int64_t* ids = out.ids.data() + out.offsets[i];
      uint64_t key = 0;
      for (int64_t t = 0; t < length; ++t) {
        key = ((key << shift) | tokens[t]) & mask;
        if (t + 1 >= n) ids[t + 1 - n] = index.try_emplace(key, static_cast<int64_t>(index.size())).first->second;
      }
    }
    out.distinct = static_cast<int64_t>(index.size());
  } else {
    // Too wide to pack: the key is the position of the n-gram's first token;
    // the hash reads its ranks and equality compares them, so hash
    // collisions cost time, never correctness.
    const uint32_t* base = corpus.ranks.data();
    auto hash = [base, n](int64_t position) {
      uint64_t h = static_cast<uint64_t>(n);
      for (int64_t k = 0; k < n; ++k) h = mix64(h ^ base[position + k]);
      return static_cast<size_t>(h);
    };
    auto equal = [base, n](int64_t a, int64_t b) { return std::equal(base + a, base + a + n, base + b); };
    std::unordered_map<int64_t, int64_t, decltype(hash), decltype(equal)> index(out.ids.size(), hash, equal);
    for (size_t i = 0; i < sequences; ++i) {
      int64_t* ids = out.ids.data() + out.offsets[i];
      for (int64_t s = 0; s < out.count(i); ++s) {
        ids[s] = index.try_emplace(corpus.offsets[i] + s, static_cast<int64_t>(index.size())).first->second;
      }
    }
    out.distinct = static_cast<int64_t>(index.size());
  }
  return out;
}

// The n-gram counts of one sequence, in an array over all ids that is
// cleared through the list of ids it touched (O(sequence), not O(distinct)).
class LocalCounts {
 public:
  explicit LocalCounts(int64_t distinct) : count_(static_cast<size_t>(distinct), 0) {}

  void load(const NgramIds& ngrams, size_t sequence) {
    for (int64_t id : touched_) count_[id] = 0;
    touched_.clear();
    const int64_t* ids = ngrams.begin(sequence);
    for (int64_t k = 0; k < ngrams.count(sequence); ++k) {
      if (count_[ids[k]]++ == 0) touched_.push_back(ids[k]);
    }
  }
  const std::vector<int64_t>& ids() const { return touched_; }  // distinct ids of the loaded sequence
  int64_t operator[](int64_t id) const { return count_[id]; }

 private:
  std::vector<int64_t> count_;
  std::vector<int64_t> touched_;
};

// Modified n-gram precision of one hypothesis at one order, as NLTK keeps it:
// clipped matches over max(1, hypothesis n-grams), unreduced.
struct Precision {
  int64_t numerator = 0;
  int64_t denominator = 1;
};

// NLTK sentence_bleu with uniform weights 1/max_n and method1 smoothing.
// `precisions` holds orders 1..precisions.size(); the orders above that up to
// max_n have no hypothesis n-gram, i.e. precision 0/1.
double bleu_from(const std::vector<Precision>& precisions, int64_t max_n, int64_t hypothesis_length,
                 int64_t closest_reference_length) {
  if (precisions.empty() || precisions[0].numerator == 0) return 0.0;
  const double weight = 1.0 / static_cast<double>(max_n);
  double log_sum = 0;
  for (const Precision& p : precisions) {
    const double value = p.numerator == 0 ? kMethod1Epsilon / static_cast<double>(p.denominator)
                                          : static_cast<double>(p.numerator) / static_cast<double>(p.denominator);
    log_sum += weight * std::log(value);
  }
  const int64_t missing = max_n - static_cast<int64_t>(precisions.size());
  if (missing > 0) log_sum += static_cast<double>(missing) * (weight * std::log(kMethod1Epsilon));
  double brevity = 1.0;
  if (hypothesis_length <= closest_reference_length) {
    brevity = hypothesis_length == 0 ? 0.0
                                     : std::exp(1.0 - static_cast<double>(closest_reference_length) /
                                                          static_cast<double>(hypothesis_length));
  }
  return brevity * std::exp(log_sum);
}

// The closest length to `length` among all lengths in `histogram` except one
// occurrence of `length` itself (which must be there); ties go to the shorter.
int64_t closest_other_length(const std::map<int64_t, int64_t>& histogram, int64_t length) {
  const auto own = histogram.find(length);
  assert(own != histogram.end());
  if (own->second >= 2) return length;
  const auto next = std::next(own);
  if (own == histogram.begin()) {
    assert(next != histogram.end());
    return next->first;
  }
  const int64_t shorter = std::prev(own)->first;
  if (next != histogram.end() && next->first - length < length - shorter) return next->first;
  return shorter;
}

void check_order(const char* argument, int64_t n) {
  if (n < 1) throw Error(argument, "n-gram order must be at least 1, got " + std::to_string(n));
}

void check_not_empty(const std::vector<Sequence>& generations) {
  if (generations.empty()) throw Error("generations", "empty set: there is nothing to measure");
}

void check_two(const std::vector<Sequence>& generations) {
  check_not_empty(generations);
  if (generations.size() < 2) {
    throw Error("generations", "self-BLEU needs at least two generations, got " + std::to_string(generations.size()));
  }
}

DistinctN distinct_of(const RankedCorpus& corpus, int64_t n) {
  const NgramIds ngrams = intern_ngrams(corpus, n);
  DistinctN out;
  out.n = n;
  out.distinct = ngrams.distinct;
  out.ngrams = static_cast<int64_t>(ngrams.ids.size());
  out.corpus = out.ngrams == 0 ? kNaN : static_cast<double>(out.distinct) / static_cast<double>(out.ngrams);
  LocalCounts local(ngrams.distinct);
  double sum = 0;
  int64_t measured = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (ngrams.count(i) == 0) continue;
    local.load(ngrams, i);
    sum += static_cast<double>(local.ids().size()) / static_cast<double>(ngrams.count(i));
    ++measured;
  }
  out.mean_per_generation = measured == 0 ? kNaN : sum / static_cast<double>(measured);
  return out;
}

NgramEntropy entropy_of(const RankedCorpus& corpus, int64_t n) {
  const NgramIds ngrams = intern_ngrams(corpus, n);
  NgramEntropy out;
  out.n = n;
  out.distinct = ngrams.distinct;
  out.ngrams = static_cast<int64_t>(ngrams.ids.size());
  if (out.ngrams == 0) {
    out.nats = kNaN;
    return out;
  }
  std::vector<int64_t> counts(static_cast<size_t>(ngrams.distinct), 0);
  for (int64_t id : ngrams.ids) ++counts[id];
  const double total = static_cast<double>(out.ngrams);
  double entropy = 0;
  for (int64_t c : counts) {
    const double p = static_cast<double>(c) / total;
    entropy -= p * std::log(p);
  }
  out.nats = entropy;
  return out;
}

// Leave-one-out BLEU of every sequence. For each order and n-gram, the
// largest count in any one sequence, the sequence holding it, and the second
// largest (equal to the largest when two sequences tie): the largest count
// among the *other* sequences is then the second largest for the holder and
// the largest for everyone else.
std::vector<double> self_bleu_of(const RankedCorpus& corpus, int64_t max_n) {
  const size_t sequences = corpus.size();
  const int64_t orders = std::min(max_n, corpus.max_length());
  std::vector<std::vector<Precision>> precisions(sequences, std::vector<Precision>(static_cast<size_t>(orders)));
  for (int64_t m = 1; m <= orders; ++m) {
    const NgramIds ngrams = intern_ngrams(corpus, m);
    const size_t distinct = static_cast<size_t>(ngrams.distinct);
    std::vector<int64_t> largest(distinct, 0), second(distinct, 0);
    std::vector<size_t> holder(distinct, sequences);
    LocalCounts local(ngrams.distinct);
    for (size_t i = 0; i < sequences; ++i) {
      local.load(ngrams, i);
      for (int64_t id : local.ids()) {
        const int64_t c = local[id];
        if (c > largest[id]) {
          second[id] = largest[id];
          largest[id] = c;
          holder[id] = i;
        } else if (c > second[id]) {
          second[id] = c;
        }
      }
    }
    for (size_t i = 0; i < sequences; ++i) {
      local.load(ngrams, i);
      int64_t clipped = 0;
      for (int64_t id : local.ids()) {
        const int64_t others = holder[id] == i ? second[id] : largest[id];
        clipped += std::min(local[id], others);
      }
      precisions[i][static_cast<size_t>(m - 1)] = {clipped, std::max<int64_t>(1, ngrams.count(i))};
    }
  }
  std::map<int64_t, int64_t> lengths;
  for (size_t i = 0; i < sequences; ++i) ++lengths[corpus.length(i)];
  std::vector<double> scores(sequences);
  for (size_t i = 0; i < sequences; ++i) {
    const int64_t length = corpus.length(i);
    scores[i] = bleu_from(precisions[i], max_n, length, closest_other_length(lengths, length));
  }
  return scores;
}

double mean(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return sum / static_cast<double>(values.size());
}

nlohmann::json number_or_null(double value) {
  return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(nullptr);
}

}  // namespace

DistinctN distinct_n(const std::vector<std::vector<int64_t>>& generations, int64_t n) {
  check_not_empty(generations);
  check_order("n", n);
  return distinct_of(rank_tokens(pointers_to(generations)), n);
}

NgramEntropy ngram_entropy(const std::vector<std::vector<int64_t>>& generations, int64_t n) {
  check_not_empty(generations);
  check_order("n", n);
  return entropy_of(rank_tokens(pointers_to(generations)), n);
}

double sentence_bleu(const std::vector<int64_t>& hypothesis, const std::vector<std::vector<int64_t>>& references,
                     int64_t max_n) {
  if (references.empty()) throw Error("references", "empty set: BLEU needs at least one reference");
  check_order("max_n", max_n);
  // Sequence 0 is the hypothesis, 1.. the references.
  std::vector<const Sequence*> sequences{&hypothesis};
  for (const auto& r : references) sequences.push_back(&r);
  const RankedCorpus corpus = rank_tokens(sequences);
  const int64_t orders = std::min(max_n, static_cast<int64_t>(hypothesis.size()));
  std::vector<Precision> precisions(static_cast<size_t>(orders));
  for (int64_t m = 1; m <= orders; ++m) {
    const NgramIds ngrams = intern_ngrams(corpus, m);
    std::vector<int64_t> reference_max(static_cast<size_t>(ngrams.distinct), 0);
    LocalCounts local(ngrams.distinct);
    for (size_t r = 1; r < corpus.size(); ++r) {
      local.load(ngrams, r);
      for (int64_t id : local.ids()) reference_max[id] = std::max(reference_max[id], local[id]);
    }
    local.load(ngrams, 0);
    int64_t clipped = 0;
    for (int64_t id : local.ids()) clipped += std::min(local[id], reference_max[id]);
    precisions[static_cast<size_t>(m - 1)] = {clipped, std::max<int64_t>(1, ngrams.count(0))};
  }
  const int64_t h = static_cast<int64_t>(hypothesis.size());
  int64_t closest = static_cast<int64_t>(references[0].size());
  for (const auto& r : references) {
    const int64_t length = static_cast<int64_t>(r.size());
    const int64_t d = std::abs(length - h), best = std::abs(closest - h);
    if (d < best || (d == best && length < closest)) closest = length;
  }
  return bleu_from(precisions, max_n, h, closest);
}

std::vector<double> self_bleu_scores(const std::vector<std::vector<int64_t>>& generations, int64_t max_n) {
  check_two(generations);
  check_order("max_n", max_n);
  return self_bleu_of(rank_tokens(pointers_to(generations)), max_n);
}

double self_bleu(const std::vector<std::vector<int64_t>>& generations, int64_t max_n) {
  return mean(self_bleu_scores(generations, max_n));
}

DiversityReport diversity_report(const std::vector<std::vector<int64_t>>& generations,
                                 const DiversityOptions& options) {
  check_not_empty(generations);
  for (int64_t n : options.distinct_orders) check_order("distinct_orders", n);
  check_order("entropy_max_n", options.entropy_max_n);
  check_order("bleu_max_n", options.bleu_max_n);
  check_two(generations);

  const RankedCorpus corpus = rank_tokens(pointers_to(generations));
  DiversityReport report;
  report.generations = static_cast<int64_t>(generations.size());
  report.tokens = static_cast<int64_t>(corpus.ranks.size());
  for (int64_t n : options.distinct_orders) report.distinct.push_back(distinct_of(corpus, n));
  for (int64_t n = 1; n <= options.entropy_max_n; ++n) report.entropy.push_back(entropy_of(corpus, n));
  report.bleu_max_n = options.bleu_max_n;
  report.self_bleu = mean(self_bleu_of(corpus, options.bleu_max_n));
  return report;
}

nlohmann::json to_json(const DiversityReport& report) {
  nlohmann::json distinct = nlohmann::json::array();
  for (const auto& d : report.distinct) {
    distinct.push_back({{"n", d.n},
                        {"distinct", d.distinct},
                        {"ngrams", d.ngrams},
                        {"corpus", number_or_null(d.corpus)},
                        {"mean_per_generation", number_or_null(d.mean_per_generation)}});
  }
  nlohmann::json entropy = nlohmann::json::array();
  for (const auto& e : report.entropy) {
    entropy.push_back({{"n", e.n},
                       {"distinct", e.distinct},
                       {"ngrams", e.ngrams},
                       {"nats", number_or_null(e.nats)},
                       {"bits", number_or_null(e.nats / std::log(2.0))}});
  }
  return {{"generations", report.generations},
          {"tokens", report.tokens},
          {"distinct", distinct},
          {"entropy", entropy},
          {"self_bleu",
           {{"max_n", report.bleu_max_n},
            {"smoothing", "nltk-method1-epsilon-0.1"},
            {"mean", number_or_null(report.self_bleu)}}}};
}

}  // namespace superpose
