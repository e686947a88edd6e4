// report.json of a compression stage and the table printed at the end.
//
// Every stage's report carries the lineage forward: the first model's
// parameter count and each earlier stage's summary come from the input
// directory's report.json (when it has one), so the cumulative compression
// ratio is always against the first model of the lineage.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "arch/openba/config.h"

namespace openba {

class Checkpoint;

// Parameters by component and total (a tied lm_head counted once).
nlohmann::ordered_json parameters_json(const ModelConfig& config, bool lm_head_tied);

// Fills "input", "output", "compression" and "lineage" from the two
// checkpoints (and the input's report.json, if any).
void add_model_sections(nlohmann::ordered_json& report, const Checkpoint& in, const Checkpoint& out);

// The human-readable summary of a finished report.
std::string report_table(const nlohmann::ordered_json& report);

}  // namespace openba
