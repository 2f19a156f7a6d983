#include "server/room.h"

#include <boost/asio/post.hpp>

#include <algorithm>
#include <atomic>

#include "weft/protocol.h"
#include "server/context.h"
#include "server/log.h"
#include "server/op_versions.h"
#include "weft/encoding.h"

namespace weft::server {

namespace net = boost::asio;
using protocol::error_kind;

namespace {
document_options room_options(const server_config& c) {
  document_options o;
  o.max_pending_ops = c.max_pending_ops;
  return o;
}
// The server never edits locally, so its replica id never appears in ops.
constexpr replica_id server_replica = 0;
}  // namespace

namespace {
std::atomic<std::uint64_t> g_next_room_ref{1};
// While a room cannot store, its applied ops live only in memory (and in
// their authors' replicas): past this many, new ops are refused.
constexpr std::size_t max_unstored_ops = 100000;
constexpr std::chrono::milliseconds first_commit_retry{250};
constexpr std::chrono::milliseconds last_commit_retry{10000};
}  // namespace

document_room::document_room(server_context& ctx, std::string id)
    : ctx_(ctx),
      id_(std::move(id)),
      ref_(g_next_room_ref++),
      strand_(net::make_strand(ctx.io_for_document(id_))),
      unload_timer_(strand_),
      presence_timer_(strand_),
      retry_timer_(strand_),
      doc_(server_replica, room_options(ctx.config)) {
  ++ctx_.stats.documents_loaded;
}

document_room::~document_room() {
  --ctx_.stats.documents_loaded;
  ctx_.stats.pending_ops -= pending_reported_;
}

template <class F>
void document_room::contained(F& f) noexcept {
  // An exception here would end the I/O thread and with it the server: a
  // bug in one document's handling is logged and counted instead. Every
  // piece of strand work (posted, queued while loading, timers) runs here.
  try {
    f();
  } catch (const std::exception& e) {
    ++ctx_.stats.internal_errors;
    log(log_level::error, "document {}: internal error: {}", id_, e.what());
  } catch (...) {
    ++ctx_.stats.internal_errors;
    log(log_level::error, "document {}: internal error: unknown exception", id_);
  }
}

template <class F>
void document_room::on_strand(F&& f) {
  net::post(strand_, [self = shared_from_this(), f = std::forward<F>(f)]() mutable { self->contained(f); });
}

void document_room::start() {
  // With a bus, the stream position is fixed before the load: whatever
  // commits after the load began arrives on the stream.
  if (ctx_.region_bus)
    ctx_.region_bus->subscribe(id_, weak_from_this(), [self = shared_from_this()] { self->load(); });
  else
    load();
}

void document_room::load() {
  ctx_.store.load(id_, [self = shared_from_this()](result<stored_document> r) {
    self->on_strand([self, r = std::move(r)]() mutable { self->loaded(std::move(r)); });
  });
}

void document_room::loaded(result<stored_document> r) {
  if (!r.ok()) {
    set_broken("cannot read the document from storage: " + r.error().to_string());
  } else {
    stored_document& d = r.value();
    if (!d.snapshot.empty()) {
      auto snap = document::decode_snapshot(d.snapshot, server_replica, room_options(ctx_.config));
      if (!snap.ok()) {
        set_broken("stored snapshot is corrupt: " + snap.error().to_string());
        ctx_.stats.count(metrics::storage_error::corrupt);
      } else {
        doc_ = std::move(snap.value());
      }
    }
    for (const auto& [seq, bytes] : d.batches) {
      if (state_ == state::broken) break;
      auto ops = decode_ops(bytes);
      if (!ops.ok()) {
        set_broken("stored op batch " + std::to_string(seq) + " is corrupt: " + ops.error().to_string());
        ctx_.stats.count(metrics::storage_error::corrupt);
        break;
      }
      for (const auto& op : ops.value()) {
        auto a = doc_.apply(op);
        if (!a.ok() && a.code() == error_code::id_conflict) {
          // Two nodes of a region stored one forged id with different
          // contents: the first applied stays; the document stays usable.
          ++ctx_.stats.id_conflicts;
          log(log_level::warn, "document {}: stored op skipped: {}", id_, a.error().to_string());
        } else if (!a.ok()) {
          set_broken("stored op does not apply: " + a.error().to_string());
          break;
        }
      }
      note_applied(ops.value().size());
    }
    if (state_ != state::broken) state_ = state::ready;
    adopt_claims(d.owners);
  }
  if (state_ == state::broken)
    log(log_level::error, "document {}: {}", id_, broken_reason_);
  else
    log(log_level::debug, "document {} loaded: {} characters, {} batches after snapshot", id_, doc_.length(),
           r.ok() ? r.value().batches.size() : 0);
  durable_ = doc_.version();
  update_pending_metric();
  auto w = std::move(waiting_);
  waiting_.clear();
  for (auto& f : w) contained(f);  // one failing action does not cancel the others
  if (subscribers_.empty()) schedule_unload();
}

void document_room::when_ready(std::function<void()> f) {
  if (state_ == state::loading)
    waiting_.push_back(std::move(f));
  else
    f();
}

void document_room::send_to(const std::shared_ptr<subscriber>& s, std::string msg) {
  s->send(std::make_shared<const std::string>(std::move(msg)));
}

void document_room::set_broken(std::string reason) {
  state_ = state::broken;
  broken_reason_ = std::move(reason);
  broken_flag_ = true;
}

template <class F>
void document_room::for_each_subscriber(std::uint64_t except, F&& f) {
  for (auto it = subscribers_.begin(); it != subscribers_.end();) {
    auto s = it->second.lock();
    if (!s) {
      it = subscribers_.erase(it);
      continue;
    }
    if (it->first != except) f(s);
    ++it;
  }
}

void document_room::broadcast(const std::shared_ptr<const std::string>& msg, std::uint64_t except) {
  for_each_subscriber(except, [&](const std::shared_ptr<subscriber>& s) { s->send(msg); });
}

void document_room::broadcast_ops(const std::vector<operation>& ops, std::uint64_t except) {
  std::shared_ptr<const std::string> json, binary;  // each format encoded at most once
  for_each_subscriber(except, [&](const std::shared_ptr<subscriber>& s) {
    auto& frame = s->binary() ? binary : json;
    if (!frame)
      frame = std::make_shared<const std::string>(s->binary() ? protocol::encode_binary_ops(ref_, ops)
                                                              : protocol::encode_ops(id_, ops));
    s->send(frame);
  });
}

void document_room::send_ops_to(const std::shared_ptr<subscriber>& s, const std::vector<operation>& ops) {
  send_to(s, s->binary() ? protocol::encode_binary_ops(ref_, ops) : protocol::encode_ops(id_, ops));
}

void document_room::send_ack_to(const std::shared_ptr<subscriber>& s, const version_vector& ack) {
  send_to(s, s->binary() ? protocol::encode_binary_ack(ref_, ack) : protocol::encode_ack(id_, ack));
}

void document_room::join(std::shared_ptr<subscriber> s, version_vector client_version, std::uint64_t regions,
                         bool snapshot) {
  on_strand([this, s = std::move(s), v = std::move(client_version), regions, snapshot]() mutable {
    when_ready([this, s = std::move(s), v = std::move(v), regions, snapshot]() mutable {
      do_join(std::move(s), std::move(v), regions, snapshot);
    });
  });
}

void document_room::note_applied(std::size_t ops) {
  ops_since_snapshot_ += ops;
  snapshot_frame_.reset();  // stale now: not kept in memory until the next fresh open
}

std::shared_ptr<const std::string> document_room::snapshot_frame() {
  const std::uint64_t cap = ctx_.config.max_snapshot_frame_bytes;
  if (cap == 0 || snapshot_over_cap_) return nullptr;
  if (!snapshot_frame_ || !(snapshot_frame_version_ == doc_.version())) {
    auto frame = std::make_shared<const std::string>(protocol::encode_binary_snapshot(ref_, id_, doc_.encode_snapshot()));
    if (frame->size() > cap) {
      // The history in a snapshot only grows: never encode this one again.
      snapshot_over_cap_ = true;
      snapshot_frame_.reset();
      return nullptr;
    }
    snapshot_frame_ = std::move(frame);
    snapshot_frame_version_ = doc_.version();
  }
  return snapshot_frame_;
}

void document_room::do_join(std::shared_ptr<subscriber> s, version_vector client_version, std::uint64_t regions,
                            bool snapshot) {
  if (state_ == state::broken) {
    send_to(s, protocol::encode_error(error_kind::storage, broken_reason_, id_));
    return;
  }
  // A re-open replaces the document-wide concern it asked for before.
  forget_region_watches(s->session_id(), true);
  if (regions >= 2) {
    auto& w = region_watch_[{s->session_id(), regions, true}];
    w.who = s;
    w.regions = regions;
    w.persistent = true;
    watch_regions();
  }
  unload_timer_.cancel();
  subscribers_[s->session_id()] = s;
  const std::size_t budget = std::max<std::size_t>(4096, ctx_.config.max_message_bytes / 2);
  std::shared_ptr<const std::string> snap;  // null: too large for a client to read, so ops
  if (snapshot && s->binary() && client_version.empty() && !doc_.version().empty()) snap = snapshot_frame();
  if (snap) {
    // A fresh replica that asked for it gets the whole document as one
    // snapshot, then a sync with no ops: loading a snapshot is far cheaper
    // for it than applying the history op by op, and smaller on the wire.
    s->send(std::move(snap));
    for (auto& m : protocol::encode_sync_chunked(id_, {}, doc_.version(), budget, ref_)) send_to(s, std::move(m));
  } else {
    // History can be far larger than a message may be: send it in chunks.
    for (auto& m : protocol::encode_sync_chunked(id_, doc_.ops_since(client_version), doc_.version(), budget,
                                                s->binary() ? ref_ : 0))
      send_to(s, std::move(m));
  }
  for (const auto& [sid, p] : presence_)
    if (sid != s->session_id()) send_to(s, protocol::encode_peer_presence(id_, sid, p.state));
  if (commit_failed_) send_to(s, protocol::encode_error(error_kind::storage, failure_reason_, id_));
}

void document_room::watch_regions() {
  if (!watching_ && ctx_.replication) {
    watching_ = true;
    ctx_.replication->watch(weak_from_this());
  }
}

void document_room::forget_region_watches(std::uint64_t sid, bool persistent_only) {
  for (auto it = region_watch_.lower_bound({sid, 0, false}); it != region_watch_.end() && std::get<0>(it->first) == sid;)
    it = !persistent_only || it->second.persistent ? region_watch_.erase(it) : std::next(it);
}

void document_room::submit(std::shared_ptr<subscriber> s, std::vector<operation> ops, std::uint64_t regions) {
  on_strand([this, s = std::move(s), ops = std::move(ops), regions]() mutable {
    when_ready([this, s = std::move(s), ops = std::move(ops), regions]() mutable {
      do_submit(std::move(s), std::move(ops), regions);
    });
  });
}

void document_room::do_submit(std::shared_ptr<subscriber> s, std::vector<operation> ops, std::uint64_t regions) {
  if (state_ == state::broken) {
    send_to(s, protocol::encode_error(error_kind::storage, broken_reason_, id_));
    return;
  }
  // One connection may not fill the document's causal buffer for everyone:
  // past its share, its ops are refused until the buffer drains.
  auto parked = parked_by_.find(s->session_id());  // find: no map node per keystroke
  if (parked != parked_by_.end() && parked->second >= ctx_.config.max_pending_per_connection) {
    send_to(s, protocol::encode_error(
                   error_kind::limit,
                   std::to_string(parked->second) + " of your ops are waiting for operations that never arrived; "
                   "these ops were refused. Reopen the document to resync",
                   id_));
    return;
  }
  if (commit_failed_ && unstored_ops_ >= max_unstored_ops) {
    send_to(s, protocol::encode_error(error_kind::storage,
                                      std::to_string(unstored_ops_) + " ops wait to be stored; these ops were refused: " +
                                          failure_reason_,
                                      id_));
    return;
  }
  if (const std::string* who = s->identity()) {
    enforce_ownership(s, *who, ops);
    if (ops.empty()) return;
  }
  const std::size_t pending_before = doc_.pending_ops();
  std::vector<operation> applied;
  std::vector<replica_id> author_replicas;
  ack_waiter& waiter = ack_waiters_[s->session_id()];
  waiter.who = s;
  version_vector accepted;  // the ids of ops taken (for a write concern)
  for (const operation& op : ops) {
    if (std::find(author_replicas.begin(), author_replicas.end(), op.id.replica) == author_replicas.end())
      author_replicas.push_back(op.id.replica);
    auto r = doc_.apply(op, nullptr, &applied);
    if (!r.ok()) {
      error_kind k = r.code() == error_code::pending_buffer_full ? error_kind::limit : error_kind::invalid_op;
      if (r.code() == error_code::id_conflict) {
        ++ctx_.stats.id_conflicts;
        log(log_level::warn, "document {}: session {}: {}", id_, s->session_id(), r.error().to_string());
      }
      send_to(s, protocol::encode_error(k, r.error().to_string(), id_));
      continue;  // a refused op earns no ack: nobody waits for one
    }
    cover_op(waiter.wanted, op);
    if (regions >= 2) cover_op(accepted, op);
  }
  if (regions >= 2 && !accepted.entries().empty() && ctx_.replication) {
    // Registered before the commit, so the batch is among own_batches_.
    auto& w = region_watch_[{s->session_id(), regions, false}];
    w.who = s;
    w.regions = regions;
    w.until.merge(accepted);
    watch_regions();
  }
  update_pending_metric();
  if (doc_.pending_ops() == 0)
    parked_by_.clear();
  else if (doc_.pending_ops() > pending_before)
    parked_by_[s->session_id()] += doc_.pending_ops() - pending_before;
  if (applied.empty()) {
    // Only duplicates or buffered ops: acknowledge what of them is already
    // durable, unless this connection was told so before (buffered ops are
    // acknowledged once a later batch makes them durable).
    send_acks();
    // A write concern for ops stored before (a resend after a reconnect)
    // may be met already.
    if (regions >= 2) send_replicated();
    return;
  }
  ctx_.stats.ops_applied += applied.size();
  // Rebroadcast in application order (a causal order) before durability: a
  // crash before the commit loses nothing acknowledged, and clients give the
  // server back anything it lacks when they resync (docs/protocol.md).
  broadcast_ops(applied, s->session_id());
  std::vector<operation> unblocked;
  for (const auto& op : applied)
    if (std::find(author_replicas.begin(), author_replicas.end(), op.id.replica) == author_replicas.end())
      unblocked.push_back(op);
  if (!unblocked.empty()) send_ops_to(s, unblocked);

  note_applied(applied.size());
  if (commit_failed_) {
    // Kept in memory and broadcast, stored by retry_commit(): the author
    // hears why no ack comes.
    unstored_ops_ += applied.size();
    send_to(s, protocol::encode_error(error_kind::storage, failure_reason_, id_));
    return;
  }
  append_own(applied);
  maybe_snapshot(false);
}

void document_room::append_own(std::vector<operation>& applied, std::function<void(status)> done,
                               std::optional<std::string> claims) {
  std::string batch = encode_ops(applied);
  std::string owners = claims ? std::move(*claims) : claims_to_store(applied);
  std::string published = ctx_.region_bus ? batch : std::string();
  std::string published_owners = ctx_.region_bus ? owners : std::string();
  ctx_.store.append(id_, std::move(batch),
                    [self = shared_from_this(), v = doc_.version(), published = std::move(published),
                     published_owners = std::move(published_owners),
                     done = std::move(done)](status st, std::uint64_t olsn) mutable {
                      // Only durable batches go on the bus: any node may then
                      // acknowledge what it relays.
                      if (st.ok() && self->ctx_.region_bus)
                        self->ctx_.region_bus->publish(self->id_, std::move(published), std::move(published_owners));
                      if (done) done(st);
                      self->on_strand([self, st = std::move(st), v = std::move(v), olsn]() mutable {
                        if (st.ok()) self->own_batch_durable(olsn, v);
                        self->durable(std::move(st), std::move(v));
                      });
                    },
                    std::move(owners));
}

void document_room::replicate(batch_origin origin, std::string batch, std::function<void(status)> done,
                              std::string owners) {
  on_strand([this, origin = std::move(origin), batch = std::move(batch), done = std::move(done),
             owners = std::move(owners)]() mutable {
    when_ready([this, origin = std::move(origin), batch = std::move(batch), done = std::move(done),
                owners = std::move(owners)]() mutable {
      do_replicate(std::move(origin), std::move(batch), std::move(done), owners);
    });
  });
}

void document_room::do_replicate(batch_origin origin, std::string batch, std::function<void(status)> done,
                                 const std::string& owners) {
  if (state_ == state::broken) {
    done(status(error_code::invalid_argument, "document " + id_ + " is unavailable here: " + broken_reason_));
    return;
  }
  if (commit_failed_) {
    // Not applied: the link keeps its checkpoint and sends the batch again.
    done(status(error_code::invalid_argument, "document " + id_ + " cannot store here yet: " + failure_reason_));
    return;
  }
  auto ops = decode_ops(batch);
  if (!ops.ok()) {
    // A peer stores what it sends: bytes that do not decode are a bug or an
    // attack on the link, never data to keep.
    done(status(error_code::corrupt_data, "replicated batch does not decode: " + ops.error().to_string()));
    return;
  }
  // Claims that do not decode are refused before anything is applied: the
  // peer stores what it sends, so that is a bug or an attack on the link.
  owner_claims claims;
  if (!owners.empty()) {
    auto c = decode_claims(owners);
    if (!c.ok()) {
      done(c.error());
      return;
    }
    claims = std::move(c.value());
  }
  // A feed entry's claims are stored with it (append_replicated); an answer
  // to a per-document exchange becomes this node's own batch, whose commit
  // stores the claims not held here yet.
  adopt_claims(claims, origin.olsn != 0);
  std::vector<operation> applied;
  std::size_t duplicates = 0;
  status refused;
  for (const operation& op : ops.value()) {
    auto r = doc_.apply(op, nullptr, &applied);
    if (!r.ok() && r.code() == error_code::id_conflict) {
      // Stored as it came (it is the origin's history) but never applied:
      // holding the batch back would stop the link for good.
      ++ctx_.stats.id_conflicts;
      log(log_level::warn, "document {}: replicated batch {} of {}: {}", id_, origin.olsn, origin.key,
          r.error().to_string());
    } else if (!r.ok()) {
      if (refused.ok()) refused = r.error();
    } else if (r.value().result == apply_outcome::state::duplicate) {
      ++duplicates;
    }
  }
  ctx_.stats.replicated_ops_applied += applied.size();
  ctx_.stats.replicated_duplicate_ops += duplicates;
  // The conflict rate: ops made in another region concurrently with this
  // node's latest edit of the document (since it was loaded here), i.e. their
  // origin had not confirmed holding that edit when it committed them.
  // Judged for batches straight from their origin (its confirmations are the
  // ones this node hears): in a ring or a star, the neighbours' edits.
  if (!applied.empty() && origin.olsn != 0 && !own_batches_.empty() && ctx_.replication &&
      origin.path == origin.key &&
      !ctx_.replication->had_confirmed(node_of(origin.key), own_batches_.back().first, origin.ts_ms))
    ctx_.stats.concurrent_ops_merged += applied.size();
  update_pending_metric();
  if (!applied.empty()) {
    ctx_.stats.ops_applied += applied.size();
    broadcast_ops(applied, 0);
  }
  if (!refused.ok()) {
    // Not stored, so the checkpoint stays before it and the batch comes
    // again (a full causal buffer drains; what did apply is then a
    // duplicate). Storing part of it would lose the rest for good.
    log(log_level::warn, "document {}: replicated batch {} of {} refused: {}", id_, origin.olsn, origin.key,
        refused.to_string());
    done(refused);
    return;
  }
  note_applied(applied.size());
  if (origin.olsn == 0) {
    // An answer to a per-document exchange (after a gap in a feed), not a
    // feed entry: what was new here becomes this node's own batch, and
    // travels on from here like any other. Its claims are stored with it,
    // those of replicas whose ops were all held here already included: they
    // may have come by a way that carried no claims, and a claim kept only
    // in memory would be gone after an unload, leaving the replica ownerless
    // here (so its owner refused). With nothing new but such claims, the
    // batch is empty and carries only them.
    std::string unstored = claims_to_store(ops.value());
    if (applied.empty() && unstored.empty()) {
      done(status{});
      return;
    }
    append_own(applied, std::move(done), std::move(unstored));
    maybe_snapshot(false);
    return;
  }
  // The whole batch is stored, buffered ops included: the origin's sequence
  // number advances with it, so nothing would bring them again.
  std::string published = ctx_.region_bus ? batch : std::string();
  std::string published_owners = ctx_.region_bus ? owners : std::string();
  ctx_.store.append_replicated(
      id_, std::move(origin), std::move(batch),
      [self = shared_from_this(), v = doc_.version(), done = std::move(done), published = std::move(published),
       published_owners = std::move(published_owners)](status st) mutable {
        if (st.ok() && self->ctx_.region_bus)
          self->ctx_.region_bus->publish(self->id_, std::move(published), std::move(published_owners));
        // A refusal of this batch alone (same key, other bytes) says nothing
        // about the storage: only a failed commit stops the document.
        if (st.ok() || st.code() != error_code::invalid_operation)
          self->on_strand([self, st, v = std::move(v)]() mutable { self->durable(std::move(st), std::move(v)); });
        done(st);
      },
      owners);
  maybe_snapshot(false);
}

void document_room::durable(status st, version_vector applied_version) {
  if (!st.ok()) {
    commit_failed(st);
    return;
  }
  // After a failure nothing is acknowledged on a later batch's word: its
  // version may cover ops of the failed one. retry_commit() resumes acks.
  if (state_ == state::broken || commit_failed_) return;
  durable_.merge(applied_version);
  // One group commit may hold several of this room's batches, each reported
  // on its own: acknowledge once for all of them.
  if (acks_scheduled_) return;
  acks_scheduled_ = true;
  on_strand([this] {
    acks_scheduled_ = false;
    send_acks();
  });
}

void document_room::commit_failed(const status& st) {
  if (state_ == state::broken || state_ == state::closed) return;
  if (commit_failed_) return;  // the retry is already scheduled
  // Nothing after a failed commit may be acknowledged: it could be missing
  // from disk. Clients keep their unacknowledged ops; the room keeps serving
  // and broadcasting, and stores everything since durable_ once it can.
  log(log_level::error, "document {}: commit failed: {}; retrying until storage works again", id_, st.to_string());
  commit_failed_ = true;
  failure_reason_ = "the server could not store edits (" + st.to_string() +
                    "); they are kept and acknowledged once storage works again";
  unstored_ops_ = doc_.ops_since(durable_).size();
  retry_delay_ = first_commit_retry;
  broadcast(std::make_shared<const std::string>(protocol::encode_error(error_kind::storage, failure_reason_, id_)), 0);
  schedule_commit_retry();
}

void document_room::schedule_commit_retry() {
  retry_timer_.expires_after(retry_delay_);
  retry_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec) return;
    auto retry = [&] { self->retry_commit(); };
    self->contained(retry);
  });
}

