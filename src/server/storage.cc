#include "server/storage.h"

#include <algorithm>
#include <cctype>
#include <future>

#include "server/postgres_storage.h"
#include "server/sqlite_storage.h"

namespace weft::server {

bool valid_node_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

result<std::unique_ptr<storage>> storage::open(metrics* m, storage_options options) {
  if (!valid_node_id(options.node_id))
    return status(error_code::invalid_argument,
                  "node id '" + options.node_id + "' must be 1-64 letters, digits, '-', '_' or '.'");
  const std::string& where = options.location;
  if (where.rfind("postgres://", 0) == 0 || where.rfind("postgresql://", 0) == 0)
    return postgres_storage::open(m, std::move(options));
  return sqlite_storage::open(m, std::move(options));
}

result<std::unique_ptr<storage>> storage::open(const std::string& dir, metrics* m, storage_options options) {
  options.location = dir;
  return open(m, std::move(options));
}

storage::~storage() = default;

void storage::start(const storage_options& options, std::string own_key, origin_vector have,
                    std::map<std::string, std::set<std::uint64_t>> ahead) {
  window_ = options.commit_window;
  retain_ = options.retain_feed_for_peers;
  max_backlog_ = options.max_backlog_bytes;
  own_key_ = std::move(own_key);
  have_ = std::move(have);
  staged_ = have_;
  ahead_ = std::move(ahead);
  thread_ = std::thread([this] { run(); });
}

void storage::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

origin_vector storage::have() const {
  std::lock_guard<std::mutex> lock(have_mu_);
  return have_;
}

void storage::mark_held(const std::string& key, std::uint64_t n) {
  std::uint64_t& h = staged_[key];
  if (n <= h) return;
  if (n != h + 1) {
    ahead_[key].insert(n);
    return;
  }
  h = n;
  absorb_ahead(key, h);
}

void storage::absorb_ahead(const std::string& key, std::uint64_t& h) {
  auto it = ahead_.find(key);
  if (it == ahead_.end()) return;
  auto& set = it->second;
  while (!set.empty() && *set.begin() <= h + 1) {
    if (*set.begin() == h + 1) ++h;
    set.erase(set.begin());
  }
  if (set.empty()) ahead_.erase(it);
}

void storage::enqueue(request r) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const bool write = r.type == request::kind::append || r.type == request::kind::replicated ||
                       r.type == request::kind::snapshot;
    if (write && unreachable_ && backlog_bytes_ + r.data.size() > max_backlog_) {
      // Waiting writes are held in memory; past the bound they fail (their
      // documents stop and reload once the database answers again).
      status full(error_code::limit_exceeded,
                  "storage unavailable: the database cannot be reached and " + std::to_string(backlog_bytes_) +
                      " bytes of edits already wait for it");
      if (r.done) r.done(full);
      if (r.appended) r.appended(full, 0);
      return;
    }
    if (write) backlog_bytes_ += r.data.size();
    const bool was_empty = queue_.empty();
    if (was_empty) oldest_ = std::chrono::steady_clock::now();
    // Reads wait for nobody. A replicated batch neither: it was grouped and
    // waited for its commit window on its origin already, and every ms here
    // is replication lag.
    const bool urgent = r.type == request::kind::load || r.type == request::kind::barrier ||
                        r.type == request::kind::feed || r.type == request::kind::replicated ||
                        r.type == request::kind::gap || r.type == request::kind::advance;
    // The storage thread is asleep only when the queue is empty, or when it
    // waits out the commit window (then only urgent requests need it now).
    wake = was_empty || (urgent && !urgent_);
    urgent_ = urgent_ || urgent;
    queue_.push_back(std::move(r));
  }
  if (wake) cv_.notify_one();
}

void storage::append(std::string doc, std::string batch, appended_fn done, std::string owners) {
  request r{request::kind::append, std::move(doc), 0, std::move(batch), {}};
  r.appended = std::move(done);
  r.owners = std::move(owners);
  enqueue(std::move(r));
}

void storage::append_replicated(std::string doc, batch_origin origin, std::string batch, done_fn done,
                                std::string owners) {
  request r{request::kind::replicated, std::move(doc), origin.olsn, std::move(batch), std::move(done)};
  r.owners = std::move(owners);
  r.key = std::move(origin.key);
  r.path = std::move(origin.path);
  enqueue(std::move(r));
}

