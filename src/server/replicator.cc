#include "server/replicator.h"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "protocol/json_writer.h"
#include "server/context.h"
#include "server/log.h"
#include "server/peer_link.h"
#include "server/room.h"

namespace weft::server {

namespace net = boost::asio;
namespace peer = protocol::peer;

namespace {
constexpr auto refresh_every = std::chrono::seconds(2);
// A change in what this node holds of other nodes' batches is flooded at
// most this often (write concerns counting regions that are not neighbours
// hear of it this late at worst).
constexpr auto holds_flood_every = std::chrono::milliseconds(200);

/// How far `node` said it holds the batches of origin `key` (0: nothing said).
std::uint64_t held_by(const peer::node_state& node, const std::string& key) {
  auto h = node.holds.find(key);
  return h == node.holds.end() ? 0 : h->second;
}
}  // namespace

struct replicator::dialer {
  std::string url;
  std::string node;  // learnt at the first handshake
  std::string state = "connecting";  // connecting, up, down, standby
  std::string last_error;
  std::weak_ptr<peer_link> link;
  bool retired = false;  // its node was forgotten: no more dialling (guarded by mu_)
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();  // dialling since
  unsigned failures = 0;
  std::uint64_t reconnects = 0;
  std::unique_ptr<net::steady_timer> timer;
};

replicator::replicator(server_context& ctx)
    : ctx_(ctx), node_(ctx.config.node_id), kind_(parse_topology(ctx.config.topology)) {
  refresh_timer_ = std::make_unique<net::steady_timer>(net::make_strand(*ctx.ios[0]));
  holds_timer_ = std::make_unique<net::steady_timer>(refresh_timer_->get_executor());
  std::lock_guard<std::mutex> lock(mu_);
  refresh_self_locked();
}

replicator::~replicator() = default;

const std::string& replicator::key() const noexcept { return ctx_.store.origin_key(); }

void replicator::start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& url : ctx_.config.peers) {
      auto d = std::make_shared<dialer>();
      d->url = url;
      if (!leading_) d->state = "idle";
      d->timer = std::make_unique<net::steady_timer>(net::make_strand(*ctx_.ios[0]));
      dialers_.push_back(d);
    }
  }
  for (auto& d : dialers_) dial(d);  // the list no longer changes
  schedule_refresh();
}

void replicator::stop() {
  std::map<std::string, std::shared_ptr<peer_link>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    links.swap(links_);
  }
  for (auto& d : dialers_) {
    net::post(d->timer->get_executor(), [d] { d->timer->cancel(); });
    std::shared_ptr<peer_link> l;
    {
      std::lock_guard<std::mutex> lock(mu_);
      l = d->link.lock();
    }
    if (l) l->close("server shutting down");
  }
  net::post(refresh_timer_->get_executor(), [this] {
    refresh_timer_->cancel();
    holds_timer_->cancel();
  });
  for (auto& [n, l] : links) l->close("server shutting down");
}

void replicator::set_leading(bool leading) {
  std::vector<std::shared_ptr<dialer>> redial;
  std::vector<std::shared_ptr<peer_link>> close;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || leading_ == leading) return;
    leading_ = leading;
    for (auto& d : dialers_) {
      if (d->retired) continue;
      d->failures = 0;
      d->since = std::chrono::steady_clock::now();
      if (leading) {
        d->state = "connecting";
        redial.push_back(d);
      } else {
        d->state = "idle";
        net::post(d->timer->get_executor(), [d] { d->timer->cancel(); });
      }
    }
    if (!leading)
      for (const auto& [n, l] : links_) close.push_back(l);
  }
  for (auto& l : close) l->close("this node no longer carries its region's links (another node of the region takes them)");
  for (auto& d : redial) dial(d);
}

void replicator::dial(const std::shared_ptr<dialer>& d) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || d->retired || !leading_) return;
    if (d->state != "standby") d->state = "connecting";
  }
  dial_peer(ctx_, *this, d->url, [this, d](result<std::shared_ptr<peer_link>> r) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!r.ok()) {
      d->last_error = r.error().detail();
      if (d->state != "standby" && leading_) d->state = "down";
      net::post(d->timer->get_executor(), [this, d] { schedule_redial(d); });
      return;
    }
    d->link = r.value();
  });
}

