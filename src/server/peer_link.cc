#include "server/peer_link.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>

#include "server/context.h"
#include "server/log.h"
#include "server/replicator.h"
#include "server/room.h"
#include "weft/encoding.h"
#include "weft/protocol.h"

namespace weft::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace peer = protocol::peer;
using tcp = net::ip::tcp;

// Links never negotiate permessage-deflate (their batches are compact binary
// already), so the stream is built without it: Beast's deflate code is much of
// what a WebSocket stream costs to compile.
template <class Stream>
using ws_stream = websocket::stream<Stream, false>;

namespace {
// Batches in flight to rooms and storage before the link stops reading: the
// peer's sends then wait in TCP, so a catch-up cannot flood this node.
constexpr std::size_t max_in_flight = 4096;
// Batches sent and not yet confirmed before the sender waits.
constexpr std::size_t send_window = 8192;
// Documents of a per-document exchange (after a gap in a feed) in progress at
// once, on each side: a node new to a cluster of a million documents loads
// and stores them a few at a time, not all at once.
constexpr std::size_t max_gap_asks = 16;
constexpr std::size_t max_gap_answers = 16;
// Feed entries read per storage request, and per frame.
constexpr std::size_t read_batch = 512;
// Bytes of batches per frame (the reader accepts up to 64 MiB).
constexpr std::size_t frame_budget = 4u << 20;
// Silence after which a link is taken for dead (probes go every second).
constexpr auto dead_after = std::chrono::seconds(10);
// Bytes waiting to be written past which no more feed entries or document
// answers are queued (they wait in storage instead), and past which the peer
// is taken for one that does not read and the link closes: control messages
// alone (probes, confirmations) still queue up behind a peer that sends but
// never reads. Replication resumes from the checkpoints on the next link.
constexpr std::size_t pause_sending_bytes = 16u << 20;
constexpr std::size_t max_outbox_bytes = 256u << 20;

std::uint64_t steady_us() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
bool path_holds(const std::string& path, const std::string& key) {
  std::size_t pos = 0;
  while (pos <= path.size()) {
    std::size_t end = path.find(',', pos);
    if (end == std::string::npos) end = path.size();
    if (path.compare(pos, end - pos, key) == 0) return true;
    pos = end + 1;
  }
  return false;
}
}  // namespace

peer_link::peer_link(server_context& ctx, replicator& rep, bool outbound, net::any_io_executor ex)
    : ctx_(ctx), rep_(rep), outbound_(outbound), timer_(ex), last_heard_(std::chrono::steady_clock::now()) {}

peer_link::~peer_link() = default;

std::vector<std::string> peer_link::subscribed() const {
  std::lock_guard<std::mutex> lock(subscribed_mu_);
  return subscribed_;
}

void peer_link::send(std::string frame, bool text) {
  if (closed_) return;
  stats_.bytes_sent += frame.size();
  outbox_bytes_ += frame.size();
  outbox_.emplace_back(std::move(frame), text);
  stats_.queue = outbox_.size();
  stats_.queue_bytes = outbox_bytes_;
  if (outbox_bytes_ > max_outbox_bytes)
    return abandon("does not read", std::to_string(outbox_bytes_) + " bytes wait to be written: the peer does not read");
  if (!writing_) start_write();
}

void peer_link::abandon(const char* transport_reason, const std::string& why) {
  close_transport(transport_reason);
  closed(why);
}

void peer_link::start_write() {
  writing_ = true;
  write_began_ = std::chrono::steady_clock::now();
  write_message(outbox_.front().first, outbox_.front().second);
}

bool peer_link::may_queue_more() const { return outbox_bytes_ < pause_sending_bytes; }

void peer_link::on_write(boost::system::error_code ec) {
  writing_ = false;
  if (ec) {
    closed("write failed: " + ec.message());
    return;
  }
  if (!outbox_.empty()) {
    outbox_bytes_ -= outbox_.front().first.size();
    outbox_.pop_front();
  }
  stats_.queue = outbox_.size();
  stats_.queue_bytes = outbox_bytes_;
  if (closed_) return;
  if (sending_paused_ && outbox_bytes_ < pause_sending_bytes / 2) {
    // Written down far enough: feed entries and document answers go on.
    sending_paused_ = false;
    pump();
    answer_want_docs();
  }
  if (!closed_ && !outbox_.empty() && !writing_) start_write();
}

