// One hosted document: the server's replica of it, its subscribers, and its
// persistence. Every method posts onto the room's strand, so all ops of one
// document are applied in one order with no locks; different documents run
// in parallel on the I/O threads.
//
// Rooms are pinned by whoever holds them (registry.h): every entry point
// below runs on a room that is not unloaded, without a registry lookup.
//
// Flow of a client's ops: apply to the replica (the core buffers what is not
// yet causally ready) -> rebroadcast what was applied, in application order,
// encoded once -> append to storage (group commit) -> ack the author once the
// batch is durable.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <string>
#include <unordered_map>
#include <vector>

#include "server/bus.h"
#include "server/replica_owners.h"
#include "server/storage.h"
#include "server/subscriber.h"
#include "weft/document.h"

namespace weft::server {

struct server_context;

class document_room : public std::enable_shared_from_this<document_room>, public bus_listener {
 public:
  document_room(server_context& ctx, std::string id);
  ~document_room();

  const std::string& id() const noexcept { return id_; }
  /// The room's number in binary frames: unique among the rooms this server
  /// process ever held, so one encoded frame serves every recipient.
  std::uint64_t ref() const noexcept { return ref_; }

  /// Starts loading the document from storage. Called once by the registry.
  void start();
  /// Subscribes `s`, sends it the ops it lacks given `client_version`, the
  /// server's version (so it can send what the server lacks) and current
  /// presence; from then on it receives live ops.
  /// With `regions` >= 2 (a write concern), `s` also gets "replicated"
  /// messages once its ops are durable in that many regions.
  /// With `snapshot`, an empty client version and binary frames on, the
  /// document comes as one snapshot frame before the sync, instead of ops.
  void join(std::shared_ptr<subscriber> s, version_vector client_version, std::uint64_t regions = 0,
            bool snapshot = false);
  /// The replicator's word that peers confirmed more of this node's feed:
  /// tells write-concern subscribers what is now durable in enough regions.
  void regions_advanced();
  /// Applies ops sent by `s` and rebroadcasts them; acks `s` when durable.
  /// With `regions` >= 2 (a write concern for these ops alone), `s` also
  /// gets a "replicated" message once they are durable in that many regions.
  void submit(std::shared_ptr<subscriber> s, std::vector<operation> ops, std::uint64_t regions = 0);
  /// Applies a batch replicated from a peer node (origin tagged): rebroadcasts
  /// what is new to every subscriber here, stores the whole batch with its
  /// origin, and calls `done` (on the storage thread) once it is durable or
  /// could not be stored. Ops already known count as duplicates.
  /// `owners`: the replica ownership claims made with the batch (peers are
  /// trusted relays; encode_claims text, may be empty).
  void replicate(batch_origin origin, std::string batch, std::function<void(status)> done, std::string owners = {});
  /// Calls `cb` with the document's version (on the room's strand; empty
  /// when the room is broken).
  void read_version(std::function<void(version_vector)> cb);
  /// What read_ops_since() answers.
  struct ops_since_answer {
    std::vector<operation> ops;
    std::string owners;  ///< every owner claim known for the replicas of `ops` (encode_claims text)
  };
  /// Calls `cb` with every op a replica at `peer` lacks and the owner claims
  /// of their replicas (on the room's strand), or an error when the room is
  /// broken.
  void read_ops_since(version_vector peer, std::function<void(result<ops_since_answer>)> cb);
  /// Relays presence ("null" clears it).
  void presence(std::shared_ptr<subscriber> s, std::string state_json);
  /// Unsubscribes (and clears presence of) session `session_id`.
  void leave(std::uint64_t session_id);
  /// Calls `cb` with the current text (on the room's strand).
  void read_text(std::function<void(result<std::string>)> cb);
  /// True once the room could not load or store its document: it refuses
  /// everything from then on, and the registry gives new openers a fresh room
  /// (which loads again, so storage that works again is used). Thread-safe.
  bool broken() const noexcept { return broken_flag_.load(std::memory_order_acquire); }
  /// The registry's word that nobody pins the room any more: it unloads
  /// once it has had no subscribers for --idle-unload-ms.
  void unpinned();
  /// A batch another node of the region committed (bus.h): applied and
  /// rebroadcast here, never stored again (it is durable already).
  void bus_batch(std::string batch, std::string owners) override;
  /// Stream entries were missed: merge what storage holds that this room
  /// lacks, and rebroadcast it.
  void bus_resync() override;
  /// The storage's word that the database is unreachable (an error) or back
  /// (ok): subscribers are told that their edits wait for it.
  void storage_availability(status st);