void document_room::retry_commit() {
  if (!commit_failed_ || retry_in_flight_ || state_ == state::broken || state_ == state::closed) return;
  auto ops = doc_.ops_since(durable_);
  if (ops.empty()) {
    commit_retried(status{}, doc_.version(), 0);
    return;
  }
  retry_in_flight_ = true;
  std::string batch = encode_ops(ops);
  std::string owners = claims_to_store(ops, true);
  std::string published = ctx_.region_bus ? batch : std::string();
  std::string published_owners = ctx_.region_bus ? owners : std::string();
  ctx_.store.append(id_, std::move(batch),
                    [self = shared_from_this(), v = doc_.version(), published = std::move(published),
                     published_owners = std::move(published_owners)](status st, std::uint64_t olsn) mutable {
                      if (st.ok() && self->ctx_.region_bus)
                        self->ctx_.region_bus->publish(self->id_, std::move(published), std::move(published_owners));
                      self->on_strand([self, st = std::move(st), v = std::move(v), olsn]() mutable {
                        self->commit_retried(std::move(st), std::move(v), olsn);
                      });
                    },
                    std::move(owners));
}

void document_room::commit_retried(status st, version_vector v, std::uint64_t olsn) {
  retry_in_flight_ = false;
  if (!commit_failed_ || state_ == state::broken || state_ == state::closed) return;
  if (!st.ok()) {
    log(log_level::debug, "document {}: storing still fails: {}", id_, st.to_string());
    retry_delay_ = std::min(retry_delay_ * 2, last_commit_retry);
    schedule_commit_retry();
    return;
  }
  if (olsn) own_batch_durable(olsn, v);
  durable_.merge(v);
  commit_failed_ = false;
  failure_reason_.clear();
  unstored_ops_ = 0;
  log(log_level::info, "document {}: storage works again; everything applied is stored", id_);
  // What arrived while the retry was in flight goes the normal way.
  auto rest = doc_.ops_since(durable_);
  if (!rest.empty()) append_own(rest);
  send_acks();
  maybe_snapshot(false);
  if (subscribers_.empty()) schedule_unload();
}