void peer_link::send_hello() {
  send(peer::encode(peer::hello{rep_.node(), rep_.key(), ctx_.config.peer_token}), true);
}

void peer_link::closed(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  if (handshaken_) log(log_level::warn, "link to {} ended: {}", peer_node_.empty() ? "?" : peer_node_, why);
  rep_.detach(this, why);
}

void peer_link::recheck_token() {
  post([self = shared_from_this()] {
    if (self->closed_ || !self->claims_ || !self->ctx_.auth || !self->ctx_.auth->revoked(*self->claims_)) return;
    log(log_level::info, "link {}: peer token revoked: closing", self->peer_node_.empty() ? "?" : self->peer_node_);
    self->close("peer token revoked (its jti is on the deny list)");
  });
}

void peer_link::close(std::string reason) {
  post([self = shared_from_this(), reason = std::move(reason)] {
    if (self->closed_) return;
    self->send(peer::encode(peer::link_error{reason}), true);
    self->close_transport(reason);
    self->closed(reason);
  });
}

void peer_link::on_read(boost::system::error_code ec, std::string_view frame) {
  if (ec) {
    closed(ec == websocket::error::closed ? "closed by the peer" : "read failed: " + ec.message());
    return;
  }
  if (closed_) return;
  last_heard_ = std::chrono::steady_clock::now();
  stats_.last_contact_ms = unix_ms();
  stats_.bytes_received += frame.size();
  if (!got_text()) {
    if (!started_) {
      close("batches before the handshake");
      return;
    }
    handle_entries(frame);
  } else {
    auto m = peer::decode(frame);
    if (!m.ok()) {
      log(log_level::warn, "link to {}: {}", peer_node_, m.error().to_string());
      close(m.error().detail());
      return;
    }
    handle_control(m.value());
  }
  if (closed_) return;
  if (in_flight_ >= max_in_flight) {
    reading_paused_ = true;
    return;
  }
  read_message();
}

void peer_link::maybe_resume_reading() {
  if (reading_paused_ && !closed_ && in_flight_ < max_in_flight / 2) {
    reading_paused_ = false;
    read_message();
  }
}

void peer_link::handle_control(const peer::message& m) {
  if (auto* h = std::get_if<peer::hello>(&m)) {
    if (outbound_ || handshaken_) return close("unexpected peer_hello");
    handle_hello(*h);
    return;
  }
  if (auto* w = std::get_if<peer::welcome>(&m)) {
    if (!outbound_ || handshaken_) return close("unexpected peer_welcome");
    if (w->version != peer::link_version) return close("link protocol version " + std::to_string(w->version) + " is not " + std::to_string(peer::link_version));
    peer_node_ = w->node;
    peer_key_ = w->key;
    handshaken_ = true;
    std::string why;
    if (!rep_.attach(shared_from_this(), why)) close(why);
    return;
  }
  if (auto* e = std::get_if<peer::link_error>(&m)) {
    log(log_level::warn, "link to {}: the peer refused: {}", peer_node_.empty() ? "?" : peer_node_, e->message);
    close_transport("refused");
    closed("refused by the peer: " + e->message);
    return;
  }
  if (!started_) return close("replication before the handshake");
  if (auto* ls = std::get_if<peer::link_state>(&m)) {
    rep_.merge_link_state(this, *ls);
  } else if (auto* s = std::get_if<peer::subscribe>(&m)) {
    ++generation_;
    origins_ = std::set<std::string>(s->origins.begin(), s->origins.end());
    peer_have_ = s->have;
    cursor_ = s->have;
    unconfirmed_.clear();
    gaps_reported_.clear();
    // What it holds counts as confirmed, however it got there.
    rep_.peer_confirmed(peer_node_, s->have);
    update_lag();
    pump();
  } else if (auto* c = std::get_if<peer::confirm>(&m)) {
    on_confirm(c->have);
  } else if (auto* g = std::get_if<peer::gap>(&m)) {
    handle_gap(*g);
  } else if (auto* w = std::get_if<peer::want_doc>(&m)) {
    handle_want_doc(*w);
  } else if (auto* p = std::get_if<peer::probe>(&m)) {
    if (!p->reply)
      send(peer::encode(peer::probe{p->t, true}), true);
    else
      stats_.rtt_us = steady_us() - p->t;
  }
}