 private:
  enum class state { loading, ready, broken, closed };
  /// Posts `f` to the strand; it runs under contained().
  template <class F>
  void on_strand(F&& f);
  /// Runs `f`; an exception escaping it is counted (internal errors) and
  /// logged, never propagated to the I/O thread.
  template <class F>
  void contained(F& f) noexcept;
  void when_ready(std::function<void()> f);
  void load();
  void loaded(result<struct stored_document> r);
  /// Applies what `d` holds that the document lacks (a resync); rebroadcasts it.
  void merge_stored(stored_document d);
  void apply_bus_batch(const std::string& batch, const std::string& owners);
  /// Records claims committed elsewhere; the first owner of a replica stays.
  /// `stored`: storage here holds them already (or will, with the batch that
  /// brought them). False: they go into the commit of this node's next batch
  /// with ops of those replicas (a per-document exchange, stored as own batch).
  void adopt_claims(const owner_claims& claims, bool stored = true);
  void adopt_claims(const std::string& encoded);
  /// The claims for replicas of `ops` that storage does not hold yet, encoded
  /// (they go into the same commit as the batch); marks them stored. With
  /// `all`, every known claim for those replicas (storing one twice is
  /// harmless; a failed commit may have lost some marked stored).
  std::string claims_to_store(const std::vector<operation>& ops, bool all = false);
  /// Every known claim for the replicas of `ops`, encoded; marks nothing.
  std::string claims_of(const std::vector<operation>& ops) const;
  /// With ownership enforced for `who`, drops from `ops` those under replica
  /// ids `who` does not own (claiming fresh ones for it), telling `s` which.
  void enforce_ownership(const std::shared_ptr<subscriber>& s, const std::string& who, std::vector<operation>& ops);
  /// Applies ops already committed elsewhere (not stored again), collecting
  /// what was new in `applied`; they count as durable.
  void apply_durable(const std::vector<operation>& ops, std::vector<operation>& applied);
  /// Rebroadcasts what apply_durable() applied and sends the acks it earned.
  void deliver(const std::vector<operation>& applied);
  /// Hands an own batch to storage; once durable it is acknowledged and
  /// published on the bus. `done` (optional) runs on the storage thread.
  /// `owners`: the claims to store with it (encode_claims text); nullopt
  /// means those of `applied` that storage does not hold yet.
  void append_own(std::vector<operation>& applied, std::function<void(status)> done = nullptr,
                  std::optional<std::string> owners = std::nullopt);
  void do_join(std::shared_ptr<subscriber> s, version_vector client_version, std::uint64_t regions, bool snapshot);
  /// The document as a binary snapshot frame, encoded once per version (a
  /// popular document opened by many fresh pages is encoded once); null when
  /// it is over --max-snapshot-frame-bytes.
  std::shared_ptr<const std::string> snapshot_frame();
  /// Ops were applied: counts them towards the next snapshot to store and
  /// drops the cached snapshot frame.
  void note_applied(std::size_t ops);
  /// An own batch committed as `olsn`, the document then at `v`.
  void own_batch_durable(std::uint64_t olsn, const version_vector& v);
  void send_replicated();
  void do_submit(std::shared_ptr<subscriber> s, std::vector<operation> ops, std::uint64_t regions);
  /// Registers with the replicator for regions_advanced() (write concerns).
  void watch_regions();
  /// Refuses everything from now on, saying `reason`.
  void set_broken(std::string reason);
  /// Calls f(subscriber) for each live subscriber but `except` (forgetting gone ones).
  template <class F>
  void for_each_subscriber(std::uint64_t except, F&& f);
  void broadcast(const std::shared_ptr<const std::string>& msg, std::uint64_t except);
  /// Sends ops to every subscriber but `except`, each in its format, each
  /// format encoded at most once.
  void broadcast_ops(const std::vector<operation>& ops, std::uint64_t except);
  /// Ops or an ack for one subscriber, in its format.
  void send_ops_to(const std::shared_ptr<subscriber>& s, const std::vector<operation>& ops);
  void send_ack_to(const std::shared_ptr<subscriber>& s, const version_vector& ack);
  void send_to(const std::shared_ptr<subscriber>& s, std::string msg);
  void do_replicate(batch_origin origin, std::string batch, std::function<void(status)> done,
                    const std::string& owners);
  void durable(status st, version_vector applied_version);
  /// A commit of this room failed: from now on ops are applied and
  /// broadcast but neither stored nor acknowledged, and a timer retries
  /// storing everything not durable (docs/reliability.md).
  void commit_failed(const status& st);
  void schedule_commit_retry();
  /// Stores every applied op that is not durable as one batch.
  void retry_commit();
  /// The answer to retry_commit(): back to normal on success, else retry later.
  void commit_retried(status st, version_vector v, std::uint64_t olsn);
  /// Sends each waiting author the acks its ops have earned.
  void send_acks();
  void maybe_snapshot(bool force);
  void schedule_unload();
  void schedule_presence_expiry();
  void update_pending_metric();