void document_room::own_batch_durable(std::uint64_t olsn, const version_vector& v) {
  // Without watchers only the last is kept: a write concern asked later for
  // ops already stored (a resend after a reconnect) is answered from it.
  if (region_watch_.empty()) own_batches_.clear();
  own_batches_.emplace_back(olsn, v);
  // While regions stay cut off, the oldest go: their writers get no
  // "replicated" for them (bounded memory beats a late answer).
  if (own_batches_.size() > 65536) own_batches_.pop_front();
}

void document_room::regions_advanced() {
  on_strand([this] { send_replicated(); });
}

void document_room::send_replicated() {
  if (region_watch_.empty() || !ctx_.replication) {
    while (own_batches_.size() > 1) own_batches_.pop_front();
    return;
  }
  std::uint64_t keep_from = UINT64_MAX;  // the oldest olsn some subscriber still waits for
  for (auto it = region_watch_.begin(); it != region_watch_.end();) {
    auto s = it->second.who.lock();
    if (!s) {
      it = region_watch_.erase(it);
      continue;
    }
    const std::uint64_t durable_in = ctx_.replication->durable_in(it->second.regions);
    keep_from = std::min(keep_from, durable_in);
    // The document's version after the last own batch durable in enough regions.
    const version_vector* v = nullptr;
    for (const auto& [olsn, ver] : own_batches_) {
      if (olsn > durable_in) break;
      v = &ver;
    }
    if (v) {
      // Only what this connection wrote and was told is durable here.
      auto ack = ack_waiters_.find(std::get<0>(it->first));
      version_vector mine;
      bool news = false;
      if (ack != ack_waiters_.end())
        for (const auto& [r, c] : ack->second.told.entries()) {
          std::uint64_t d = std::min(c, v->get(r));
          if (d > 0) mine.set(r, d);
          if (d > it->second.told.get(r)) news = true;
        }
      if (news) {
        send_to(s, protocol::encode_replicated(id_, mine, it->second.regions));
        it->second.told.merge(mine);
      }
    }
    if (!it->second.persistent && it->second.told.includes(it->second.until)) {
      it = region_watch_.erase(it);  // every write that asked was answered
      continue;
    }
    ++it;
  }
  // Batches every watcher has seen durable enough go, but the last of them
  // (its version is what later checks start from).
  while (own_batches_.size() > 1 && own_batches_[1].first <= keep_from) own_batches_.pop_front();
}

