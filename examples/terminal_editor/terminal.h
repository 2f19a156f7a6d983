// The terminal side of weft-edit: raw mode, key decoding and drawing with
// plain ANSI escape sequences (no curses needed; any VT100-style terminal).
#pragma once

#include <optional>
#include <string>

#include "editor_model.h"

namespace weft_edit {

/// Puts the terminal into raw mode and the alternate screen for its lifetime.
class raw_terminal {
 public:
  raw_terminal();
  ~raw_terminal();
  raw_terminal(const raw_terminal&) = delete;
  raw_terminal& operator=(const raw_terminal&) = delete;
  bool ok() const noexcept { return ok_; }

 private:
  bool ok_ = false;
};

/// Turns bytes read from the terminal into keys. Feed it whatever read()
/// returned; it keeps incomplete escape sequences and UTF-8 characters.
class key_decoder {
 public:
  void feed(const char* data, std::size_t n);
  /// The next complete key, if any. Sets `quit` on Ctrl-Q.
  std::optional<key> next(bool& quit);

 private:
  std::string pending_;
};

/// Draws `f` full-screen: the text, a status line, the cursor.
void draw(const frame& f, const std::string& doc, const std::string& url);

}  // namespace weft_edit