  server_context& ctx_;
  const std::string id_;
  const std::uint64_t ref_;
  std::shared_ptr<const std::string> snapshot_frame_;  // see snapshot_frame()
  version_vector snapshot_frame_version_;
  bool snapshot_over_cap_ = false;  // the frame exceeded --max-snapshot-frame-bytes once: no more tries
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer unload_timer_;
  boost::asio::steady_timer presence_timer_;
  boost::asio::steady_timer retry_timer_;
  // Everything below is touched only on strand_.
  state state_ = state::loading;
  std::string broken_reason_;
  std::atomic<bool> broken_flag_{false};  // state_ == broken, readable from any thread
  document doc_;
  std::vector<std::function<void()>> waiting_;  // actions queued while loading
  std::map<std::uint64_t, std::weak_ptr<subscriber>> subscribers_;
  struct presence_entry {
    std::string state;
    std::chrono::steady_clock::time_point updated;
  };
  std::map<std::uint64_t, presence_entry> presence_;
  bool presence_timer_running_ = false;
  std::size_t ops_since_snapshot_ = 0;
  version_vector durable_;               // what storage has committed
  // Authors waiting for acks: what they sent (highest counter per replica)
  // and what they were last told. Ops buffered by the causal buffer become
  // durable with someone else's batch, so acks are driven by durable_.
  struct ack_waiter {
    std::weak_ptr<subscriber> who;
    version_vector wanted;
    version_vector told;
  };
  std::map<std::uint64_t, ack_waiter> ack_waiters_;  // until the connection leaves
  bool acks_scheduled_ = false;  // a send_acks() is posted
  std::int64_t pending_reported_ = 0;    // our share of metrics::pending_ops
  // Per connection, ops it sent that went into the causal buffer (an upper
  // bound: cleared when the buffer empties).
  std::map<std::uint64_t, std::size_t> parked_by_;
  // Write concern: subscribers that asked for "replicated", by (session,
  // regions), and this node's own batches (olsn, version after it) not yet
  // known to be durable in the regions every such subscriber wants. A watch
  // from open lasts while the document is open; one from a write
  // (`persistent` false) ends once `until`, the ids of the writes that asked
  // for it, was reported.
  struct region_watch {
    std::weak_ptr<subscriber> who;
    std::uint64_t regions = 0;
    version_vector told;
    bool persistent = false;
    version_vector until;
  };
  // Key: (session, regions, persistent): a write's concern never shares an
  // entry with the open's, so a re-open cannot drop it.
  std::map<std::tuple<std::uint64_t, std::uint64_t, bool>, region_watch> region_watch_;
  /// Drops the watches of session `sid` (only those from open: `persistent_only`).
  void forget_region_watches(std::uint64_t sid, bool persistent_only);
  std::deque<std::pair<std::uint64_t, version_vector>> own_batches_;
  bool watching_ = false;  // registered with the replicator
  bool storage_down_ = false;  // the database is unreachable (storage_availability)
  // A commit failed (commit_failed()): nothing is stored or acknowledged
  // until retry_commit() has stored every op applied since durable_.
  bool commit_failed_ = false;
  bool retry_in_flight_ = false;
  std::string failure_reason_;
  std::chrono::milliseconds retry_delay_{0};
  std::size_t unstored_ops_ = 0;  // applied since the failure (bounded: max_unstored_ops)
  // Replica ownership (replica_owners.h): who may introduce ops under each
  // replica id; `stored` once storage holds the claim (or it came from there).
  struct owner_entry {
    std::string owner;
    bool stored = false;
  };
  std::unordered_map<replica_id, owner_entry> owners_;
};

}  // namespace weft::server