void peer_link::handle_hello(const peer::hello& h) {
  // The token check happened in accept_peer_link (transport side); here the
  // identity.
  if (h.version != peer::link_version)
    return close("link protocol version " + std::to_string(h.version) + " is not " + std::to_string(peer::link_version));
  if (h.node.empty() || h.key.find('~') == std::string::npos || node_of(h.key) != h.node)
    return close("peer_hello needs a node id and its origin key");
  if (!cert_names_.empty() && std::find(cert_names_.begin(), cert_names_.end(), h.node) == cert_names_.end())
    return close("the client certificate names " + cert_names_.front() + ", not node " + h.node);
  peer_node_ = h.node;
  peer_key_ = h.key;
  handshaken_ = true;
  std::string why;
  if (!rep_.attach(shared_from_this(), why)) return close(why);
  send(peer::encode(peer::welcome{rep_.node(), rep_.key()}), true);
}

void peer_link::start(peer::link_state state, std::vector<std::string> origins) {
  post([self = shared_from_this(), state = std::move(state), origins = std::move(origins)]() mutable {
    if (self->closed_) return;
    self->started_ = true;
    log(log_level::info, "link to {} is up ({})", self->peer_node_, self->outbound_ ? "dialled" : "accepted");
    self->send(peer::encode(state), true);
    self->subscribe(std::move(origins));
    self->tick();
  });
}

void peer_link::send_link_state(peer::link_state state) {
  post([self = shared_from_this(), state = std::move(state)] {
    if (self->started_ && !self->closed_) self->send(peer::encode(state), true);
  });
}

void peer_link::subscribe(std::vector<std::string> origins) {
  post([self = shared_from_this(), origins = std::move(origins)]() mutable {
    if (!self->started_ || self->closed_) return;
    {
      std::lock_guard<std::mutex> lock(self->subscribed_mu_);
      self->subscribed_ = origins;
    }
    self->send(peer::encode(peer::subscribe{std::move(origins), self->ctx_.store.have()}), true);
  });
}

// ---- receiving --------------------------------------------------------------------

void peer_link::handle_entries(std::string_view frame) {
  auto entries = peer::decode_entries(frame);
  if (!entries.ok()) return close(entries.error().to_string());
  for (auto& e : entries.value()) {
    if (!protocol::valid_doc_id(e.doc) || e.key.find('~') == std::string::npos ||
        (e.olsn == 0 && !gaps_.count(e.key)))
      return close("a replicated batch with a bad document id, key or sequence number");
    ++stats_.batches_received;
    if (e.olsn == 0 && e.batch.empty()) {
      gap_doc_done(e.key, false);  // the peer could not read that document
      continue;
    }
    if (e.olsn != 0 && path_holds(e.path, rep_.key())) {
      // It went through here already: held, whatever the routes said.
      ++stats_.duplicates;
      continue;
    }
    ++in_flight_;
    auto room = ctx_.rooms.acquire(e.doc);
    batch_origin origin{e.key, e.olsn, std::move(e.path), e.ts_ms};
    room->replicate(
        std::move(origin), std::move(e.batch),
        [self = shared_from_this(), room, key = e.key, olsn = e.olsn](status st) mutable {
          self->post([self, room = std::move(room), key = std::move(key), olsn, st = std::move(st)] {
            self->entry_done(room, key, olsn, st);
          });
        },
        std::move(e.owners));
  }
}

void peer_link::entry_done(const std::shared_ptr<document_room>& room, const std::string& key, std::uint64_t olsn,
                           const status& st) {
  --in_flight_;
  ctx_.rooms.release(room);
  if (olsn == 0) gap_doc_done(key, st.ok());
  if (!st.ok()) {
    ++stats_.errors;
    log(log_level::error, "link to {}: batch {} of {} (document {}) not stored: {}", peer_node_, olsn, key, room->id(),
        st.to_string());
    // Ask again from the checkpoint in a while: storage may work again.
    if (!resubscribe_scheduled_ && !closed_) {
      resubscribe_scheduled_ = true;
      auto t = std::make_shared<net::steady_timer>(timer_.get_executor(), std::chrono::seconds(2));
      t->async_wait([self = shared_from_this(), t](boost::system::error_code) {
        self->resubscribe_scheduled_ = false;
        self->subscribe(self->subscribed());
      });
    }
  }
  if (!confirm_scheduled_) {
    // One confirmation per commit: the others finishing in this commit are
    // already queued on the strand before this runs.
    confirm_scheduled_ = true;
    post([self = shared_from_this()] {
      self->confirm_scheduled_ = false;
      self->send_confirm();
    });
  }
  maybe_resume_reading();
}

