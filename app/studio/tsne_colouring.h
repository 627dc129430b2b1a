// A t-SNE map's point colours: by model, domain, both, or state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "analysis/figure.h"
#include "app/studio/worker.h"

namespace superpose::studio {

struct TsneColouring {
  std::vector<int> categories;     // (P): index into names
  std::vector<std::string> names;  // legend entries, e.g. "fine / en", "state 6"
  std::vector<Rgb> colours;        // one per name
};

// Model × domain, model and domain take the palette in order (orange first).
// States are ordered, so they take viridis from dark purple (the first state)
// to green (the last), leaving out its pale yellow end.
TsneColouring tsne_colouring(const TsneMap& map, TsneColour by);

// Point p's model, domain and state: "fine / en / state 6".
std::string tsne_point_label(const TsneMap& map, int64_t p);

}  // namespace superpose::studio