void document_room::send_acks() {
  for (auto it = ack_waiters_.begin(); it != ack_waiters_.end();) {
    ack_waiter& w = it->second;
    auto s = w.who.lock();
    version_vector ack;
    bool complete = true, news = false;
    for (const auto& [r, want] : w.wanted.entries()) {
      std::uint64_t d = std::min(durable_.get(r), want);
      if (d > 0) ack.set(r, d);
      if (d > w.told.get(r)) news = true;
      if (d < want) complete = false;
    }
    // An ack is sent only when it tells this connection something new.
    if (s && news) {
      send_ack_to(s, ack);
      w.told.merge(ack);
    }
    if (!s) {
      it = ack_waiters_.erase(it);
    } else {
      if (complete) w.wanted = version_vector{};  // keep `told`: it stops repeats
      ++it;
    }
  }
}

void document_room::maybe_snapshot(bool force) {
  if (state_ != state::ready || commit_failed_ || ops_since_snapshot_ == 0) return;
  if (!force && ops_since_snapshot_ < ctx_.config.snapshot_every_ops) return;
  // A snapshot covers every log entry of the document queued before it.
  // Buffered ops are not in a snapshot, but replicated batches holding them
  // are in the log: wait until the buffer is empty.
  if (doc_.pending_ops() > 0) return;
  ctx_.store.put_snapshot(id_, doc_.encode_snapshot(), doc_.version(), [id = id_](status st) {
    if (!st.ok()) log(log_level::error, "document {}: snapshot failed: {}", id, st.to_string());
  });
  ops_since_snapshot_ = 0;
}

