// The node's side of multi-region replication (docs/replication.md): dials
// the --peer nodes and keeps redialling them, keeps the links that are up
// (one per peer), floods the cluster's link state, routes each origin's
// batches over a shortest-path tree (routing.h) by subscribing at the right
// neighbour, and reports links for /metrics, /api/cluster and /healthz.
//
// Thread-safety: every public method may be called from any thread (one
// mutex; links are called outside it).
#pragma once

#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "protocol/peer_messages.h"
#include "server/routing.h"

namespace weft::server {

struct server_context;
class peer_link;
class document_room;

class replicator {
 public:
  explicit replicator(server_context& ctx);
  ~replicator();

  /// This node's id and origin key.
  const std::string& node() const noexcept { return node_; }
  const std::string& key() const noexcept;
  /// Starts dialling the configured peers and the periodic link-state refresh.
  void start();
  /// Stops dialling and closes every link (server shutdown).
  void stop();
  /// Whether this node carries its region's links (links_lease.h; true
  /// unless told otherwise). While not, it dials nobody, refuses /peer
  /// links and closes those it has, and /healthz does not judge links.
  void set_leading(bool leading);

  /// A link whose handshake is done. False: refused (a second link to the
  /// same peer, or the peer claims this node's id); the caller closes it with
  /// `why`.
  bool attach(const std::shared_ptr<peer_link>& link, std::string& why);
  /// A link ended (after attach, or not), for `why`.
  void detach(const peer_link* link, const std::string& why);
  /// The deny list changed: closes links whose peer token it now lists.
  void recheck_tokens();
  /// Merges link state heard from a peer; floods what is new.
  void merge_link_state(const peer_link* from, const protocol::peer::link_state& state);
  /// The feed of `keys` grew (called on the storage thread after a commit).
  void feed_advanced(const std::vector<std::string>& keys);
  /// A peer confirmed holding these batches (per origin key). Kept for the
  /// lag figures of a peer whose link is down; progress on this node's own
  /// key wakes the rooms with write-concern subscribers.
  void peer_confirmed(const std::string& peer, const protocol::peer::origin_vector& have);
  /// Whether peer node `peer` had confirmed holding this node's own batch
  /// `olsn` by `at_ms` (Unix ms: when the peer committed a batch of its own),
  /// as far as this node heard: the confirmation's arrival here, less a
  /// round trip, is at or before `at_ms`. False when it never confirmed it.
  /// Judges whether the peer's batch was concurrent with that one (clocks
  /// of the nodes assumed in sync to well within a round trip).
  bool had_confirmed(const std::string& peer, std::uint64_t olsn, std::int64_t at_ms) const;
  /// The highest olsn of this node's origin durable in at least `regions`
  /// regions (this one included), as far as peers confirmed it to this
  /// node directly. 0: none yet.
  std::uint64_t durable_in(std::uint64_t regions) const;
  /// Whether `node` may be forgotten now, and `url` (optional) stopped with
  /// it. Errors: invalid_argument for this node's own id, or a `url` that is
  /// no --peer URL dialled here or reached another node; invalid_operation
  /// while a link to `node` is up (it has not left).
  status can_forget(const std::string& node, const std::string& url = {}) const;
  /// Forgets `node`, a peer that left for good, while running (after storage
  /// dropped its checkpoints, storage::forget_peer): the dialler that reached
  /// it stops, and what is known of its progress goes. A --peer URL that has
  /// not reached it since this node started has no node id yet: name it as
  /// `url` to stop dialling it too. Nothing happens if a link to `node` came
  /// up meanwhile. Returns whether a dialler stopped.
  bool forget(const std::string& node, const std::string& url = {});
  /// `room` has write-concern subscribers: call its regions_advanced() when
  /// peers confirm more (until it is gone).
  void watch(std::weak_ptr<document_room> room);

  /// Prometheus lines for the links (weft_replication_*{peer="..."}).
  std::string metrics_text() const;
  /// GET /api/cluster: this node, its links, the cluster's link state, routes.
  std::string cluster_json() const;
  /// Set when a link lags past --max-replication-lag-s or a peer has been
  /// unreachable that long: which and how much.
  std::optional<std::string> degraded() const;

 private:
  struct dialer;
  void dial(const std::shared_ptr<dialer>& d);
  void schedule_redial(const std::shared_ptr<dialer>& d);
  /// Rebuilds this node's own entry (locked).
  void refresh_self_locked();
  /// Recomputes routes and pushes subscriptions and link state (unlocked).
  void reroute_and_flood(const peer_link* except = nullptr);
  protocol::peer::link_state state_locked() const;
  void schedule_refresh();

  server_context& ctx_;
  const std::string node_;
  const topology_kind kind_;
  mutable std::mutex mu_;
  bool stopped_ = false;  // guarded by mu_
  bool leading_ = true;   // guarded by mu_
  std::map<std::string, std::shared_ptr<peer_link>> links_;  // up links by peer node, guarded by mu_
  std::map<std::string, protocol::peer::node_state> nodes_;  // link state by node, guarded by mu_
  std::map<std::string, std::string> upstream_;              // origin node -> neighbour, guarded by mu_
  struct peer_record {
    std::chrono::steady_clock::time_point down_since{};  // epoch: up, or never seen
    bool up = false;
    std::uint64_t reconnects = 0;
    std::int64_t last_contact_ms = 0;
  };
  std::map<std::string, peer_record> peers_;  // by node, guarded by mu_
  // Fixed after start(); a dialler's fields are guarded by mu_.
  std::vector<std::shared_ptr<dialer>> dialers_;
  std::unique_ptr<boost::asio::steady_timer> refresh_timer_;
  // What this node's own state last said it holds of other nodes' keys, and
  // whether a flood of a change is already due (at most one per
  // holds_flood_every). Guarded by mu_; the timer lives on refresh_timer_'s strand.
  protocol::peer::origin_vector holds_flooded_;
  bool holds_flood_due_ = false;
  std::unique_ptr<boost::asio::steady_timer> holds_timer_;
  /// This node's holds of the current keys of the nodes it knows (locked).
  protocol::peer::origin_vector holds_locked() const;
  /// Wakes the rooms waiting for write concerns (unlocked).
  void wake_watchers();
  std::uint64_t self_version_ = 0;  // guarded by mu_
  std::map<std::string, std::uint64_t> confirmed_;       // peer -> own olsn it holds, guarded by mu_
  std::map<std::string, protocol::peer::origin_vector> peer_have_;  // peer -> all it confirmed, guarded by mu_
  // Per peer, when (Unix ms, here) it confirmed which olsn of this node's own
  // origin: ascending in both, the last 4096 advances. Guarded by mu_.
  struct confirm_mark {
    std::int64_t at_ms;
    std::uint64_t olsn;
  };
  std::map<std::string, std::deque<confirm_mark>> confirm_marks_;
  /// Batches held here that a down peer has not confirmed (locked).
  std::uint64_t behind_locked(const std::string& peer) const;
  std::vector<std::weak_ptr<document_room>> watchers_;   // guarded by mu_
};

}  // namespace weft::server