void replicator::schedule_redial(const std::shared_ptr<dialer>& d) {
  // Exponential backoff with jitter, 100 ms up to 1 s (a peer back after an
  // outage is found within a second; a failing dial costs little); a standby
  // link (the peer keeps the link it dialled) checks back every 10 s.
  unsigned ms;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ || d->retired || !leading_) return;
    ++d->failures;
    ms = d->state == "standby" ? 10000 : std::min(1000u, 100u << std::min(d->failures, 4u));
  }
  static thread_local std::minstd_rand rng{std::random_device{}()};
  ms = ms / 2 + rng() % (ms / 2 + 1);
  d->timer->expires_after(std::chrono::milliseconds(ms));
  d->timer->async_wait([this, d](boost::system::error_code ec) {
    if (!ec) dial(d);
  });
}

bool replicator::attach(const std::shared_ptr<peer_link>& link, std::string& why) {
  const std::string& p = link->peer_node();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) {
      why = "shutting down";
      return false;
    }
    if (p == node_) {
      why = "the peer has this node's id (" + node_ + "); every node needs its own --node-id";
      return false;
    }
    if (!leading_) {
      why = "this node does not carry the links of region " + node_ + " now; another node of the region does";
      return false;
    }
    auto existing = links_.find(p);
    if (existing != links_.end()) {
      // Two links to one peer (both dialled each other): both ends keep the
      // one dialled by the smaller node id, so they agree without talking.
      const std::string& keeper = std::min(node_, p);
      const bool new_dialled_by_keeper = (link->outbound() ? node_ : p) == keeper;
      const bool old_dialled_by_keeper = (existing->second->outbound() ? node_ : p) == keeper;
      if (old_dialled_by_keeper && !new_dialled_by_keeper) {
        why = "duplicate link: " + keeper + " dials this pair";
        for (auto& d : dialers_)
          if (d->link.lock() == link) d->state = "standby";
        return false;
      }
      existing->second->close("replaced by a newer link");
    }
    links_[p] = link;
    auto& rec = peers_[p];
    if (!rec.up && rec.down_since != std::chrono::steady_clock::time_point{}) ++rec.reconnects;
    rec.up = true;
    rec.down_since = {};
    for (auto& d : dialers_)
      if (d->link.lock() == link) {
        d->node = p;
        d->state = "up";
        d->failures = 0;
        d->last_error.clear();
      }
    refresh_self_locked();
  }
  // Start with an empty subscription: the reroute below sends the real one.
  {
    std::lock_guard<std::mutex> lock(mu_);
    link->start(state_locked(), {});
  }
  reroute_and_flood();
  return true;
}

status replicator::can_forget(const std::string& node, const std::string& url) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (node == node_) return status(error_code::invalid_argument, node + " is this node");
  if (!url.empty()) {
    auto d = std::find_if(dialers_.begin(), dialers_.end(), [&](const auto& d) { return d->url == url && !d->retired; });
    if (d == dialers_.end()) return status(error_code::invalid_argument, url + " is no --peer URL this node dials");
    if (!(*d)->node.empty() && (*d)->node != node)
      return status(error_code::invalid_argument, url + " reached node " + (*d)->node + ", not " + node);
  }
  if (links_.count(node))
    return status(error_code::invalid_operation, "the link to " + node + " is up: it has not left");
  return {};
}

bool replicator::forget(const std::string& node, const std::string& url) {
  std::lock_guard<std::mutex> lock(mu_);
  if (node == node_ || links_.count(node)) return false;  // it came back meanwhile
  bool stopped = false;
  // Retired, not removed: start() and stop() walk the list without the lock.
  for (auto& d : dialers_) {
    const bool named = d->node == node || (!url.empty() && d->url == url && d->node.empty());
    if (named && !d->retired) {
      d->retired = true;
      stopped = true;
      // On the timer's own executor (timers are not thread-safe); a redial
      // already due finds `retired` and stops.
      net::post(d->timer->get_executor(), [d] { d->timer->cancel(); });
    }
  }
  peers_.erase(node);
  confirmed_.erase(node);
  peer_have_.erase(node);
  confirm_marks_.erase(node);
  refresh_self_locked();
  return stopped;
}

void replicator::recheck_tokens() {
  std::vector<std::shared_ptr<peer_link>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [node, link] : links_) links.push_back(link);
  }
  for (const auto& link : links) link->recheck_token();
}