void document_room::presence(std::shared_ptr<subscriber> s, std::string state_json) {
  on_strand([this, s = std::move(s), st = std::move(state_json)]() mutable {
    when_ready([this, s = std::move(s), st = std::move(st)]() mutable {
      if (state_ != state::ready || !subscribers_.count(s->session_id())) return;
      if (st == "null")
        presence_.erase(s->session_id());
      else
        presence_[s->session_id()] = presence_entry{st, std::chrono::steady_clock::now()};
      broadcast(std::make_shared<const std::string>(protocol::encode_peer_presence(id_, s->session_id(), st)),
                s->session_id());
      schedule_presence_expiry();
    });
  });
}

void document_room::schedule_presence_expiry() {
  if (presence_timer_running_ || presence_.empty()) return;
  presence_timer_running_ = true;
  presence_timer_.expires_after(std::chrono::milliseconds(std::max(50u, ctx_.config.presence_ttl_ms / 4)));
  presence_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->presence_timer_running_ = false;
    if (ec) return;
    auto expire = [&] {
      auto cutoff = std::chrono::steady_clock::now() - std::chrono::milliseconds(self->ctx_.config.presence_ttl_ms);
      for (auto it = self->presence_.begin(); it != self->presence_.end();) {
        if (it->second.updated < cutoff) {
          self->broadcast(std::make_shared<const std::string>(protocol::encode_peer_presence(self->id_, it->first, "null")),
                          it->first);
          it = self->presence_.erase(it);
        } else {
          ++it;
        }
      }
    };
    self->contained(expire);
    self->schedule_presence_expiry();
  });
}

