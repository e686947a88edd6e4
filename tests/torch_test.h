// Include first in torch-using tests: LibTorch pulls in glog, whose CHECK
// macro would collide with Catch2's.
#pragma once

#include <torch/torch.h>
#undef CHECK
#include <catch2/catch.hpp>
