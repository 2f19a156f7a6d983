#include "editor_model.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "weft/protocol.h"
#include "weft/unicode.h"

namespace weft_edit {

namespace {

// Line start (code points) of the line containing code point `pos`, and the column.
std::pair<std::uint64_t, std::uint64_t> line_of(const std::string& text, std::uint64_t pos) {
  std::uint64_t line_start = 0, cp = 0;
  for (std::size_t i = 0; i < text.size() && cp < pos; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) == 0x80) continue;
    ++cp;
    if (c == '\n') line_start = cp;
  }
  return {line_start, pos - line_start};
}

// Code point length of the line starting at code point `start`.
std::uint64_t line_length(const std::string& text, std::uint64_t start) {
  std::size_t i = weft::utf8_offset_of_code_point(text, start);
  std::uint64_t n = 0;
  for (; i < text.size() && text[i] != '\n'; ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace

editor_model::editor_model(weft::network& net, weft::client_options options, std::string doc, std::string name,
                           std::string color)
    : doc_(std::move(doc)) {
  presence_json_prefix_ = "{\"name\":";
  weft::protocol::append_json_string(presence_json_prefix_, name);
  presence_json_prefix_ += ",\"color\":";
  weft::protocol::append_json_string(presence_json_prefix_, color);
  if (::pipe2(pipe_, O_CLOEXEC | O_NONBLOCK) != 0) std::perror("pipe2");
  weft::client_handlers h;
  h.on_state = [this](weft::connection_state s) {
    state_ = s;
    if (s == weft::connection_state::online) send_presence();
    refresh();
  };
  h.on_synced = [this] { refresh(); };
  h.on_remote = [this](const std::string& doc, const std::vector<weft::operation>&,
                       const std::vector<weft::text_change>& changes) {
    if (doc == doc_) on_remote(changes);
  };
  h.on_ack = [this](const std::string&, std::uint64_t) { refresh(); };
  h.on_presence = [this](const std::string& doc, std::uint64_t session, const std::string& state) {
    if (doc != doc_) return;
    if (state == "null") {
      peers_.erase(session);
    } else {
      std::string name = "?";  // kept when the state has no string "name"
      weft::protocol::read_json_string_field(state, "name", &name);
      peers_[session] = std::move(name);
    }
    refresh();
  };
  client_ = std::make_unique<weft::client>(net, std::move(options), std::move(h));
  c_ = client_.get();
}

editor_model::~editor_model() {
  client_.reset();  // waits until no handler runs any more (they use c_, valid until then)
  for (int fd : pipe_)
    if (fd >= 0) ::close(fd);
}

void editor_model::start() {
  c_->open(doc_);
  c_->start();
  refresh();
}

void editor_model::press(key k) {
  c_->edit(doc_, [this, k = std::move(k)](weft::document& d, std::vector<weft::operation>& out) {
    apply_key(d, out, k);
    publish(d);
    send_presence();
  });
}

void editor_model::insert_at(std::uint64_t position, std::string text) {
  c_->edit(doc_, [this, position, text = std::move(text)](weft::document& d, std::vector<weft::operation>& out) {
    auto r = d.insert(std::min(position, d.length()), text);
    if (r.ok()) {
      if (position <= cursor_) cursor_ += weft::count_code_points(text);
      out.push_back(std::move(r).value());
    }
    publish(d);
  });
}

void editor_model::erase_at(std::uint64_t position, std::uint64_t count) {
  c_->edit(doc_, [this, position, count](weft::document& d, std::vector<weft::operation>& out) {
    if (position < d.length()) {
      std::uint64_t n = std::min(count, d.length() - position);
      auto r = d.erase(position, n);
      if (r.ok()) {
        if (cursor_ > position) cursor_ -= std::min(n, cursor_ - position);
        out.push_back(std::move(r).value());
      }
    }
    publish(d);
  });
}

void editor_model::apply_key(weft::document& d, std::vector<weft::operation>& out, const key& k) {
  cursor_ = std::min(cursor_, d.length());
  switch (k.type) {
    case key::kind::text: {
      auto r = d.insert(cursor_, k.text);
      if (!r.ok()) return;
      cursor_ += weft::count_code_points(k.text);
      out.push_back(std::move(r).value());
      return;
    }
    case key::kind::backspace:
      if (cursor_ == 0) return;
      if (auto r = d.erase(cursor_ - 1, 1); r.ok()) {
        --cursor_;
        out.push_back(std::move(r).value());
      }
      return;
    case key::kind::del:
      if (cursor_ >= d.length()) return;
      if (auto r = d.erase(cursor_, 1); r.ok()) out.push_back(std::move(r).value());
      return;
    case key::kind::left:
      if (cursor_ > 0) --cursor_;
      return;
    case key::kind::right:
      if (cursor_ < d.length()) ++cursor_;
      return;
    case key::kind::move_to:
      cursor_ = std::min(k.to, d.length());
      return;
    case key::kind::home:
    case key::kind::end:
    case key::kind::up:
    case key::kind::down: {
      std::string text = d.text();
      auto [start, col] = line_of(text, cursor_);
      std::uint64_t len = line_length(text, start);
      if (k.type == key::kind::home) cursor_ = start;
      if (k.type == key::kind::end) cursor_ = start + len;
      if (k.type == key::kind::up && start > 0) {
        auto [prev_start, unused] = line_of(text, start - 1);
        (void)unused;
        cursor_ = prev_start + std::min(col, line_length(text, prev_start));
      }
      if (k.type == key::kind::down && start + len < d.length()) {
        std::uint64_t next_start = start + len + 1;
        cursor_ = next_start + std::min(col, line_length(text, next_start));
      }
      return;
    }
  }
}

void editor_model::on_remote(const std::vector<weft::text_change>& changes) {
  // Keep the cursor on the same character: shift it past text inserted
  // before it, pull it back over text erased before it.
  for (const auto& c : changes) {
    if (c.type == weft::text_change::kind::insert) {
      if (c.position < cursor_) cursor_ += c.length;
    } else if (c.position < cursor_) {
      cursor_ -= std::min(c.length, cursor_ - c.position);
    }
  }
  c_->read(doc_, [this](const weft::document& d) { publish(d); });
}

void editor_model::refresh() {
  c_->read(doc_, [this](const weft::document& d) { publish(d); });
}

void editor_model::publish(const weft::document& d) {
  frame f;
  f.text = d.text();
  f.cursor = std::min(cursor_, d.length());
  f.state = state_;
  f.all_acked = c_->acked(doc_) >= d.version().get(d.replica());
  for (const auto& [session, name] : peers_) f.peers.push_back(name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    f.serial = frame_.serial + 1;
    frame_ = std::move(f);
  }
  cv_.notify_all();
  char byte = 1;
  [[maybe_unused]] auto n = ::write(pipe_[1], &byte, 1);  // a full pipe already wakes the UI
}

void editor_model::send_presence() {
  std::string json = presence_json_prefix_ + ",\"anchor\":" + std::to_string(cursor_) +
                     ",\"head\":" + std::to_string(cursor_) + "}";
  c_->set_presence(doc_, std::move(json));
}

void editor_model::drain_wakeups() {
  char buf[256];
  while (::read(pipe_[0], buf, sizeof buf) > 0) {
  }
}

frame editor_model::latest() const {
  std::lock_guard<std::mutex> lock(mu_);
  return frame_;
}

}  // namespace weft_edit
