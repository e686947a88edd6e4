// The heavy, stable headers every torch-using translation unit needs.
// Precompiled once (target openba_pch) and reused everywhere.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>