void peer_link::handle_gap(const peer::gap& g) {
  // The peer compacted entries of `g.key` this node never got: exchange
  // every document by version vector instead, then skip the checkpoint
  // past the gap (the entries after it keep coming meanwhile).
  log(log_level::warn, "link to {}: its feed of {} has a gap after our checkpoint; exchanging {} documents instead",
      peer_node_, g.key, g.docs.size());
  auto& st = gaps_[g.key];
  st.resume = g.resume;
  st.failed = false;
  st.remaining += 1;  // this call's own share, so no answer can finish the gap before all are queued
  for (const auto& doc : g.docs) {
    if (!protocol::valid_doc_id(doc)) {
      st.failed = true;
      continue;
    }
    st.todo.push_back(doc);
    ++st.remaining;
  }
  ask_gap_docs(g.key);
  gap_doc_done(g.key, true, false);
}

void peer_link::ask_gap_docs(const std::string& key) {
  auto it = gaps_.find(key);
  if (it == gaps_.end()) return;
  gap_state& st = it->second;
  while (st.asking < max_gap_asks && !st.todo.empty()) {
    std::string doc = std::move(st.todo.front());
    st.todo.pop_front();
    ++st.asking;
    auto room = ctx_.rooms.acquire(doc);
    room->read_version([self = shared_from_this(), room, key, doc](version_vector v) mutable {
      peer::want_doc w{key, doc, {}};
      for (const auto& [r, c] : v.entries()) w.version.emplace_back(r, c);
      self->post([self, room = std::move(room), w = std::move(w)] {
        self->ctx_.rooms.release(room);
        self->send(peer::encode(w), true);
      });
    });
  }
}

void peer_link::gap_doc_done(const std::string& key, bool ok, bool doc) {
  auto it = gaps_.find(key);
  if (it == gaps_.end()) return;
  if (!ok) it->second.failed = true;
  if (doc && it->second.asking > 0) {
    --it->second.asking;
    ask_gap_docs(key);
  }
  if (--it->second.remaining > 0) return;
  const gap_state st = it->second;
  gaps_.erase(it);
  if (st.failed) return;  // the next subscription (after an error, 2 s) finds the gap again
  ctx_.store.advance(key, st.resume, [self = shared_from_this(), key](status s) {
    self->post([self, key, s] {
      if (!s.ok()) log(log_level::error, "link to {}: cannot move the checkpoint of {}: {}", self->peer_node_, key, s.to_string());
      self->send_confirm();
    });
  });
}

void peer_link::handle_want_doc(const peer::want_doc& w) {
  if (!protocol::valid_doc_id(w.doc)) return close("want_doc for a bad document id");
  const char* unoffered = "want_doc for a document no gap of this link named (or asked for more often)";
  auto offered = offered_.find(w.key);
  if (offered == offered_.end()) return close(unoffered);
  auto named = offered->second.find(w.doc);
  if (named == offered->second.end()) return close(unoffered);
  if (--named->second == 0) offered->second.erase(named);
  if (offered->second.empty()) offered_.erase(offered);
  want_queue_.push_back(w);
  answer_want_docs();
}

void peer_link::answer_want_docs() {
  if (!may_queue_more()) {
    sending_paused_ = true;
    return;
  }
  while (answering_ < max_gap_answers && !want_queue_.empty() && !closed_) {
    peer::want_doc w = std::move(want_queue_.front());
    want_queue_.pop_front();
    ++answering_;
    answer_want_doc(w);
  }
}

void peer_link::answer_want_doc(const peer::want_doc& w) {
  version_vector v;
  for (const auto& [r, c] : w.version) v.set(r, c);
  auto room = ctx_.rooms.acquire(w.doc);
  room->read_ops_since(std::move(v), [self = shared_from_this(), room, key = w.key,
                                      doc = w.doc](result<document_room::ops_since_answer> a) mutable {
    // No bytes at all (not an empty op list) says "could not answer": the
    // peer must not move its checkpoint past this document.
    std::string batch = a.ok() ? encode_ops(a.value().ops) : std::string();
    // The claims too: the feed entries that carried them were compacted
    // away, and without them the peer would let anyone claim those replicas.
    std::string owners = a.ok() ? std::move(a.value().owners) : std::string();
    self->post([self, room = std::move(room), key = std::move(key), doc = std::move(doc), batch = std::move(batch),
                owners = std::move(owners)]() mutable {
      self->ctx_.rooms.release(room);
      // An empty answer too: it tells the peer this document is done.
      std::vector<peer::entry> out{peer::entry{key, 0, doc, self->rep_.key(), 0, batch, std::move(owners)}};
      ++self->stats_.batches_sent;
      self->send(peer::encode_entries(out), false);
      --self->answering_;
      self->answer_want_docs();
    });
  });
}

