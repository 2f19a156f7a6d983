#include "terminal.h"

#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <vector>

namespace weft_edit {

namespace {

termios saved_termios;

void write_all(const std::string& s) {
  std::size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(STDOUT_FILENO, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

std::size_t utf8_len(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;  // stray byte: passed on as is, the core rejects invalid UTF-8
}

const char* state_name(weft::connection_state s) {
  switch (s) {
    case weft::connection_state::connecting: return "connecting";
    case weft::connection_state::syncing: return "syncing";
    case weft::connection_state::online: return "online";
    case weft::connection_state::offline: return "offline";
    case weft::connection_state::stopped: return "stopped";
  }
  return "?";
}

}  // namespace

raw_terminal::raw_terminal() {
  if (!::isatty(STDIN_FILENO) || ::tcgetattr(STDIN_FILENO, &saved_termios) != 0) return;
  termios raw = saved_termios;
  raw.c_iflag &= ~static_cast<tcflag_t>(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
  raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  raw.c_cflag |= CS8;
  raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ICANON | IEXTEN | ISIG);
  raw.c_cc[VMIN] = 0;
  raw.c_cc[VTIME] = 0;
  if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) return;
  write_all("\x1b[?1049h");  // alternate screen
  ok_ = true;
}

raw_terminal::~raw_terminal() {
  if (!ok_) return;
  write_all("\x1b[?1049l");
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
}

void key_decoder::feed(const char* data, std::size_t n) { pending_.append(data, n); }

std::optional<key> key_decoder::next(bool& quit) {
  while (!pending_.empty()) {
    unsigned char c = static_cast<unsigned char>(pending_[0]);
    auto consume = [&](std::size_t n) { pending_.erase(0, n); };
    if (c == 0x11) {  // Ctrl-Q
      consume(1);
      quit = true;
      return std::nullopt;
    }
    if (c == 0x1b) {
      if (pending_.size() < 3) return std::nullopt;  // wait for the rest of the sequence
      if (pending_[1] != '[' && pending_[1] != 'O') {
        consume(1);
        continue;
      }
      char f = pending_[2];
      std::optional<key::kind> k;
      std::size_t used = 3;
      switch (f) {
        case 'A': k = key::kind::up; break;
        case 'B': k = key::kind::down; break;
        case 'C': k = key::kind::right; break;
        case 'D': k = key::kind::left; break;
        case 'H': k = key::kind::home; break;
        case 'F': k = key::kind::end; break;
        default:
          if (f >= '0' && f <= '9') {
            auto tilde = pending_.find('~', 2);
            if (tilde == std::string::npos) return std::nullopt;
            std::string code = pending_.substr(2, tilde - 2);
            used = tilde + 1;
            if (code == "1" || code == "7") k = key::kind::home;
            if (code == "4" || code == "8") k = key::kind::end;
            if (code == "3") k = key::kind::del;
          }
      }
      consume(used);
      if (k) return key{*k, {}, 0};
      continue;
    }
    if (c == 0x7f || c == 0x08) {
      consume(1);
      return key{key::kind::backspace, {}, 0};
    }
    if (c == '\r' || c == '\n') {
      consume(1);
      return key{key::kind::text, "\n", 0};
    }
    if (c < 0x20 && c != '\t') {  // other control keys: ignored
      consume(1);
      continue;
    }
    std::size_t n = utf8_len(c);
    if (pending_.size() < n) return std::nullopt;
    key k{key::kind::text, pending_.substr(0, n), 0};
    consume(n);
    return k;
  }
  return std::nullopt;
}

void draw(const frame& f, const std::string& doc, const std::string& url) {
  winsize ws{};
  int rows = 24, cols = 80;
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 1 && ws.ws_col > 0) {
    rows = ws.ws_row;
    cols = ws.ws_col;
  }
  // Lay the text out in screen lines (wrapping at `cols` code points), and
  // find the cursor's screen position on the way.
  std::vector<std::string> lines(1);
  std::vector<int> widths(1, 0);
  int cur_row = 0, cur_col = 0;
  std::uint64_t cp = 0;
  auto place_cursor = [&] {
    if (cp == f.cursor) {
      cur_row = static_cast<int>(lines.size()) - 1;
      cur_col = widths.back();
    }
  };
  for (std::size_t i = 0; i < f.text.size();) {
    place_cursor();
    std::size_t n = utf8_len(static_cast<unsigned char>(f.text[i]));
    if (f.text[i] == '\n') {
      lines.emplace_back();
      widths.push_back(0);
    } else {
      if (widths.back() >= cols) {
        lines.emplace_back();
        widths.push_back(0);
        if (cp == f.cursor) cur_row = static_cast<int>(lines.size()) - 1, cur_col = 0;
      }
      lines.back().append(f.text, i, n);
      ++widths.back();
    }
    i += n;
    ++cp;
  }
  place_cursor();
  int text_rows = rows - 1;
  int first = cur_row >= text_rows ? cur_row - text_rows + 1 : 0;  // keep the cursor visible

  std::string out = "\x1b[?25l\x1b[H";
  for (int r = 0; r < text_rows; ++r) {
    int li = first + r;
    if (li < static_cast<int>(lines.size())) out += lines[li];
    out += "\x1b[K\r\n";
  }
  std::string status = " " + doc + " @ " + url + " | " + state_name(f.state) + (f.all_acked ? " | saved" : " | saving") +
                       " | " + std::to_string(f.peers.size()) + " other(s)";
  for (const auto& p : f.peers) status += " " + p;
  status += " | Ctrl-Q quits";
  if (static_cast<int>(status.size()) > cols) status.resize(cols);
  out += "\x1b[7m" + status + "\x1b[K\x1b[0m";
  out += "\x1b[" + std::to_string(cur_row - first + 1) + ";" + std::to_string(cur_col + 1) + "H\x1b[?25h";
  write_all(out);
}

}  // namespace weft_edit
