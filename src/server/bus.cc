#include "server/bus.h"

#include <hiredis/hiredis.h>

#include <boost/asio/post.hpp>

#include <charconv>
#include <fmt/format.h>

#include "server/log.h"
#include "server/redis_connection.h"
#include "server/storage.h"

namespace weft::server {

namespace net = boost::asio;

namespace {
std::string_view str(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) ? std::string_view(r->str, r->len)
                                                                               : std::string_view();
}
std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}
// How long one XREAD waits for entries before it is sent again.
constexpr const char* read_block_ms = "1000";
// Entries per stream per XREAD.
constexpr const char* read_count = "512";
}  // namespace

bus::stream_id bus::stream_id::parse(std::string_view s) {
  stream_id id;
  auto dash = s.find('-');
  id.ms = to_u64(s.substr(0, dash));
  if (dash != std::string_view::npos) id.seq = to_u64(s.substr(dash + 1));
  return id;
}

bool bus::parse_url(const std::string& url, bus_options& out) {
  const std::string prefix = "redis://";
  if (url.rfind(prefix, 0) != 0) return false;
  std::string rest = url.substr(prefix.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  auto colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  int port = 6379;
  if (colon != std::string::npos) {
    std::string p = rest.substr(colon + 1);
    auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || ptr != p.data() + p.size() || port <= 0 || port > 65535) return false;
  }
  if (host.empty() || host.find('/') != std::string::npos) return false;
  out.host = host;
  out.port = port;
  return true;
}

std::string bus_stats::render() {
  std::string out;
  auto it = std::back_inserter(out);
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    fmt::format_to(it, "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  metric("weft_bus_connected", "gauge", "1 while connected to Redis.", connected.load());
  metric("weft_bus_streams", "gauge", "Document streams this node reads (documents open here).", streams.load());
  metric("weft_bus_stream_entries", "gauge", "Entries in those streams at the last check.", stream_entries.load());
  metric("weft_bus_stream_entries_max", "gauge", "Entries in the longest of them at the last check.",
         stream_entries_max.load());
  metric("weft_bus_published_total", "counter", "Batches this node appended to document streams.", published.load());
  metric("weft_bus_publish_dropped_total", "counter",
         "Batches not appended (Redis unreachable); other nodes resync those documents.", publish_dropped.load());
  metric("weft_bus_received_total", "counter", "Batches of other nodes received from the streams.", received.load());
  fmt::format_to(it,
                 "# HELP weft_bus_resyncs_total Documents reread from storage because stream entries were missed.\n"
                 "# TYPE weft_bus_resyncs_total counter\n"
                 "weft_bus_resyncs_total{{reason=\"gap\"}} {}\nweft_bus_resyncs_total{{reason=\"trimmed\"}} {}\n"
                 "weft_bus_resyncs_total{{reason=\"reconnect\"}} {}\n",
                 resyncs_gap.load(), resyncs_trimmed.load(), resyncs_reconnect.load());
  metric("weft_bus_reconnects_total", "counter", "Connections to Redis made again after a loss.", reconnects.load());
  metric("weft_bus_lag_seconds", "gauge", "From XADD to receipt here, the last entry received.",
         static_cast<double>(lag_ms_last.load()) / 1000.0);
  metric("weft_bus_lag_max_seconds", "gauge", "The largest such lag since the previous scrape.",
         static_cast<double>(lag_ms_max.exchange(0)) / 1000.0);
  return out;
}

bus::bus(bus_options options) : options_(std::move(options)) {}

bus::~bus() {
  if (!thread_.joinable()) return;
  net::post(io_, [this] {
    retry_timer_.cancel();
    check_timer_.cancel();
    if (commands_) commands_->close();
    if (reader_) reader_->close();
    commands_ = reader_ = nullptr;
    subs_.clear();
    work_.reset();  // run() returns once the closed connections let go
  });
  thread_.join();
}

void bus::start() {
  net::post(io_, [this] { connect(); });
  thread_ = std::thread([this] { io_.run(); });
}

void bus::connect() {
  up_ = false;
  reader_client_id_ = -1;
  read_in_flight_ = false;
  auto lost = [this](const std::string& why) { connection_lost(why); };
  auto up = [this] {
    if (commands_ && reader_ && commands_->up() && reader_->up()) both_up();
  };
  commands_ = redis_connection::connect(io_, options_.host, options_.port, up, lost);
  reader_ = redis_connection::connect(io_, options_.host, options_.port, up, lost);
}

void bus::connection_lost(const std::string& why) {
  if (!commands_ && !reader_) return;  // already handled (both connections report)
  if (up_) log(log_level::warn, "bus: {}; reconnecting", why);
  if (commands_) commands_->close();
  if (reader_) reader_->close();
  commands_ = reader_ = nullptr;
  const bool was_up = up_;
  up_ = false;
  stats_.connected = 0;
  read_in_flight_ = false;
  check_timer_.cancel();
  for (auto& [doc, s] : subs_) s.positioned = false;
  if (was_up) backoff_ = std::chrono::milliseconds(100);
  retry_timer_.expires_after(backoff_);
  backoff_ = std::min<std::chrono::milliseconds>(backoff_ * 2, std::chrono::milliseconds(1000));
  retry_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    ++stats_.reconnects;
    connect();
  });
}