void peer_link::send_confirm() {
  if (!started_ || closed_) return;
  last_confirmed_ = ctx_.store.have();
  send(peer::encode(peer::confirm{last_confirmed_}), true);
}

// ---- sending ----------------------------------------------------------------------

void peer_link::feed_advanced() {
  post([self = shared_from_this()] { self->pump(); });
}

void peer_link::pump() {
  if (!started_ || closed_ || feed_reading_ || origins_.empty()) return;
  if (unconfirmed_.size() >= send_window) return;
  if (!may_queue_more()) {
    sending_paused_ = true;  // on_write() resumes
    return;
  }
  // The next key (round robin) of a subscribed origin with entries to send.
  auto have = ctx_.store.have();
  const std::string* next = nullptr;
  auto pick = [&](auto begin, auto end) {
    for (auto it = begin; it != end && !next; ++it) {
      const auto& [key, upto] = *it;
      if (key == peer_key_ || !origins_.count(node_of(key)) || gaps_reported_.count(key)) continue;
      if (cursor_[key] < upto) next = &key;
    }
  };
  pick(have.upper_bound(last_key_), have.end());
  pick(have.begin(), have.upper_bound(last_key_));
  update_lag(have);
  if (!next) return;
  last_key_ = *next;
  feed_reading_ = true;
  ctx_.store.read_feed(*next, cursor_[*next], read_batch,
                       [self = shared_from_this(), g = generation_, key = *next](result<feed_page> page) mutable {
                         self->post([self, g, key = std::move(key), page = std::move(page)]() mutable {
                           self->on_feed(g, std::move(key), std::move(page));
                         });
                       });
}

void peer_link::on_feed(std::uint64_t generation, std::string key, result<feed_page> page) {
  feed_reading_ = false;
  if (closed_) return;
  if (generation != generation_) return pump();  // the peer resubscribed meanwhile
  if (!page.ok()) {
    log(log_level::error, "link to {}: cannot read the feed: {}", peer_node_, page.error().to_string());
    return;  // the next commit or tick tries again
  }
  if (page.value().compacted) {
    // Only entries every peer known here confirmed are compacted, so this is
    // a peer new to this node (a region added later): the peer exchanges
    // every document by version vector, and the feed goes on after the gap.
    if (!gaps_reported_.insert(key).second) return pump();
    feed_reading_ = true;
    ctx_.store.feed_gap(key, cursor_[key], [self = shared_from_this(), g = generation_, key](result<storage::feed_gap_info> r) {
      self->post([self, g, key, r = std::move(r)]() mutable {
        self->feed_reading_ = false;
        if (g != self->generation_ || self->closed_) return self->pump();
        if (!r.ok()) {
          log(log_level::error, "link to {}: cannot read the feed of {}: {}", self->peer_node_, key,
              r.error().to_string());
          return;
        }
        log(log_level::warn, "link to {}: the feed of {} was compacted past its checkpoint {}; {} documents by "
                             "version vector instead",
            self->peer_node_, key, self->cursor_[key], r.value().docs.size());
        const std::uint64_t resume = r.value().first_held - 1;
        auto& offered = self->offered_[key];
        for (const auto& doc : r.value().docs) ++offered[doc];
        self->send(peer::encode(peer::gap{key, resume, std::move(r.value().docs)}), true);
        self->cursor_[key] = resume;
        self->gaps_reported_.erase(key);
        self->pump();
      });
    });
    return;
  }
  std::vector<peer::entry> out;
  std::size_t bytes = 0;
  auto flush = [&] {
    if (out.empty()) return;
    stats_.batches_sent += out.size();
    send(peer::encode_entries(out), false);
    out.clear();
    bytes = 0;
  };
  for (auto& e : page.value().entries) {
    // Frames stay far below the peer's read limit (a batch is at most about
    // one client message, --max-message-bytes).
    if (bytes + e.batch.size() > frame_budget) {
      flush();
      // The rest of the page waits in storage while the peer reads slowly.
      if (!may_queue_more()) break;
    }
    cursor_[key] = e.olsn;
    if (path_holds(e.path, peer_key_)) continue;  // never back to a node it passed
    unconfirmed_.push_back(sent{key, e.olsn, e.ts_ms});
    bytes += e.batch.size() + e.doc.size() + e.path.size() + e.owners.size() + 32;
    out.push_back(peer::entry{std::move(e.key), e.olsn, std::move(e.doc), std::move(e.path), e.ts_ms,
                              std::move(e.batch), std::move(e.owners)});
  }
  flush();
  pump();
}