void document_room::leave(std::uint64_t session_id) {
  on_strand([this, session_id] {
    subscribers_.erase(session_id);
    ack_waiters_.erase(session_id);
    forget_region_watches(session_id, false);
    parked_by_.erase(session_id);
    if (presence_.erase(session_id))
      broadcast(std::make_shared<const std::string>(protocol::encode_peer_presence(id_, session_id, "null")), session_id);
  });
}

void document_room::unpinned() {
  on_strand([this] {
    if (subscribers_.empty()) schedule_unload();
  });
}

void document_room::schedule_unload() {
  // A room that cannot store keeps its unstored ops until it can.
  if (state_ == state::loading || state_ == state::closed || commit_failed_) return;
  unload_timer_.expires_after(std::chrono::milliseconds(ctx_.config.idle_unload_ms));
  unload_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || !self->subscribers_.empty() || self->state_ == state::closed) return;
    auto unload = [&] {
      // The snapshot is queued before the room leaves the registry: storage is
      // FIFO, so a room created for this id afterwards loads after it.
      self->maybe_snapshot(true);
      // Someone may have pinned the room since the timer started: then it stays
      // (its last release schedules another try).
      if (!self->ctx_.rooms.remove_if_unpinned(self.get())) return;
      self->state_ = state::closed;
      self->presence_timer_.cancel();
      log(log_level::debug, "document {} unloaded", self->id_);
    };
    self->contained(unload);
  });
}