void bus::both_up() {
  // The reader's id lets the command connection interrupt its blocking read
  // when the set of streams changes.
  reader_->command({"CLIENT", "ID"}, [this, r = reader_](redisReply* reply) {
    if (!reply || reader_ != r) return;
    if (reply->type == REDIS_REPLY_INTEGER) reader_client_id_ = reply->integer;
    up_ = true;
    stats_.connected = 1;
    backoff_ = std::chrono::milliseconds(100);
    log(log_level::info, "bus: connected to Redis at {}:{}", options_.host, options_.port);
    // Anything may have been missed while away: every open document is
    // positioned again, then reread from storage.
    for (auto& [doc, s] : subs_) position(doc, true);
    check_timer_.expires_after(options_.check_every);
    check_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) check_streams();
    });
  });
}

void bus::subscribe(const std::string& doc, std::weak_ptr<bus_listener> listener, std::function<void()> positioned) {
  const std::uint64_t token = next_token_++;
  net::post(io_, [this, doc, token, listener = std::move(listener), positioned = std::move(positioned)]() mutable {
    subscription& s = subs_[doc];
    s = subscription{};
    s.token = token;
    s.listener = std::move(listener);
    stats_.streams = static_cast<std::int64_t>(subs_.size());
    if (up_) {
      s.on_positioned = std::move(positioned);
      position(doc, false);
    } else {
      positioned();  // loads now; resyncs once Redis is back
    }
  });
}

void bus::position(const std::string& doc, bool resync_after) {
  const std::string key = key_of(doc);
  const std::uint64_t token = subs_[doc].token;
  commands_->command({"XREVRANGE", key, "+", "-", "COUNT", "1"}, [this, doc, token, resync_after](redisReply* r) {
    auto it = subs_.find(doc);
    if (!r || it == subs_.end() || it->second.token != token) return;
    subscription& s = it->second;
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements > 0)
      s.last = stream_id::parse(str(r->element[0]->element[0]));
    else
      s.last = stream_id{};
    s.positioned = true;
    s.seen.clear();
    if (s.dropped && up_) {
      // Our entries that never made it: an explicit mark makes every reader
      // reread the document (its next sequence number shows the gap too).
      s.dropped = false;
      const std::string seq = std::to_string(s.next_seq++);
      commands_->command({"XADD", key_of(doc), "*", "n", options_.node_key, "s", seq, "r", "1"}, [](redisReply*) {});
    }
    if (s.on_positioned) {
      auto f = std::move(s.on_positioned);
      s.on_positioned = nullptr;
      f();
    }
    if (resync_after) resync(s, stats_.resyncs_reconnect);
    wake_reader();
  });
}