void peer_link::on_confirm(const peer::origin_vector& have) {
  for (const auto& [key, n] : have) {
    auto& h = peer_have_[key];
    if (n > h) h = n;
  }
  rep_.peer_confirmed(peer_node_, peer_have_);
  while (!unconfirmed_.empty()) {
    auto it = peer_have_.find(unconfirmed_.front().key);
    if (it == peer_have_.end() || it->second < unconfirmed_.front().olsn) break;
    unconfirmed_.pop_front();
  }
  update_lag();
  // The peer's checkpoint here, for compaction: written now and then, and
  // only from its own confirmation of durable data.
  auto now = std::chrono::steady_clock::now();
  if (now - progress_recorded_ >= std::chrono::seconds(1)) {
    progress_recorded_ = now;
    ctx_.store.record_peer_progress(peer_node_, peer_have_);
  }
  pump();
}

void peer_link::update_lag() { update_lag(ctx_.store.have()); }

void peer_link::update_lag(const peer::origin_vector& have) {
  // Behind: batches of subscribed origins held here and not confirmed.
  std::uint64_t behind = 0;
  for (const auto& [key, upto] : have) {
    if (key == peer_key_ || !origins_.count(node_of(key))) continue;
    auto it = peer_have_.find(key);
    std::uint64_t h = it == peer_have_.end() ? 0 : it->second;
    if (upto > h) behind += upto - h;
  }
  stats_.lag_batches = behind;
  const auto now = std::chrono::steady_clock::now();
  if (!unconfirmed_.empty()) {
    behind_since_ = {};
    stats_.lag_ms = static_cast<std::uint64_t>(std::max<std::int64_t>(0, unix_ms() - unconfirmed_.front().ts_ms));
  } else if (behind == 0) {
    behind_since_ = {};
    stats_.lag_ms = 0;
  } else {
    // Behind with nothing sent (the feed not read yet, or stuck): at least
    // as old as the time it has been so.
    if (behind_since_ == std::chrono::steady_clock::time_point{}) behind_since_ = now;
    stats_.lag_ms = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - behind_since_).count());
  }
}

void peer_link::tick() {
  if (closed_) return;
  if (std::chrono::steady_clock::now() - last_heard_ > dead_after)
    return abandon("silent", "nothing heard for " + std::to_string(dead_after.count()) + " s");
  // A frame of at most a few MiB goes in well under the default 30 s on any
  // link that replicates at all: one still not written has a peer that
  // stopped reading.
  const auto stall_limit = std::chrono::seconds(ctx_.config.peer_write_timeout_s);
  if (writing_ && std::chrono::steady_clock::now() - write_began_ > stall_limit)
    return abandon("does not read", "a frame waits to be written for more than " +
                                        std::to_string(stall_limit.count()) + " s: the peer does not read");
  send(peer::encode(peer::probe{steady_us(), false}), true);
  // Batches that came over other links count for this peer too (its
  // write-concern and lag figures): confirm once a second when anything moved.
  if (ctx_.store.have() != last_confirmed_) send_confirm();
  update_lag();
  pump();
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->tick();
  });
}

// ---- transports -------------------------------------------------------------------

namespace {

template <class Stream>
class peer_transport final : public peer_link {
 public:
  peer_transport(server_context& ctx, replicator& rep, bool outbound, ws_stream<Stream> ws)
      : peer_link(ctx, rep, outbound, ws.get_executor()), ws_(std::move(ws)) {
    ws_.auto_fragment(false);
  }
  ws_stream<Stream>& ws() { return ws_; }
  /// An inbound link's place under --max-connections-per-address.
  connection_slot slot;
  void begin_outbound() {
    send_hello();
    read_message();
  }
  void begin_inbound() { read_message(); }
  /// With auth on and no peer token in the upgrade: the hello must bring one.
  bool need_token = false;