void document_room::read_version(std::function<void(version_vector)> cb) {
  on_strand([this, cb = std::move(cb)]() mutable {
    when_ready([this, cb = std::move(cb)] { cb(state_ == state::broken ? version_vector{} : doc_.version()); });
  });
}

void document_room::read_ops_since(version_vector peer, std::function<void(result<ops_since_answer>)> cb) {
  on_strand([this, peer = std::move(peer), cb = std::move(cb)]() mutable {
    when_ready([this, peer = std::move(peer), cb = std::move(cb)] {
      if (state_ == state::broken) {
        cb(status(error_code::corrupt_data, broken_reason_));
        return;
      }
      ops_since_answer a;
      a.ops = doc_.ops_since(peer);
      a.owners = claims_of(a.ops);
      cb(std::move(a));
    });
  });
}

void document_room::read_text(std::function<void(result<std::string>)> cb) {
  on_strand([this, cb = std::move(cb)]() mutable {
    when_ready([this, cb = std::move(cb)] {
      if (state_ == state::broken) {
        cb(status(error_code::corrupt_data, broken_reason_));
        return;
      }
      cb(doc_.text());
    });
  });
}

void document_room::update_pending_metric() {
  auto now = static_cast<std::int64_t>(doc_.pending_ops());
  ctx_.stats.pending_ops += now - pending_reported_;
  pending_reported_ = now;
}

void document_room::bus_batch(std::string batch, std::string owners) {
  on_strand([this, batch = std::move(batch), owners = std::move(owners)]() mutable {
    when_ready([this, batch = std::move(batch), owners = std::move(owners)] { apply_bus_batch(batch, owners); });
  });
}

void document_room::apply_bus_batch(const std::string& batch, const std::string& owners) {
  if (state_ == state::broken || state_ == state::closed) return;
  if (!owners.empty()) adopt_claims(owners);
  auto ops = decode_ops(batch);
  if (!ops.ok()) {
    log(log_level::warn, "document {}: a batch from the bus does not decode: {}", id_, ops.error().to_string());
    return;
  }
  std::vector<operation> applied;
  apply_durable(ops.value(), applied);
  deliver(applied);
}

void document_room::apply_durable(const std::vector<operation>& ops, std::vector<operation>& applied) {
  std::vector<operation> conflicting;
  for (const operation& op : ops) {
    auto r = doc_.apply(op, nullptr, &applied);
    if (r.ok()) continue;
    log(log_level::warn, "document {}: a committed op does not apply: {}", id_, r.error().to_string());
    if (r.code() == error_code::id_conflict) {
      ++ctx_.stats.id_conflicts;
      conflicting.push_back(op);
    }
  }
  // Committed already (by another node, or read back from storage): an
  // author here who sent the same ops (after failing over) may be acknowledged
  // (never for ids committed with other content than this room holds).
  if (conflicting.empty()) {
    durable_.merge(ids_of(ops));
    return;
  }
  std::vector<operation> held;
  for (const operation& op : ops)
    if (std::find(conflicting.begin(), conflicting.end(), op) == conflicting.end()) held.push_back(op);
  durable_.merge(ids_of(held));
}

void document_room::adopt_claims(const std::string& encoded) {
  auto c = decode_claims(encoded);
  if (!c.ok()) {
    log(log_level::warn, "document {}: owner claims from another node do not decode: {}", id_, c.error().to_string());
    return;
  }
  adopt_claims(c.value());
}