void storage::put_snapshot(std::string doc, std::string snapshot, version_vector version, done_fn done) {
  request r{request::kind::snapshot, std::move(doc), 0, std::move(snapshot), std::move(done)};
  r.version = std::move(version);
  enqueue(std::move(r));
}

void storage::read_feed(std::string key, std::uint64_t after, std::size_t max_entries,
                        std::function<void(result<feed_page>)> done) {
  request r{request::kind::feed, std::move(key), after, {}, {}};
  r.max = max_entries;
  r.fed = std::move(done);
  enqueue(std::move(r));
}

void storage::feed_gap(std::string key, std::uint64_t after, std::function<void(result<feed_gap_info>)> done) {
  request r{request::kind::gap, std::move(key), after, {}, {}};
  r.gapped = std::move(done);
  enqueue(std::move(r));
}

void storage::advance(std::string key, std::uint64_t olsn, done_fn done) {
  request r{request::kind::advance, {}, olsn, {}, std::move(done)};
  r.key = std::move(key);
  enqueue(std::move(r));
}

void storage::record_peer_progress(std::string peer, origin_vector confirmed) {
  request r{request::kind::progress, std::move(peer), 0, {}, {}};
  r.progress = std::move(confirmed);
  enqueue(std::move(r));
}

void storage::forget_peer(std::string peer, done_fn done) {
  enqueue(request{request::kind::forget, std::move(peer), 0, {}, std::move(done)});
}

void storage::load(std::string doc, std::function<void(result<stored_document>)> done) {
  enqueue(request{request::kind::load, std::move(doc), 0, {}, {}, std::move(done)});
}

void storage::flush() {
  std::promise<void> p;
  auto f = p.get_future();
  enqueue(request{request::kind::barrier, {}, 0, {}, [&p](status) { p.set_value(); }});
  f.wait();
}

status storage::write(request& r, status& refusal) {
  owner_claims claims;
  if (!r.owners.empty()) {
    auto c = decode_claims(r.owners);
    if (!c.ok()) {
      refusal = c.error();
      return {};
    }
    claims = std::move(c.value());
  }
  switch (r.type) {
    case request::kind::append: {
      const std::uint64_t olsn = staged_[own_key_] + 1;
      if (status s = tx_insert(log_row{r.doc, own_key_, olsn, own_key_, unix_ms(), r.data, r.owners, claims}); !s.ok())
        return s;
      mark_held(own_key_, olsn);
      r.seq = olsn;
      return {};
    }
    case request::kind::replicated: {
      bool held;
      {
        auto h = staged_.find(r.key);
        auto a = ahead_.find(r.key);
        held = (h != staged_.end() && r.seq <= h->second) || (a != ahead_.end() && a->second.count(r.seq));
      }
      if (held) {
        // Replayed after a reconnect or through a second route: the same
        // bytes are fine, other bytes under the same key are a bug or a
        // forgery and must not pass as the same batch.
        auto stored = stored_batch(r.key, r.seq);
        if (!stored.ok()) return stored.error();
        if (stored.value() && *stored.value() != r.data) {
          // Refused on its own: the rest of the group commit goes on.
          refusal = status(error_code::invalid_operation, "conflicting write: batch " + std::to_string(r.seq) +
                                                             " of " + r.key + " arrived with other contents than stored");
          if (metrics_) metrics_->count(metrics::storage_error::conflict);
        }
        return {};
      }
      const std::string path = r.path.empty() ? own_key_ : r.path + "," + own_key_;
      if (status s = tx_insert(log_row{r.doc, r.key, r.seq, path, unix_ms(), r.data, r.owners, claims}); !s.ok())
        return s;
      mark_held(r.key, r.seq);
      return {};
    }
    case request::kind::advance: {
      std::uint64_t& h = staged_[r.key];
      if (r.seq > h) h = r.seq;
      absorb_ahead(r.key, h);
      return {};
    }
    case request::kind::progress:
      return tx_peer_progress(r.doc, r.progress);
    case request::kind::forget: {
      auto n = tx_forget_peer(r.doc);
      if (!n.ok()) return n.error();
      if (n.value() == 0) {
        refusal = status(error_code::invalid_operation, "no replication progress is recorded for peer " + r.doc);
        return {};
      }
      return tx_compact_all(retain_);
    }
    case request::kind::snapshot:
      return tx_snapshot(r.doc, r.data, r.version, retain_);
    default:
      return {};
  }
}