void replicator::detach(const peer_link* link, const std::string& why) {
  std::shared_ptr<dialer> redial;
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = links_.find(link->peer_node());
    if (it != links_.end() && it->second.get() == link) {
      links_.erase(it);
      auto& rec = peers_[link->peer_node()];
      rec.up = false;
      rec.down_since = std::chrono::steady_clock::now();
      refresh_self_locked();
      changed = true;
    }
    for (auto& d : dialers_) {
      auto l = d->link.lock();
      if (l.get() == link) {
        if (d->state != "standby" && leading_) d->state = "down";
        d->last_error = why;
        redial = d;
      }
    }
    if (stopped_) return;
  }
  if (redial) net::post(redial->timer->get_executor(), [this, redial] { schedule_redial(redial); });
  if (changed) reroute_and_flood();
}

peer::origin_vector replicator::holds_locked() const {
  peer::origin_vector holds;
  const auto have = ctx_.store.have();
  for (const auto& [n, st] : nodes_) {
    if (n == node_ || st.key.empty()) continue;
    auto h = have.find(st.key);
    if (h != have.end() && h->second > 0) holds[st.key] = h->second;
  }
  return holds;
}

void replicator::refresh_self_locked() {
  peer::node_state self;
  self.node = node_;
  self.key = ctx_.store.origin_key();
  self.holds = holds_locked();
  holds_flooded_ = self.holds;
  self.version = std::max<std::uint64_t>(self_version_ + 1, static_cast<std::uint64_t>(unix_ms()));
  self_version_ = self.version;
  for (const auto& [p, l] : links_) self.links.push_back({p, l->stats().lag_ms.load()});
  nodes_[node_] = std::move(self);
}

peer::link_state replicator::state_locked() const {
  peer::link_state s;
  for (const auto& [n, st] : nodes_) s.nodes.push_back(st);
  return s;
}

void replicator::merge_link_state(const peer_link* from, const peer::link_state& state) {
  bool changed = false, own_held = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string& own = ctx_.store.origin_key();
    for (const auto& n : state.nodes) {
      if (n.node == node_) continue;  // only this node speaks for itself
      auto it = nodes_.find(n.node);
      if (it == nodes_.end() || it->second.version < n.version) {
        if (held_by(n, own) > (it == nodes_.end() ? 0 : held_by(it->second, own))) own_held = true;
        nodes_[n.node] = n;
        changed = true;
      }
    }
    // Keys it learnt just now may be ones it holds batches of. (Only then:
    // a new state of its own on every merge would echo between nodes.)
    if (changed && holds_locked() != holds_flooded_) refresh_self_locked();
  }
  if (changed) reroute_and_flood(from);
  if (own_held) wake_watchers();
}

void replicator::wake_watchers() {
  std::vector<std::shared_ptr<document_room>> wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = watchers_.begin(); it != watchers_.end();) {
      if (auto r = it->lock()) {
        wake.push_back(std::move(r));
        ++it;
      } else {
        it = watchers_.erase(it);
      }
    }
  }
  for (auto& r : wake) r->regions_advanced();
}

void replicator::reroute_and_flood(const peer_link* except) {
  std::vector<std::pair<std::shared_ptr<peer_link>, std::vector<std::string>>> subs;
  peer::link_state state;
  std::vector<std::shared_ptr<peer_link>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    reported_links reported;
    for (const auto& [n, st] : nodes_) {
      auto& s = reported[n];
      for (const auto& l : st.links) s.insert(l.node);
    }
    upstream_ = upstream_by_origin(reported, node_, kind_, ctx_.config.hub);
    // Origins with no route (their node is down or gone, or cut off) are
    // asked of every neighbour: whoever holds their last batches passes
    // them on, and duplicates are dropped. So are this node's own earlier
    // incarnations (a node that lost its data directory).
    std::vector<std::string> everywhere;
    for (const auto& [n, st] : nodes_)
      if (!upstream_.count(n)) everywhere.push_back(n);
    for (const auto& [p, l] : links_) {
      std::vector<std::string> origins = everywhere;
      for (const auto& [origin, up] : upstream_)
        if (up == p) origins.push_back(origin);
      std::sort(origins.begin(), origins.end());
      if (origins != l->subscribed()) subs.emplace_back(l, std::move(origins));
      if (l.get() != except) links.push_back(l);
    }
    state = state_locked();
  }
  for (auto& [l, origins] : subs) l->subscribe(std::move(origins));
  for (auto& l : links) l->send_link_state(state);
}