void document_room::adopt_claims(const owner_claims& claims, bool stored) {
  for (const auto& [replica, owner] : claims) {
    auto [it, fresh] = owners_.try_emplace(replica, owner_entry{owner, stored});
    if (fresh) continue;
    if (it->second.owner == owner) {
      if (stored) it->second.stored = true;
    } else {
      ++ctx_.stats.owner_claim_conflicts;
      log(log_level::warn, "document {}: replica {} is claimed by another owner elsewhere; the owner held here stays",
          id_, replica);
    }
  }
}

std::string document_room::claims_of(const std::vector<operation>& ops) const {
  owner_claims out;
  std::vector<replica_id> seen;
  for (const auto& op : ops) {
    if (std::find(seen.begin(), seen.end(), op.id.replica) != seen.end()) continue;
    seen.push_back(op.id.replica);
    auto it = owners_.find(op.id.replica);
    if (it != owners_.end()) out.emplace_back(op.id.replica, it->second.owner);
  }
  return out.empty() ? std::string() : encode_claims(out);
}

std::string document_room::claims_to_store(const std::vector<operation>& ops, bool all) {
  if (owners_.empty()) return {};
  if (all) {
    for (const auto& op : ops)
      if (auto it = owners_.find(op.id.replica); it != owners_.end()) it->second.stored = true;
    return claims_of(ops);
  }
  owner_claims out;
  for (const auto& op : ops) {
    auto it = owners_.find(op.id.replica);
    if (it == owners_.end() || it->second.stored) continue;
    it->second.stored = true;
    out.emplace_back(op.id.replica, it->second.owner);
  }
  return out.empty() ? std::string() : encode_claims(out);
}

void document_room::enforce_ownership(const std::shared_ptr<subscriber>& s, const std::string& who,
                                      std::vector<operation>& ops) {
  std::vector<replica_id> refused;
  std::size_t dropped = 0;
  auto gone = std::remove_if(ops.begin(), ops.end(), [&](const operation& op) {
    const replica_id r = op.id.replica;
    auto it = owners_.find(r);
    if (it == owners_.end()) {
      // A replica nobody has written under is claimed by its first writer
      // (durably with the first batch that carries its ops). One with ops
      // but no known owner (written before auth was on, or relayed without
      // its claim) belongs to nobody here: nobody may add to it.
      if (doc_.version().get(r) == 0) {
        owners_.emplace(r, owner_entry{who, false});
        return false;
      }
    } else if (it->second.owner == who) {
      return false;
    }
    ++dropped;
    if (std::find(refused.begin(), refused.end(), r) == refused.end()) refused.push_back(r);
    return true;
  });
  ops.erase(gone, ops.end());
  if (refused.empty()) return;
  ctx_.stats.forbidden_replica_ops += dropped;
  std::string ids;
  for (replica_id r : refused) {
    if (!ids.empty()) ids += ", ";
    ids += std::to_string(r);
  }
  std::string msg = std::to_string(dropped);
  msg += dropped == 1 ? " op was" : " ops were";
  msg += " refused: replica id ";
  msg += ids;
  msg += refused.size() == 1 ? " belongs" : " belong";
  msg += " to another user (or has ops of no known owner); write under a replica id of your own";
  log(log_level::info, "document {}: session {}: {}", id_, s->session_id(), msg);
  send_to(s, protocol::encode_error(error_kind::forbidden, msg, id_));
}

void document_room::deliver(const std::vector<operation>& applied) {
  update_pending_metric();
  if (!applied.empty()) {
    ctx_.stats.ops_applied += applied.size();
    note_applied(applied.size());
    broadcast_ops(applied, 0);
  }
  send_acks();
}

void document_room::bus_resync() {
  on_strand([this] {
    when_ready([this] {
      if (state_ == state::broken || state_ == state::closed) return;
      ctx_.store.load(id_, [self = shared_from_this()](result<stored_document> r) {
        if (!r.ok()) {
          log(log_level::warn, "document {}: resync from storage failed: {}", self->id_, r.error().to_string());
          return;
        }
        self->on_strand([self, d = std::move(r.value())]() mutable { self->merge_stored(std::move(d)); });
      });
    });
  });
}

void document_room::merge_stored(stored_document d) {
  if (state_ == state::broken || state_ == state::closed) return;
  adopt_claims(d.owners);
  std::vector<operation> applied;
  if (!d.snapshot.empty()) {
    auto snap = document::decode_snapshot(d.snapshot, server_replica, room_options(ctx_.config));
    if (snap.ok()) {
      apply_durable(snap.value().ops_since(doc_.version()), applied);
      durable_.merge(snap.value().version());
    } else {
      log(log_level::warn, "document {}: stored snapshot does not decode: {}", id_, snap.error().to_string());
    }
  }
  for (const auto& [seq, bytes] : d.batches) {
    auto ops = decode_ops(bytes);
    if (ops.ok()) apply_durable(ops.value(), applied);  // a batch that does not decode is reported when a room loads it
  }
  log(log_level::debug, "document {}: resynced from storage, {} ops were missing", id_, applied.size());
  deliver(applied);
}

void document_room::storage_availability(status st) {
  on_strand([this, st = std::move(st)] {
    const bool down = !st.ok();
    if (down == storage_down_ || state_ == state::broken) return;
    storage_down_ = down;
    if (down)
      broadcast(std::make_shared<const std::string>(protocol::encode_error(error_kind::storage, st.detail(), id_)), 0);
  });
}

}  // namespace weft::server