 private:
  std::shared_ptr<peer_transport> self() { return std::static_pointer_cast<peer_transport>(shared_from_this()); }
  void post(std::function<void()> f) override { net::post(ws_.get_executor(), std::move(f)); }
  void read_message() override {
    buffer_.clear();
    // Until the peer has shown who it is, its messages are small.
    ws_.read_message_max(handshaken() ? (64u << 20) : (64u << 10));
    ws_.async_read(buffer_, [self = self()](beast::error_code ec, std::size_t) {
      auto data = self->buffer_.cdata();
      std::string_view frame(static_cast<const char*>(data.data()), data.size());
      if (!ec && self->need_token) {
        // The hello must carry a valid peer token.
        auto m = peer::decode(frame);
        auto* h = m.ok() ? std::get_if<peer::hello>(&m.value()) : nullptr;
        if (!h) return self->refuse("the first message on /peer must be peer_hello");
        auto claims = self->ctx_.auth->verify(h->token, unix_now());
        if (!claims.ok()) {
          ++self->ctx_.stats.auth_failures;
          return self->refuse("peer token refused: " + claims.error().detail());
        }
        if (!claims.value().peer) {
          ++self->ctx_.stats.auth_failures;
          return self->refuse("this token is not a peer token (weft-token --peer)");
        }
        self->need_token = false;
        self->set_claims(std::make_shared<const token_claims>(std::move(claims.value())));
      }
      self->on_read(ec, frame);
    });
  }
  void refuse(const std::string& why) {
    log(log_level::warn, "refused a replication link: {}", why);
    ws_.text(true);
    auto msg = std::make_shared<std::string>(peer::encode(peer::link_error{why}));
    ws_.async_write(net::buffer(*msg), [self = self(), msg, why](beast::error_code, std::size_t) {
      self->ws_.async_close(websocket::close_reason(websocket::close_code::policy_error, why.substr(0, 120)),
                            [self](beast::error_code) {});
    });
  }
  bool got_text() const override { return ws_.got_text(); }
  void write_message(const std::string& frame, bool text) override {
    ws_.text(text);
    ws_.async_write(net::buffer(frame), [self = self()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }
  void close_transport(const std::string& reason) override {
    ws_.async_close(websocket::close_reason(websocket::close_code::going_away, reason.substr(0, 120)),
                    [self = self()](beast::error_code) {});
  }

  ws_stream<Stream> ws_;
  beast::flat_buffer buffer_;
};

struct dial_state {
  tcp::resolver resolver;
  std::string host, port;
  explicit dial_state(net::any_io_executor ex) : resolver(ex) {}
};

using dial_done = std::function<void(result<std::shared_ptr<peer_link>>)>;

/// Connects the TCP layer of `ws` to `results` and hands `done` to `next`;
/// connecting and whatever `next` starts (the TLS handshake for wss://) must
/// finish within 5 s, until upgrade_to_peer_link() lifts the deadline.
template <class Stream, class Next>
void connect_then(const std::shared_ptr<ws_stream<Stream>>& ws, const tcp::resolver::results_type& results,
                  dial_done done, Next next) {
  beast::get_lowest_layer(*ws).expires_after(std::chrono::seconds(5));
  beast::get_lowest_layer(*ws).async_connect(
      results, [ws, done = std::move(done), next = std::move(next)](beast::error_code ec, const tcp::endpoint&) mutable {
        if (ec) return done(status(error_code::invalid_argument, "connect: " + ec.message()));
        beast::get_lowest_layer(*ws).socket().set_option(tcp::no_delay(true), ec);
        next(std::move(done));
      });
}

/// The WebSocket upgrade on /peer over a connected (and, for wss://,
/// TLS-secured) stream; then the link is made and says hello.
template <class Stream>
void upgrade_to_peer_link(server_context& ctx, replicator& rep, const std::shared_ptr<dial_state>& st,
                          const std::shared_ptr<ws_stream<Stream>>& ws, dial_done done) {
  beast::get_lowest_layer(*ws).expires_never();
  ws->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
  const std::string token = ctx.config.peer_token;
  ws->set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
    req.set(beast::http::field::user_agent, "weft-server peer link");
    if (!token.empty()) req.set(beast::http::field::authorization, "Bearer " + token);
  }));
  auto res = std::make_shared<websocket::response_type>();
  ws->async_handshake(*res, st->host + ":" + st->port, "/peer",
                      [&ctx, &rep, ws, res, done = std::move(done)](beast::error_code ec) mutable {
                        if (ec) {
                          std::string why = res->body();
                          while (!why.empty() && why.back() == '\n') why.pop_back();
                          return done(status(error_code::invalid_argument,
                                             "handshake: " + (why.empty() ? ec.message() : why)));
                        }
                        auto link = std::make_shared<peer_transport<Stream>>(ctx, rep, true, std::move(*ws));
                        link->begin_outbound();
                        done(std::shared_ptr<peer_link>(link));
                      });
}

}  // namespace

