// Describes the machine a benchmark ran on, for its JSON output.
#pragma once

#include <fstream>
#include <string>
#include <thread>

namespace weft::bench {

/// "<cpu model>, <N> cores, g++ <version>".
inline std::string machine_description() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, cpu = "unknown cpu";
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) {
      cpu = line.substr(line.find(':') + 2);
      break;
    }
  return cpu + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores, g++ " + __VERSION__;
}

}  // namespace weft::bench