void bus::wake_reader() {
  if (!up_) return;
  if (!read_in_flight_) {
    read_loop();
    return;
  }
  set_changed_ = true;
  if (reader_client_id_ < 0) return;
  const std::string id = std::to_string(reader_client_id_);
  commands_->command({"CLIENT", "UNBLOCK", id}, [this](redisReply* r) {
    // 0: the read was not blocked yet (still on its way): try again shortly.
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 && read_in_flight_ && set_changed_) {
      retry_timer_.expires_after(std::chrono::milliseconds(2));
      retry_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec && up_ && read_in_flight_ && set_changed_) wake_reader();
      });
    }
  });
}

void bus::read_loop() {
  if (!up_ || read_in_flight_) return;
  std::vector<std::string> keys, ids;
  // Rooms that unloaded stop being read (their weak listener expired).
  std::erase_if(subs_, [](const auto& e) { return e.second.listener.expired() && !e.second.on_positioned; });
  stats_.streams = static_cast<std::int64_t>(subs_.size());
  for (auto& [doc, s] : subs_) {
    if (!s.positioned) continue;
    keys.push_back(key_of(doc));
    ids.push_back(s.last.text());
  }
  set_changed_ = false;
  if (keys.empty()) return;  // the next subscription starts it
  std::vector<std::string_view> args{"XREAD", "COUNT", read_count, "BLOCK", read_block_ms, "STREAMS"};
  for (const auto& k : keys) args.push_back(k);
  for (const auto& i : ids) args.push_back(i);
  read_in_flight_ = true;
  reader_->command(args, [this, r = reader_](redisReply* reply) {
    if (reader_ != r) return;
    read_in_flight_ = false;
    if (!reply) return;  // the connection is gone; connection_lost() follows
    if (reply->type == REDIS_REPLY_ERROR) {
      log(log_level::warn, "bus: XREAD failed: {}", std::string_view(reply->str, reply->len));
    } else if (reply->type == REDIS_REPLY_ARRAY) {
      for (std::size_t i = 0; i < reply->elements; ++i) {
        redisReply* stream = reply->element[i];
        if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) continue;
        std::string_view key = str(stream->element[0]);
        if (key.size() < 9) continue;
        handle_entries(std::string(key.substr(9)), stream->element[1]);
      }
    }
    read_loop();
  });
}

void bus::handle_entries(const std::string& doc, void* p) {
  auto* entries = static_cast<redisReply*>(p);
  auto it = subs_.find(doc);
  if (it == subs_.end() || entries->type != REDIS_REPLY_ARRAY) return;
  subscription& s = it->second;
  auto listener = s.listener.lock();
  bool missed = false;
  const auto now = static_cast<std::uint64_t>(unix_ms());
  for (std::size_t i = 0; i < entries->elements; ++i) {
    redisReply* e = entries->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
    const stream_id id = stream_id::parse(str(e->element[0]));
    if (id > s.last) s.last = id;
    redisReply* fields = e->element[1];
    if (fields->type != REDIS_REPLY_ARRAY) continue;
    std::string_view node, batch, owners;
    std::uint64_t seq = 0;
    bool mark = false;
    for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
      std::string_view name = str(fields->element[f]), value = str(fields->element[f + 1]);
      if (name == "n") node = value;
      else if (name == "s") seq = to_u64(value);
      else if (name == "b") batch = value;
      else if (name == "r") mark = true;
      else if (name == "o") owners = value;
    }
    if (node == options_.node_key) continue;
    const std::uint64_t lag = now > id.ms ? now - id.ms : 0;
    stats_.lag_ms_last = lag;
    if (lag > stats_.lag_ms_max.load()) stats_.lag_ms_max = lag;
    if (seq > 0) {
      auto [at, fresh] = s.seen.try_emplace(std::string(node), seq);
      if (!fresh) {
        if (seq != at->second + 1) missed = true;
        at->second = seq;
      }
    }
    if (mark) missed = true;
    if (!batch.empty() && listener) {
      ++stats_.received;
      listener->bus_batch(std::string(batch), std::string(owners));
    }
  }
  if (missed) resync(s, stats_.resyncs_gap);
}