void replicator::schedule_refresh() {
  refresh_timer_->expires_after(refresh_every);
  refresh_timer_->async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      refresh_self_locked();  // fresh lags for the cluster picture
    }
    reroute_and_flood();
    schedule_refresh();
  });
}

void replicator::feed_advanced(const std::vector<std::string>& keys) {
  std::vector<std::shared_ptr<peer_link>> links;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Batches of other nodes stored here: tell the cluster (soon, not per
    // commit), for write concerns of nodes that are not neighbours.
    // (Only a current key of another node counts: holds list no others.)
    const bool others = std::any_of(keys.begin(), keys.end(), [&](const std::string& k) {
      auto n = nodes_.find(node_of(k));
      return n != nodes_.end() && n->first != node_ && n->second.key == k;
    });
    if (others && !stopped_ && !holds_flood_due_ && holds_locked() != holds_flooded_) {
      holds_flood_due_ = true;
      net::post(holds_timer_->get_executor(), [this] {
        holds_timer_->expires_after(holds_flood_every);
        holds_timer_->async_wait([this](boost::system::error_code ec) {
          if (ec) return;
          {
            std::lock_guard<std::mutex> lock(mu_);
            holds_flood_due_ = false;
            if (stopped_) return;
            refresh_self_locked();
          }
          reroute_and_flood();
        });
      });
    }
    for (const auto& [p, l] : links_) links.push_back(l);
  }
  for (auto& l : links) l->feed_advanced();
}

void replicator::peer_confirmed(const std::string& peer, const protocol::peer::origin_vector& have) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& all = peer_have_[peer];
    for (const auto& [k, n] : have)
      if (n > all[k]) all[k] = n;
    auto own = have.find(ctx_.store.origin_key());
    if (own == have.end()) return;
    const std::uint64_t olsn = own->second;
    auto& c = confirmed_[peer];
    if (olsn <= c) return;
    c = olsn;
    auto& marks = confirm_marks_[peer];
    marks.push_back(confirm_mark{unix_ms(), olsn});
    if (marks.size() > 4096) marks.pop_front();
  }
  wake_watchers();
}

std::uint64_t replicator::behind_locked(const std::string& peer) const {
  auto p = peer_have_.find(peer);
  std::uint64_t behind = 0;
  for (const auto& [key, n] : ctx_.store.have()) {
    if (key.compare(0, peer.size() + 1, peer + "~") == 0) continue;  // its own batches
    std::uint64_t h = 0;
    if (p != peer_have_.end())
      if (auto it = p->second.find(key); it != p->second.end()) h = it->second;
    if (n > h) behind += n - h;
  }
  return behind;
}

bool replicator::had_confirmed(const std::string& peer, std::uint64_t olsn, std::int64_t at_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto m = confirm_marks_.find(peer);
  if (m == confirm_marks_.end()) return false;
  auto it = std::lower_bound(m->second.begin(), m->second.end(), olsn,
                             [](const confirm_mark& x, std::uint64_t o) { return x.olsn < o; });
  if (it == m->second.end()) return false;
  std::int64_t rtt_ms = 0;
  if (auto l = links_.find(peer); l != links_.end())
    rtt_ms = static_cast<std::int64_t>(l->second->stats().rtt_us.load() / 1000);
  return it->at_ms - rtt_ms <= at_ms;
}

std::uint64_t replicator::durable_in(std::uint64_t regions) const {
  if (regions <= 1) {
    auto have = ctx_.store.have();
    return have[ctx_.store.origin_key()];
  }
  // Per other node, the most it is known to hold of this node's batches:
  // confirmed over a link, or said in its flooded state (a node that is
  // not a neighbour).
  std::map<std::string, std::uint64_t> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [p, c] : confirmed_) held[p] = c;
    const std::string& own = ctx_.store.origin_key();
    for (const auto& [n, st] : nodes_)
      if (n != node_ && held_by(st, own) > 0) held[n] = std::max(held[n], held_by(st, own));
  }
  std::vector<std::uint64_t> v;
  for (const auto& [n, c] : held) v.push_back(c);
  if (v.size() < regions - 1) return 0;
  std::sort(v.begin(), v.end(), std::greater<>());
  return v[regions - 2];
}

void replicator::watch(std::weak_ptr<document_room> room) {
  std::lock_guard<std::mutex> lock(mu_);
  watchers_.push_back(std::move(room));
}

