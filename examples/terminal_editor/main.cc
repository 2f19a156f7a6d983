// weft-edit: a small collaborative terminal editor built on weft::client.
//
//   weft-edit --url ws://127.0.0.1:8080 notes           # interactive, full screen
//   weft-edit --url ws://127.0.0.1:8080 --script notes  # commands on stdin (tests, bots)
//
// It edits the same documents as the browser editor, live, both ways. See
// docs/embedding.md for how it is put together.
#include <poll.h>
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <string_view>

#include "editor_model.h"
#include "terminal.h"
#include "weft/client.h"
#include "weft/protocol.h"

namespace {

using weft_edit::editor_model;
using weft_edit::frame;
using weft_edit::key;

const char* kUsage = R"(usage: weft-edit [options] DOC

A terminal editor for the weft document DOC on a running weft-server.

options:
  --url ws://HOST:PORT   server to connect to (default ws://127.0.0.1:8080)
  --name NAME            name shown to the others (default: $USER)
  --color #RRGGBB        cursor colour shown to the others (default: random)
  --script               read commands from stdin instead of the keyboard:
                           type TEXT          insert at the cursor, move past it
                           move POS           put the cursor at code point POS
                           backspace [N]      delete N characters before the cursor
                           insert POS TEXT    insert at code point POS
                           erase POS N        delete N code points from POS
                           expect TEXT [MS]   wait until the text is TEXT (default 10000 ms)
                           wait-synced [MS]   wait until online and every edit is saved
                           print              print the text
                           quit
                         TEXT is raw or a JSON string ("a\nb"). Every command
                         answers one line: "ok ...", or "error ..." / "timeout ...".
  --help                 this text

interactive keys: typing, Enter, Backspace, Delete, arrows, Home/End; Ctrl-Q quits.
)";

struct args {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string url = "ws://127.0.0.1:8080";
  std::string name;
  std::string color;
  std::string doc;
  bool script = false;
};

bool parse_url(const std::string& url, args& a) {
  const std::string scheme = "ws://";
  if (url.rfind(scheme, 0) != 0) return false;
  std::string rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos) {
    a.host = rest;
    a.port = 80;
  } else {
    a.host = rest.substr(0, colon);
    unsigned long p = std::strtoul(rest.c_str() + colon + 1, nullptr, 10);
    if (p == 0 || p > 65535) return false;
    a.port = static_cast<std::uint16_t>(p);
  }
  a.url = url;
  return !a.host.empty();
}

int usage_error(const std::string& what) {
  std::fprintf(stderr, "weft-edit: %s\n%s", what.c_str(), kUsage);
  return 2;
}

// ---- script mode ------------------------------------------------------------

// `s` as a JSON string literal, escaped by the codec.
std::string quoted(std::string_view s) {
  std::string out;
  weft::protocol::append_json_string(out, s);
  return out;
}

bool blank(std::string_view s) { return s.find_first_not_of(" \t\r") == std::string_view::npos; }

// A TEXT argument: read by the codec as a JSON string literal when it starts
// with a quote, else taken raw (all of `arg`). `after` gets what follows the
// literal (empty for raw text). False when the literal is malformed.
bool script_text(std::string_view arg, std::string* text, std::string_view* after) {
  if (arg.empty() || arg[0] != '"') {
    *text = std::string(arg);
    *after = {};
    return true;
  }
  std::size_t n = weft::protocol::read_json_string(arg, text);
  *after = arg.substr(n);
  return n != 0;
}

// The answer to a TEXT argument the codec refused (or followed by more).
std::string text_error(std::string_view arg) { return "error TEXT is not one valid JSON string: " + quoted(arg); }