result<storage::feed_gap_info> storage::feed_gap_now(const std::string& key, std::uint64_t after) {
  feed_gap_info out;
  std::uint64_t have;
  {
    auto h = staged_.find(key);
    have = h == staged_.end() ? 0 : h->second;
  }
  // The first entry still held after the reader's position (compaction goes
  // document by document: the holes need not be a prefix), never past what
  // is held contiguously.
  out.first_held = have + 1;
  auto first = first_stored_after(key, after);
  if (!first.ok()) return first.error();
  if (first.value()) out.first_held = std::min(out.first_held, *first.value());
  auto docs = list_documents();
  if (!docs.ok()) return docs.error();
  out.docs = std::move(docs.value());
  return out;
}

result<feed_page> storage::read_feed_now(const std::string& key, std::uint64_t after, std::size_t max) {
  feed_page page;
  std::uint64_t upto;
  {
    auto h = staged_.find(key);
    upto = h == staged_.end() ? 0 : h->second;
  }
  if (after >= upto) return page;
  auto rows = read_feed_rows(key, after, upto, max);
  if (!rows.ok()) return rows.error();
  std::uint64_t next = after + 1;
  for (auto& e : rows.value()) {
    if (e.olsn != next) break;  // compacted below here
    page.entries.push_back(std::move(e));
    ++next;
  }
  if (page.entries.empty()) page.compacted = true;
  return page;
}

void storage::answer(request& r) {
  switch (r.type) {
    case request::kind::load: {
      auto d = read_document(r.doc);
      if (!d.ok() && metrics_) metrics_->count(last_error_kind());
      r.loaded(std::move(d));
      break;
    }
    case request::kind::feed:
      r.fed(read_feed_now(r.doc, r.seq, r.max));
      break;
    case request::kind::gap:
      r.gapped(feed_gap_now(r.doc, r.seq));
      break;
    default:
      break;
  }
}

status storage::transact(std::vector<request>& work, std::size_t i, std::size_t j, std::vector<status>& refusals,
                         std::vector<std::string>& advanced, std::size_t& writes) {
  // What the transaction does to the progress it is undone with it.
  // The transaction works on staged_; have() shows it only once it
  // committed (a peer told "held" must never lose it in a crash).
  origin_vector have_before = staged_;
  std::map<std::string, std::set<std::uint64_t>> ahead_before = ahead_;
  advanced.clear();
  writes = 0;
  std::fill(refusals.begin(), refusals.end(), status{});
  status st = tx_begin();
  for (std::size_t k = i; k < j && st.ok(); ++k) {
    if (work[k].type == request::kind::barrier) continue;
    st = write(work[k], refusals[k - i]);
    ++writes;
  }
  if (st.ok()) {
    std::vector<std::pair<std::string, std::uint64_t>> rows;
    for (const auto& [key, h] : staged_) {
      auto b = have_before.find(key);
      if (h > (b == have_before.end() ? 0 : b->second)) {
        advanced.push_back(key);
        rows.emplace_back(key, h);
      }
    }
    if (!rows.empty()) st = tx_origins(rows);
  }
  if (st.ok()) st = tx_commit();
  if (st.ok()) {
    if (!advanced.empty()) {
      std::lock_guard<std::mutex> lock(have_mu_);
      have_ = staged_;
    }
    return st;
  }
  staged_ = std::move(have_before);
  ahead_ = std::move(ahead_before);
  advanced.clear();
  if (metrics_) metrics_->count(last_error_kind());
  tx_rollback();
  return st;
}