void bus::resync(subscription& s, std::atomic<std::uint64_t>& counter) {
  auto listener = s.listener.lock();
  if (!listener) return;
  ++counter;
  listener->bus_resync();
}

void bus::check_streams() {
  if (!up_) return;
  struct tally {
    std::uint64_t total = 0, longest = 0;
    std::size_t waiting = 0;
  };
  auto t = std::make_shared<tally>();
  for (auto& [doc, s] : subs_) {
    if (!s.positioned) continue;
    ++t->waiting;
    const std::uint64_t token = s.token;
    commands_->command({"XINFO", "STREAM", key_of(doc)}, [this, doc = doc, token, t](redisReply* r) {
      std::uint64_t length = 0;
      stream_id deleted;
      if (r && r->type == REDIS_REPLY_ARRAY) {
        for (std::size_t i = 0; i + 1 < r->elements; i += 2) {
          std::string_view name = str(r->element[i]);
          if (name == "length" && r->element[i + 1]->type == REDIS_REPLY_INTEGER)
            length = static_cast<std::uint64_t>(r->element[i + 1]->integer);
          else if (name == "max-deleted-entry-id")
            deleted = stream_id::parse(str(r->element[i + 1]));
        }
      }
      t->total += length;
      t->longest = std::max(t->longest, length);
      auto it = subs_.find(doc);
      if (it != subs_.end() && it->second.token == token && it->second.positioned) {
        subscription& s = it->second;
        // Trimmed past our position: entries we never read are gone.
        if (deleted > s.last && deleted > s.resynced_for) {
          s.resynced_for = deleted;
          resync(s, stats_.resyncs_trimmed);
        }
      }
      if (--t->waiting == 0) {
        stats_.stream_entries = t->total;
        stats_.stream_entries_max = t->longest;
      }
    });
  }
  if (t->waiting == 0) stats_.stream_entries = stats_.stream_entries_max = 0;
  check_timer_.expires_after(options_.check_every);
  check_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) check_streams();
  });
}

void bus::publish(const std::string& doc, std::string batch, std::string owners) {
  net::post(io_, [this, doc, batch = std::move(batch), owners = std::move(owners)]() mutable {
    do_publish(doc, std::move(batch), owners);
  });
}

void bus::do_publish(const std::string& doc, std::string batch, const std::string& owners) {
  auto it = subs_.find(doc);
  subscription* s = it == subs_.end() ? nullptr : &it->second;
  const std::uint64_t seq = s ? s->next_seq++ : 0;  // 0: no sequence (the room has gone)
  const std::string key = key_of(doc), seq_text = std::to_string(seq), max = std::to_string(options_.stream_max);
  auto dropped = [this, doc] {
    ++stats_.publish_dropped;
    auto i = subs_.find(doc);
    if (i != subs_.end()) i->second.dropped = true;
  };
  if (!up_) {
    dropped();
    return;
  }
  std::vector<std::string_view> args{"XADD", key, "MAXLEN", "~", max, "*", "n", options_.node_key, "s", seq_text,
                                     "b", batch};
  if (!owners.empty()) {
    args.push_back("o");
    args.push_back(owners);
  }
  const bool ok = commands_->command(args,
                                     [this, dropped](redisReply* r) {
                                       if (!r || r->type == REDIS_REPLY_ERROR) {
                                         if (r) log(log_level::warn, "bus: XADD failed: {}", std::string_view(r->str, r->len));
                                         dropped();
                                       }
                                     });
  if (!ok) {
    dropped();
    return;
  }
  ++stats_.published;
  // Streams of documents nobody writes any more go away by themselves.
  if (s && s->published++ % 1000 == 0) {
    const std::string ttl = std::to_string(options_.stream_ttl.count());
    commands_->command({"EXPIRE", key, ttl}, [](redisReply*) {});
  }
}

}  // namespace weft::server