std::string replicator::metrics_text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  auto it = std::back_inserter(out);
  fmt::format_to(it,
                 "# HELP weft_replication_links_node 1 while this node carries its region's links.\n"
                 "# TYPE weft_replication_links_node gauge\nweft_replication_links_node {}\n",
                 leading_ ? 1 : 0);
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    fmt::format_to(it, "# HELP {0} {1}\n# TYPE {0} {2}\n", name, help, type);
    for (const auto& [p, rec] : peers_) {
      auto l = links_.find(p);
      fmt::format_to(it, "{}{{peer=\"{}\"}} {}\n", name, p,
                     value(p, rec, l == links_.end() ? nullptr : l->second.get()));
    }
  };
  using rec_t = const peer_record&;
  using link_t = const peer_link*;
  using peer_t = const std::string&;
  // A peer whose link is down lags by what it has not confirmed, for as long
  // as it has been down: a partition shows in the lag instead of reading 0.
  const auto now = std::chrono::steady_clock::now();
  std::map<std::string, std::uint64_t> behind;
  for (const auto& [p, rec] : peers_)
    if (!links_.count(p)) behind[p] = behind_locked(p);
  family("weft_replication_link_up", "gauge", "1 while the link to the peer is up.",
         [](peer_t, rec_t r, link_t) { return r.up ? 1 : 0; });
  family("weft_replication_lag_seconds", "gauge",
         "Age of the oldest batch the peer has not confirmed (0 when caught up); while the link is down, how long "
         "it has been down with batches waiting.",
         [&](peer_t p, rec_t r, link_t l) {
           if (l) return l->stats().lag_ms.load() / 1000.0;
           return behind[p] > 0 ? std::chrono::duration<double>(now - r.down_since).count() : 0.0;
         });
  family("weft_replication_lag_batches", "gauge", "Batches held here that the peer has not confirmed.",
         [&](peer_t p, rec_t, link_t l) { return l ? l->stats().lag_batches.load() : behind[p]; });
  family("weft_replication_rtt_seconds", "gauge", "Round-trip time of the link's last probe.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().rtt_us.load() / 1e6 : 0.0; });
  family("weft_replication_queue_frames", "gauge", "Frames waiting to be written on the link.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().queue.load() : 0; });
  family("weft_replication_queue_bytes", "gauge", "Bytes waiting to be written on the link.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().queue_bytes.load() : 0; });
  family("weft_replication_bytes_sent_total", "counter", "Bytes sent on the current link.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().bytes_sent.load() : 0; });
  family("weft_replication_bytes_received_total", "counter", "Bytes received on the current link.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().bytes_received.load() : 0; });
  family("weft_replication_batches_sent_total", "counter", "Batches sent on the current link.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().batches_sent.load() : 0; });
  family("weft_replication_batches_received_total", "counter", "Batches received on the current link.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().batches_received.load() : 0; });
  family("weft_replication_duplicates_total", "counter",
         "Batches received on the current link that this node held already (dropped).",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().duplicates.load() : 0; });
  family("weft_replication_errors_total", "counter", "Batches from the peer that could not be stored here.",
         [](peer_t, rec_t, link_t l) { return l ? l->stats().errors.load() : 0; });
  family("weft_replication_reconnects_total", "counter", "Times the link came back after being down.",
         [](peer_t, rec_t r, link_t) { return r.reconnects; });
  return out;
}

std::string replicator::cluster_json() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = "{\"node\":";
  protocol::append_json_string(out, node_);
  out += ",\"key\":";
  protocol::append_json_string(out, ctx_.store.origin_key());
  out += ",\"topology\":";
  protocol::append_json_string(out, ctx_.config.topology);
  out += ",\"hub\":";
  protocol::append_json_string(out, ctx_.config.hub);
  out += fmt::format(",\"links_node\":{},\"max_lag_s\":{},\"links\":[", leading_ ? "true" : "false",
                     ctx_.config.max_replication_lag_s);
  bool first = true;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [p, rec] : peers_) {
    if (!first) out += ',';
    first = false;
    auto l = links_.find(p);
    const peer_link* link = l == links_.end() ? nullptr : l->second.get();
    std::string url, direction = link ? (link->outbound() ? "out" : "in") : "";
    for (const auto& d : dialers_)
      if (d->node == p && !d->retired) url = d->url;
    out += "{\"peer\":";
    protocol::append_json_string(out, p);
    out += ",\"url\":";
    protocol::append_json_string(out, url);
    out += fmt::format(",\"state\":\"{}\",\"direction\":\"{}\"", rec.up ? "up" : "down", direction);
    if (link) {
      const auto& s = link->stats();
      out += fmt::format(
          ",\"last_contact_ms\":{},\"rtt_ms\":{:.3f},\"lag_s\":{:.3f},\"lag_batches\":{},\"queue\":{},"
          "\"queue_bytes\":{},\"bytes_sent\":{},\"bytes_received\":{},\"batches_sent\":{},\"batches_received\":{},\"duplicates\":{},"
          "\"errors\":{}",
          s.last_contact_ms.load(), s.rtt_us.load() / 1000.0, s.lag_ms.load() / 1000.0, s.lag_batches.load(),
          s.queue.load(), s.queue_bytes.load(), s.bytes_sent.load(), s.bytes_received.load(), s.batches_sent.load(),
          s.batches_received.load(), s.duplicates.load(), s.errors.load());
      out += ",\"receives\":[";
      auto subs = link->subscribed();
      for (std::size_t i = 0; i < subs.size(); ++i) {
        if (i) out += ',';
        protocol::append_json_string(out, subs[i]);
      }
      out += ']';
    } else {
      out += fmt::format(",\"down_s\":{:.1f},\"lag_batches\":{}",
                         std::chrono::duration<double>(now - rec.down_since).count(), behind_locked(p));
    }
    for (const auto& d : dialers_)
      if (d->node == p && !rec.up) {
        out += ",\"error\":";
        protocol::append_json_string(out, d->last_error);
      }
    out += fmt::format(",\"reconnects\":{}}}", rec.reconnects);
  }
  // Dialled peers never reached yet have no node id: listed by URL.
  for (const auto& d : dialers_) {
    if (!d->node.empty() || d->retired) continue;
    if (!first) out += ',';
    first = false;
    out += "{\"peer\":\"\",\"url\":";
    protocol::append_json_string(out, d->url);
    out += ",\"state\":";
    protocol::append_json_string(out, d->state);
    out += ",\"error\":";
    protocol::append_json_string(out, d->last_error);
    out += '}';
  }
  out += "],\"nodes\":[";
  first = true;
  for (const auto& [n, st] : nodes_) {
    if (!first) out += ',';
    first = false;
    out += "{\"node\":";
    protocol::append_json_string(out, n);
    out += fmt::format(",\"version\":{},\"links\":[", st.version);
    for (std::size_t i = 0; i < st.links.size(); ++i) {
      if (i) out += ',';
      out += "{\"node\":";
      protocol::append_json_string(out, st.links[i].node);
      out += fmt::format(",\"lag_ms\":{}}}", st.links[i].lag_ms);
    }
    out += "]}";
  }
  out += "],\"routes\":{";
  first = true;
  for (const auto& [origin, up] : upstream_) {
    if (!first) out += ',';
    first = false;
    protocol::append_json_string(out, origin);
    out += ':';
    protocol::append_json_string(out, up);
  }
  out += "}}";
  return out;
}

std::optional<std::string> replicator::degraded() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!leading_) return std::nullopt;  // another node of the region carries the links
  const double max = ctx_.config.max_replication_lag_s;
  const auto now = std::chrono::steady_clock::now();
  std::string why;
  for (const auto& [p, rec] : peers_) {
    auto l = links_.find(p);
    if (l != links_.end()) {
      double lag = l->second->stats().lag_ms.load() / 1000.0;
      if (lag > max) why += fmt::format("{}link to {}: lag {:.1f} s", why.empty() ? "" : "; ", p, lag);
    } else if (!rec.up) {
      double down = std::chrono::duration<double>(now - rec.down_since).count();
      if (down > max) why += fmt::format("{}link to {}: down for {:.0f} s", why.empty() ? "" : "; ", p, down);
    }
  }
  // Peers dialled and never reached since this node started.
  for (const auto& d : dialers_) {
    if (!d->node.empty() || d->state == "up" || d->retired) continue;
    double down = std::chrono::duration<double>(now - d->since).count();
    if (down > max)
      why += fmt::format("{}link to {}: never reached in {:.0f} s ({})", why.empty() ? "" : "; ", d->url, down,
                         d->last_error);
  }
  if (why.empty()) return std::nullopt;
  return why;
}

}  // namespace weft::server
