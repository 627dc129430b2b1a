#include "app/studio/tsne_colouring.h"

namespace superpose::studio {

TsneColouring tsne_colouring(const TsneMap& map, TsneColour by) {
  TsneColouring out;
  const int64_t points = map.rows > 0 && !map.layers.empty() ? map.points() : 0;
  const auto domains = static_cast<int>(map.domains.size());
  switch (by) {
    case TsneColour::kModelDomain:
      for (const std::string& model : map.models) {
        for (const std::string& domain : map.domains) out.names.push_back(model + " / " + domain);
      }
      break;
    case TsneColour::kModel:
      out.names = map.models;
      break;
    case TsneColour::kDomain:
      out.names = map.domains;
      break;
    case TsneColour::kLayer:
      for (int64_t layer : map.layers) out.names.push_back("state " + std::to_string(layer));
      break;
  }
  const auto n = out.names.size();
  for (size_t c = 0; c < n; ++c) {
    out.colours.push_back(by == TsneColour::kLayer
                              ? colour_map(ColourMap::kViridis, n > 1 ? 0.8 * static_cast<double>(c) / (n - 1) : 0.4)
                              : palette_colour(static_cast<int>(c) + 1));
  }
  out.categories.resize(static_cast<size_t>(points));
  for (int64_t p = 0; p < points; ++p) {
    int c = 0;
    switch (by) {
      case TsneColour::kModelDomain: c = map.model_of(p) * domains + map.domain_of(p); break;
      case TsneColour::kModel: c = map.model_of(p); break;
      case TsneColour::kDomain: c = map.domain_of(p); break;
      case TsneColour::kLayer: c = map.layer_of(p); break;
    }
    out.categories[static_cast<size_t>(p)] = c;
  }
  return out;
}

std::string tsne_point_label(const TsneMap& map, int64_t p) {
  return map.models[static_cast<size_t>(map.model_of(p))] + " / " +
         map.domains[static_cast<size_t>(map.domain_of(p))] + " / state " +
         std::to_string(map.layers[static_cast<size_t>(map.layer_of(p))]);
}

}  // namespace superpose::studio