int run_script(editor_model& model) {
  std::string line;
  auto say = [](const std::string& s) {
    std::cout << s << std::endl;  // flushed: a test reads answers line by line
  };
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd;
    in >> cmd;
    std::string rest;
    std::getline(in >> std::ws, rest);
    if (cmd.empty() || cmd[0] == '#') continue;
    if (cmd == "quit") {
      say("ok bye");
      return 0;
    }
    if (cmd == "type") {
      std::string text;
      std::string_view after;
      if (!script_text(rest, &text, &after) || !blank(after)) {
        say(text_error(rest));
        continue;
      }
      model.press(key{key::kind::text, std::move(text), 0});
      say("ok");
    } else if (cmd == "move") {
      model.press(key{key::kind::move_to, {}, std::strtoull(rest.c_str(), nullptr, 10)});
      say("ok");
    } else if (cmd == "backspace") {
      unsigned long n = rest.empty() ? 1 : std::strtoul(rest.c_str(), nullptr, 10);
      for (unsigned long i = 0; i < n && i < 100000; ++i) model.press(key{key::kind::backspace, {}, 0});
      say("ok");
    } else if (cmd == "insert") {
      std::istringstream r(rest);
      std::uint64_t pos = 0;
      r >> pos;
      std::string arg, text;
      std::getline(r >> std::ws, arg);
      std::string_view after;
      if (!script_text(arg, &text, &after) || !blank(after)) {
        say(text_error(arg));
        continue;
      }
      model.insert_at(pos, std::move(text));
      say("ok");
    } else if (cmd == "erase") {
      std::istringstream r(rest);
      std::uint64_t pos = 0, n = 0;
      r >> pos >> n;
      model.erase_at(pos, n);
      say("ok");
    } else if (cmd == "expect") {
      // TEXT [MS]: a JSON string may be followed by a timeout.
      std::string want;
      std::string_view after;
      if (!script_text(rest, &want, &after)) {
        say(text_error(rest));
        continue;
      }
      int ms = 10000;
      if (!blank(after)) {
        after.remove_prefix(after.find_first_not_of(" \t"));
        auto [end, ec] = std::from_chars(after.data(), after.data() + after.size(), ms);
        if (ec != std::errc() || !blank(after.substr(static_cast<std::size_t>(end - after.data())))) {
          say("error MS after the JSON string must be a number: " + quoted(after));
          continue;
        }
      }
      auto [f, ok] = model.wait_for([&](const frame& fr) { return fr.text == want; }, ms);
      say(ok ? "ok" : "timeout text is " + quoted(f.text));
    } else if (cmd == "wait-synced") {
      int ms = rest.empty() ? 10000 : std::atoi(rest.c_str());
      auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
      bool ok = false;
      while (!ok && std::chrono::steady_clock::now() < deadline) {
        // Only a frame published after this command counts: it includes
        // every edit sent before (the executor runs them in order).
        std::uint64_t before = model.latest().serial;
        model.refresh();
        ok = model
                 .wait_for(
                     [before](const frame& fr) {
                       return fr.serial > before && fr.state == weft::connection_state::online && fr.all_acked;
                     },
                     50)
                 .second;
      }
      say(ok ? "ok" : "timeout");
    } else if (cmd == "print") {
      // A frame published after this command: it includes every edit sent before.
      std::uint64_t before = model.latest().serial;
      model.refresh();
      auto f = model.wait_for([before](const frame& fr) { return fr.serial > before; }, 5000).first;
      say("ok " + quoted(f.text));
    } else {
      say("error unknown command " + quoted(cmd));
    }
  }
  return 0;
}

// ---- interactive mode ---------------------------------------------------------

int run_interactive(editor_model& model, const args& a) {
  weft_edit::raw_terminal term;
  if (!term.ok()) {
    std::fprintf(stderr, "weft-edit: stdin is not a terminal (use --script for scripted input)\n");
    return 1;
  }
  weft_edit::key_decoder keys;
  std::uint64_t drawn = 0;
  for (;;) {
    frame f = model.latest();
    if (f.serial != drawn) {
      weft_edit::draw(f, a.doc, a.url);
      drawn = f.serial;
    }
    pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {model.wakeup_fd(), POLLIN, 0}};
    // The timeout also redraws after a terminal resize.
    if (::poll(fds, 2, 500) < 0 && errno != EINTR) return 1;
    if (fds[1].revents & POLLIN) model.drain_wakeups();
    if (fds[0].revents & POLLIN) {
      char buf[512];
      ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
      if (n > 0) keys.feed(buf, static_cast<std::size_t>(n));
      bool quit = false;
      while (auto k = keys.next(quit)) model.press(std::move(*k));
      if (quit) return 0;
    }
    if (fds[0].revents == 0 && fds[1].revents == 0) drawn = 0;  // periodic full redraw
  }
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  if (const char* user = std::getenv("USER")) a.name = user;
  if (a.name.empty()) a.name = "terminal";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--url") {
      if (!parse_url(value(), a)) return usage_error("--url must be ws://HOST:PORT");
    } else if (arg == "--name") {
      a.name = value();
    } else if (arg == "--color") {
      a.color = value();
    } else if (arg == "--script") {
      a.script = true;
    } else if (!arg.empty() && arg[0] == '-') {
      return usage_error("unknown option " + arg);
    } else if (a.doc.empty()) {
      a.doc = arg;
    } else {
      return usage_error("only one document");
    }
  }
  if (a.doc.empty()) return usage_error("which document? (DOC is missing)");
  if (a.color.empty()) {
    static const char* palette[] = {"#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#008080"};
    a.color = palette[std::random_device{}() % 6];
  }

  weft::network net(1);  // the network runs on its own thread; main() is the UI thread
  weft::client_options o;
  o.host = a.host;
  o.port = a.port;
  o.name = "weft-edit";
  int rc = 0;
  {
    editor_model model(net, o, a.doc, a.name, a.color);
    model.start();
    rc = a.script ? run_script(model) : run_interactive(model, a);
  }
  return rc;
}