void dial_peer(server_context& ctx, replicator& rep, const std::string& url, dial_done done) {
  // ws://HOST:PORT[/...] or wss://HOST:PORT[/...]
  const bool tls = url.starts_with("wss://");
  if (tls && !ctx.peer_tls) {
    done(status(error_code::invalid_argument, "peer URL " + url + ": no TLS client context"));
    return;
  }
  std::string rest = url.substr(tls ? 6 : 5);
  std::string hostport = rest.substr(0, rest.find('/'));
  auto colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    done(status(error_code::invalid_argument, "peer URL " + url + " needs a port"));
    return;
  }
  auto ex = net::make_strand(ctx.io_for_connection());
  auto st = std::make_shared<dial_state>(ex);
  st->host = hostport.substr(0, colon);
  st->port = hostport.substr(colon + 1);
  st->resolver.async_resolve(
      st->host, st->port,
      [&ctx, &rep, st, ex, tls, done = std::move(done)](beast::error_code ec,
                                                        tcp::resolver::results_type results) mutable {
        if (ec) return done(status(error_code::invalid_argument, "resolve " + st->host + ": " + ec.message()));
        if (!tls) {
          auto ws = std::make_shared<ws_stream<beast::tcp_stream>>(ex);
          return connect_then(ws, results, std::move(done), [&ctx, &rep, st, ws](dial_done done) {
            upgrade_to_peer_link(ctx, rep, st, ws, std::move(done));
          });
        }
        using tls_stream = beast::ssl_stream<beast::tcp_stream>;
        auto ws = std::make_shared<ws_stream<tls_stream>>(ex, *ctx.peer_tls);
        // The certificate must name the host dialled (a DNS name or an IP
        // address in its subjectAltName); SNI for name-based TLS front ends.
        ws->next_layer().set_verify_callback(net::ssl::host_name_verification(st->host));
        beast::error_code ip_ec;
        net::ip::make_address(st->host, ip_ec);
        if (ip_ec && !SSL_set_tlsext_host_name(ws->next_layer().native_handle(), st->host.c_str()))
          return done(status(error_code::invalid_argument, "TLS: cannot set the server name " + st->host));
        connect_then(ws, results, std::move(done), [&ctx, &rep, st, ws](dial_done done) {
          ws->next_layer().async_handshake(net::ssl::stream_base::client,
                                           [&ctx, &rep, st, ws, done = std::move(done)](beast::error_code ec) mutable {
                                             if (ec)
                                               return done(status(error_code::invalid_argument,
                                                                  "TLS handshake: " + ec.message()));
                                             upgrade_to_peer_link(ctx, rep, st, ws, std::move(done));
                                           });
        });
      });
}

template <class Stream>
void accept_peer_link(Stream&& stream, beast::http::request<beast::http::string_body> req, server_context& ctx,
                      std::shared_ptr<const token_claims> header_claims, connection_slot slot,
                      std::vector<std::string> cert_names) {
  if (!ctx.replication) return;
  ws_stream<Stream> ws(std::move(stream));
  ws.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
  auto link = std::make_shared<peer_transport<Stream>>(ctx, *ctx.replication, false, std::move(ws));
  link->slot = std::move(slot);
  link->need_token = ctx.auth.has_value() && !header_claims;
  link->set_claims(std::move(header_claims));
  link->set_certificate_names(std::move(cert_names));
  link->ws().async_accept(req, [link](beast::error_code ec) {
    if (ec) return;
    link->begin_inbound();
  });
}

template void accept_peer_link<beast::tcp_stream>(beast::tcp_stream&&, beast::http::request<beast::http::string_body>,
                                                  server_context&, std::shared_ptr<const token_claims>,
                                                  connection_slot, std::vector<std::string>);
template void accept_peer_link<beast::ssl_stream<beast::tcp_stream>>(beast::ssl_stream<beast::tcp_stream>&&,
                                                                     beast::http::request<beast::http::string_body>,
                                                                     server_context&, std::shared_ptr<const token_claims>,
                                                                     connection_slot, std::vector<std::string>);

}  // namespace weft::server