status storage::retry_until_reachable(status failure, std::vector<request>& work, std::size_t i, std::size_t j,
                                      std::vector<status>& refusals, std::vector<std::string>& advanced,
                                      std::size_t& writes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    unreachable_ = true;
  }
  if (on_availability_)
    on_availability_(status(failure.code(), "storage unavailable (" + failure.detail() +
                                                "); edits are kept and acknowledged once it is back"));
  auto backoff = std::chrono::milliseconds(50);
  status st = failure;
  while (true) {
    std::vector<request> reads;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, backoff, [&] { return stopping_; });
      if (stopping_) break;
      // Reads cannot wait for an outage of unknown length: they fail now
      // (a document that cannot load is retried by its next opener).
      for (auto it = queue_.begin(); it != queue_.end();) {
        if (it->type == request::kind::load || it->type == request::kind::feed || it->type == request::kind::gap) {
          reads.push_back(std::move(*it));
          it = queue_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& r : reads) {
      status down(error_code::invalid_argument, "storage unavailable: " + failure.detail());
      if (r.loaded) r.loaded(down);
      if (r.fed) r.fed(down);
      if (r.gapped) r.gapped(down);
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::milliseconds(1000));
    if (!reconnect().ok()) continue;
    st = transact(work, i, j, refusals, advanced, writes);
    if (st.ok() || !unreachable(st)) break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    unreachable_ = false;
  }
  if (st.ok() && on_availability_) on_availability_(status{});
  return st;
}

void storage::poll_progress() {
  last_poll_ = std::chrono::steady_clock::now();
  auto shared = read_progress();
  if (!shared.ok()) return;  // the next commit reports what is wrong
  // Other writers of a shared database moved their origins: this node holds
  // those entries too (same database), and serves them in its feed.
  std::vector<std::string> advanced;
  for (const auto& [key, h] : shared.value()) {
    std::uint64_t& mine = staged_[key];
    if (h > mine) {
      mine = h;
      absorb_ahead(key, mine);
      advanced.push_back(key);
    }
  }
  if (advanced.empty()) return;
  {
    std::lock_guard<std::mutex> lock(have_mu_);
    have_ = staged_;
  }
  if (on_advanced_) on_advanced_(advanced);
}

void storage::run() {
  std::vector<request> work;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      const auto poll = progress_poll_interval();
      if (poll.count() == 0) {
        cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      } else if (!cv_.wait_until(lock, last_poll_ + poll, [&] { return stopping_ || !queue_.empty(); })) {
        lock.unlock();
        poll_progress();
        continue;
      }
      if (queue_.empty() && stopping_) return;
      // Let more writes join this commit, up to the window.
      if (window_.count() > 0 && !urgent_ && !stopping_)
        cv_.wait_until(lock, oldest_ + window_, [&] { return stopping_ || urgent_; });
      urgent_ = false;
      work.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    // Loads are answered in queue order relative to writes: a load queued
    // after a write sees it. Writes between loads share one transaction.
    auto is_read = [](const request& r) {
      return r.type == request::kind::load || r.type == request::kind::feed || r.type == request::kind::gap;
    };
    std::size_t i = 0;
    while (i < work.size()) {
      if (is_read(work[i])) {
        answer(work[i]);
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < work.size() && !is_read(work[j])) ++j;
      auto t0 = std::chrono::steady_clock::now();
      std::vector<status> refusals(j - i);
      std::vector<std::string> advanced;
      std::size_t writes = 0;
      status st = transact(work, i, j, refusals, advanced, writes);
      if (!st.ok() && unreachable(st)) st = retry_until_reachable(st, work, i, j, refusals, advanced, writes);
      auto dt = std::chrono::steady_clock::now() - t0;
      if (metrics_ && writes > 0) metrics_->observe_commit(std::chrono::duration<double>(dt).count(), writes);
      std::uint64_t bytes = 0;
      for (std::size_t k = i; k < j; ++k) {
        bytes += work[k].data.size();
        if (work[k].done) work[k].done(st.ok() && !refusals[k - i].ok() ? refusals[k - i] : st);
        if (work[k].appended) work[k].appended(st, st.ok() ? work[k].seq : 0);
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        backlog_bytes_ -= std::min(backlog_bytes_, bytes);
      }
      if (!advanced.empty() && on_advanced_) on_advanced_(advanced);
      i = j;
    }
    work.clear();
    // Under steady load the queue is never empty when the poll is due.
    const auto poll = progress_poll_interval();
    if (poll.count() > 0 && std::chrono::steady_clock::now() >= last_poll_ + poll) poll_progress();
  }
}

}  // namespace weft::server
