// One-line log records on stderr, formatted with fmt:
// "2026-11-22T10:00:00.123Z info  message". Thread-safe.
#pragma once

#include <fmt/format.h>

#include <string_view>

#include "server/config.h"

namespace weft::server {

void set_log_level(log_level level) noexcept;
bool log_enabled(log_level level) noexcept;
void log_line(log_level level, std::string_view message);

template <class... Args>
void log(log_level level, fmt::format_string<Args...> f, Args&&... args) {
  if (log_enabled(level)) log_line(level, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace weft::server
