// libpq's messages, made fit for a log line or a client's error.
#pragma once

#include <string>

namespace weft::server {

/// libpq's messages span lines (a hint after a tab, a trailing newline):
/// the same text on one line, without trailing spaces.
inline std::string pg_one_line(std::string msg) {
  for (char& c : msg)
    if (c == '\n' || c == '\t') c = ' ';
  while (!msg.empty() && msg.back() == ' ') msg.pop_back();
  return msg;
}

}  // namespace weft::server
