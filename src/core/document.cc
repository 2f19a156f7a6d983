#include "weft/document.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "core/sequence_state.h"
#include "core/utf8.h"
#include "weft/unicode.h"

namespace weft {

using detail::ref;

// ---- sequence_state ---------------------------------------------------------

sequence_state::sequence_state(replica_id self, document_options options)
    : self_(self & max_replica_id), options_(options), tree_(&globals_) {
  intern(self_);
}

sequence_state::sequence_state(const sequence_state& o)
    : self_(o.self_),
      options_(o.options_),
      globals_(o.globals_),
      locals_(o.locals_),
      vv_(o.vv_),
      tree_(o.tree_, &globals_),
      log_(o.log_),
      pending_(o.pending_) {}

std::uint32_t sequence_state::intern(replica_id g) {
  if (last_local_ < globals_.size() && globals_[last_local_] == g) return last_local_;
  auto [it, fresh] = locals_.try_emplace(g, static_cast<std::uint32_t>(globals_.size()));
  if (fresh) {
    globals_.push_back(g);
    tree_.ensure_replica(it->second);
  }
  return last_local_ = it->second;
}

std::uint32_t sequence_state::local_of(replica_id g) const {
  if (last_local_ < globals_.size() && globals_[last_local_] == g) return last_local_;
  auto it = locals_.find(g);
  if (it == locals_.end()) return detail::no_replica;
  return last_local_ = it->second;
}

ref sequence_state::to_ref(op_id id) const {
  std::uint32_t r = local_of(id.replica);
  if (r == detail::no_replica || id.counter > max_counter) return ref{detail::no_replica, 0};
  return ref{r, static_cast<std::uint32_t>(id.counter)};
}

namespace {

// Concatenates message parts. (Chains of std::string operator+ trip a GCC 12
// -Wrestrict false positive at -O2.)
std::string cat(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (std::string_view p : parts) out.append(p);
  return out;
}

status invalid(std::string what) { return status(error_code::invalid_operation, std::move(what)); }

bool valid_id(op_id id) { return id.replica <= max_replica_id && id.counter >= 1 && id.counter <= max_counter; }

std::string id_str(op_id id) { return cat({"(", std::to_string(id.replica), ",", std::to_string(id.counter), ")"}); }

// Structural checks that need no document state.
status validate_structure(const operation& op, std::uint64_t max_ids) {
  if (!valid_id(op.id)) return invalid(cat({"operation id ", id_str(op.id), " is out of range"}));
  if (op.kind == op_kind::insert || op.kind == op_kind::tombstone) {
    if (op.kind == op_kind::insert) {
      if (op.text.empty()) return invalid("insert has no text");
      if (!is_valid_utf8(op.text)) return invalid("insert text is not valid UTF-8");
      if (op.count != 0) return invalid("insert must not carry a count");
    } else {
      if (op.count == 0) return invalid("tombstone of zero characters");
      if (!op.text.empty()) return invalid("tombstone must not carry text");
    }
    if (!op.targets.empty()) return invalid("insert must not carry targets");
    for (const auto& o : {op.origin_left, op.origin_right}) {
      if (!o) continue;
      if (!valid_id(*o)) return invalid(cat({"origin ", id_str(*o), " is out of range"}));
      if (o->replica == op.id.replica && o->counter >= op.id.counter)
        return invalid(cat({"origin ", id_str(*o), " is not older than the insert"}));
    }
  } else if (op.kind == op_kind::erase) {
    if (op.targets.empty()) return invalid("erase has no targets");
    if (!op.text.empty() || op.origin_left || op.origin_right || op.count != 0)
      return invalid("erase must not carry text, count or origins");
    for (const auto& t : op.targets) {
      if (t.length == 0) return invalid("erase target of length 0");
      if (!valid_id(op_id{t.replica, t.counter}) || t.length > max_counter || t.counter + t.length - 1 > max_counter)
        return invalid("erase target out of range");
      if (t.replica == op.id.replica && t.counter + t.length - 1 >= op.id.counter)
        return invalid("erase target is not older than the erase");
    }
  } else {
    return invalid("unknown operation kind");
  }
  std::uint64_t len = op.length();
  if (len > max_ids)
    return status(error_code::limit_exceeded, cat({"operation uses ", std::to_string(len), " ids; the limit is ",
                                                   std::to_string(max_ids)}));
  if (len > max_counter || op.id.counter + len - 1 > max_counter)
    return status(error_code::limit_exceeded, "operation ids pass the counter limit");
  return {};
}

// Drops the first k ids of op (k < op.length()).
operation trim_front(const operation& op, std::uint64_t k) {
  operation t;
  t.kind = op.kind;
  t.id = op_id{op.id.replica, op.id.counter + k};
  if (op.kind == op_kind::insert || op.kind == op_kind::tombstone) {
    t.origin_left = op_id{op.id.replica, op.id.counter + k - 1};
    t.origin_right = op.origin_right;
    if (op.kind == op_kind::insert)
      t.text = op.text.substr(detail::byte_offset(op.text, k));
    else
      t.count = op.count - k;
  } else {
    for (const auto& s : op.targets) {
      if (k >= s.length) {
        k -= s.length;
        continue;
      }
      t.targets.push_back(id_span{s.replica, s.counter + k, s.length - k});
      k = 0;
    }
  }
  return t;
}

}  // namespace

// ---- document -----------------------------------------------------------

document::document(replica_id replica, document_options options)
    : s_(std::make_unique<sequence_state>(replica, options)) {}
document::document(std::unique_ptr<sequence_state> state) : s_(std::move(state)) {}
document::~document() = default;
document::document(document&&) noexcept = default;
document& document::operator=(document&&) noexcept = default;
document::document(const document& o) : s_(std::make_unique<sequence_state>(*o.s_)) {}
document& document::operator=(const document& o) {
  if (this != &o) s_ = std::make_unique<sequence_state>(*o.s_);
  return *this;
}

replica_id document::replica() const noexcept { return s_->self_; }
std::string document::text() const { return s_->tree_.text(); }
std::uint64_t document::length() const noexcept { return s_->tree_.visible(); }

std::optional<std::uint64_t> document::position_of(op_id id) {
  const ref r = s_->to_ref(id);
  if (r.none()) return std::nullopt;
  const detail::cursor c = s_->tree_.locate(r);
  if (c.at_end() || s_->tree_.run_at(c).deleted) return std::nullopt;
  return s_->tree_.position_of(c);
}

result<op_id> document::id_at(std::uint64_t position) {
  if (position >= length()) return status(error_code::invalid_argument, "position past the end of the document");
  return s_->to_id(s_->tree_.char_at(s_->tree_.locate_visible(position)));
}
const version_vector& document::version() const noexcept { return s_->vv_; }
std::size_t document::pending_ops() const noexcept { return s_->pending_.size(); }

std::size_t document::memory_usage() const noexcept {
  const sequence_state& s = *s_;
  return sizeof(sequence_state) + s.tree_.memory_usage() + s.log_.memory_usage() + s.pending_.memory_usage() +
         s.globals_.capacity() * sizeof(replica_id) + s.locals_.size() * 32 +
         s.vv_.entries().capacity() * sizeof(std::pair<replica_id, std::uint64_t>);
}

result<operation> document::insert(std::uint64_t position, std::string_view text) {
  sequence_state& s = *s_;
  if (position > s.tree_.visible())
    return status(error_code::invalid_argument, cat({"insert position ", std::to_string(position),
                                                         " is past the end (length ",
                                                         std::to_string(s.tree_.visible()), ")"}));
  if (text.empty()) return status(error_code::invalid_argument, "insert of empty text");
  if (!is_valid_utf8(text)) return status(error_code::invalid_argument, "insert text is not valid UTF-8");
  std::uint64_t len = detail::count_cp(text);
  if (len > s.options_.max_op_ids)
    return status(error_code::limit_exceeded, "insert larger than max_op_ids; insert it in parts");
  std::uint64_t counter = s.vv_.get(s.self_) + 1;
  if (counter + len - 1 > max_counter) return status(error_code::limit_exceeded, "replica counters exhausted");
  std::uint32_t r = s.intern(s.self_);
  detail::run nr{r, static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(len), 0, 0, 0, ref{}, ref{}};
  s.tree_.insert_local(position, nr, text);
  s.vv_.set(s.self_, counter + len - 1);
  s.log_.append_insert(r, nr.counter, nr.length);
  operation op;
  op.kind = op_kind::insert;
  op.id = op_id{s.self_, counter};
  if (!nr.left.none()) op.origin_left = s.to_id(nr.left);
  if (!nr.right.none()) op.origin_right = s.to_id(nr.right);
  op.text = std::string(text);
  return op;
}

result<operation> document::erase(std::uint64_t position, std::uint64_t count) {
  sequence_state& s = *s_;
  if (count == 0) return status(error_code::invalid_argument, "erase of zero characters");
  if (position > s.tree_.visible() || count > s.tree_.visible() - position)
    return status(error_code::invalid_argument, cat({"erase range [", std::to_string(position), ", +", std::to_string(count),
                                                         ") is past the end (length ", std::to_string(s.tree_.visible()),
                                                         ")"}));
  if (count > s.options_.max_op_ids)
    return status(error_code::limit_exceeded, "erase larger than max_op_ids; erase it in parts");
  std::uint64_t counter = s.vv_.get(s.self_) + 1;
  if (counter + count - 1 > max_counter) return status(error_code::limit_exceeded, "replica counters exhausted");
  std::uint32_t r = s.intern(s.self_);
  std::vector<detail::content_tree::span_ref>& spans = s.scratch_spans_;
  spans.clear();
  s.tree_.erase_visible(position, count, &spans);
  s.tree_.note_non_characters(r, static_cast<std::uint32_t>(count));
  s.vv_.set(s.self_, counter + count - 1);
  s.log_.begin_erase(r, static_cast<std::uint32_t>(counter));
  operation op;
  op.kind = op_kind::erase;
  op.id = op_id{s.self_, counter};
  op.targets.reserve(spans.size());
  for (const auto& sp : spans) {
    s.log_.add_erase_target(sp.replica, sp.counter, sp.length);
    op.targets.push_back(id_span{s.globals_[sp.replica], sp.counter, sp.length});
  }
  return op;
}

namespace {

// The first id `op` depends on that `vv` lacks, as (replica, counter needed).
std::optional<op_id> missing_dependency(const operation& op, const version_vector& vv) {
  std::uint64_t known = vv.get(op.id.replica);
  if (op.id.counter != known + 1) return op_id{op.id.replica, op.id.counter - 1};
  if (op.kind != op_kind::erase) {
    if (op.origin_left && !vv.covers(*op.origin_left)) return *op.origin_left;
    if (op.origin_right && !vv.covers(*op.origin_right)) return *op.origin_right;
  } else {
    for (const auto& t : op.targets) {
      op_id last{t.replica, t.counter + t.length - 1};
      if (!vv.covers(last)) return last;
    }
  }
  return std::nullopt;
}

// Applies an op whose dependencies are all known and whose first id is
// next. `len` is op.length() (counted once per op by the caller).
status apply_ready(sequence_state& s, const operation& op, std::uint64_t len, std::vector<text_change>* changes) {
  if (op.kind != op_kind::erase) {
    const bool tomb = op.kind == op_kind::tombstone;
    detail::run nr{};
    nr.deleted = tomb ? 1 : 0;
    nr.counter = static_cast<std::uint32_t>(op.id.counter);
    nr.length = static_cast<std::uint32_t>(len);
    nr.left = op.origin_left ? s.to_ref(*op.origin_left) : ref{};
    nr.right = op.origin_right ? s.to_ref(*op.origin_right) : ref{};
    nr.replica = s.intern(op.id.replica);
    std::uint64_t pos = 0;
    if (!s.tree_.integrate(nr, op.text, changes ? &pos : nullptr))
      return invalid(cat({"insert ", id_str(op.id), " has origins that are not characters of this document, or are out of order"}));
    s.vv_.set(op.id.replica, op.id.counter + len - 1);
    s.log_.append_insert(nr.replica, nr.counter, nr.length);
    if (changes && !tomb) changes->push_back(text_change{text_change::kind::insert, pos, len, op.text});
    return {};
  }
  for (const auto& t : op.targets) {
    ref first = s.to_ref(op_id{t.replica, t.counter});
    if (first.none() || !s.tree_.all_characters(first, static_cast<std::uint32_t>(t.length)))
      return invalid(cat({"erase ", id_str(op.id), " targets ids that are not characters of this document"}));
  }
  std::uint32_t r = s.intern(op.id.replica);
  s.log_.begin_erase(r, static_cast<std::uint32_t>(op.id.counter));
  for (const auto& t : op.targets) {
    ref first = s.to_ref(op_id{t.replica, t.counter});
    s.tree_.erase_ids(first, static_cast<std::uint32_t>(t.length), changes != nullptr, [&](std::uint64_t pos, std::uint32_t k) {
      if (changes) changes->push_back(text_change{text_change::kind::erase, pos, k, {}});
    });
    s.log_.add_erase_target(first.replica, first.counter, static_cast<std::uint32_t>(t.length));
  }
  s.tree_.note_non_characters(r, static_cast<std::uint32_t>(len));
  s.vv_.set(op.id.replica, op.id.counter + len - 1);
  return {};
}

// True when the first `n` ids of `in`, which this document already knows,
// hold what `in` says they hold: the same characters with the same origins
// and text (an insert; deleted text is no longer kept, so only its origins
// are compared), characters (a tombstone), or ids that are not characters
// and whose targets are deleted (an erase). A known id with other content is
// an id used twice, by a buggy or forging replica; accepting the second use
// as a duplicate would acknowledge an edit that the document does not hold.
bool known_prefix_matches(const sequence_state& s, const operation& in, std::uint64_t n) {
  ref first = s.to_ref(in.id);
  if (first.none()) return false;
  if (in.kind == op_kind::erase) {
    // The erase's own ids are never characters.
    if (!s.tree_.ids_free(first, static_cast<std::uint32_t>(n))) return false;
    std::uint64_t left = n;
    for (const auto& t : in.targets) {
      if (left == 0) break;
      std::uint64_t k = std::min<std::uint64_t>(t.length, left);
      for (std::uint64_t c = t.counter; c < t.counter + k;) {
        detail::cursor cur = s.tree_.locate(s.to_ref(op_id{t.replica, c}));
        if (cur.at_end()) return false;
        const detail::run& r = s.tree_.run_at(cur);
        if (!r.deleted) return false;
        c += r.length - cur.offset;
      }
      left -= k;
    }
    return true;
  }
  if (!s.tree_.all_characters(first, static_cast<std::uint32_t>(n))) return false;
  const ref right = in.origin_right ? s.to_ref(*in.origin_right) : ref{};
  if (in.origin_right && right.none()) return false;
  std::size_t byte = 0;  // into in.text, at character `done`
  for (std::uint64_t done = 0; done < n;) {
    detail::cursor cur = s.tree_.locate(ref{first.replica, static_cast<std::uint32_t>(first.counter + done)});
    if (cur.at_end()) return false;
    const detail::run& r = s.tree_.run_at(cur);
    std::uint64_t k = std::min<std::uint64_t>(r.length - cur.offset, n - done);
    if (!(r.right == right)) return false;
    ref left = r.left_of(cur.offset);
    if (done == 0) {
      ref want = in.origin_left ? s.to_ref(*in.origin_left) : ref{};
      if ((in.origin_left && want.none()) || !(left == want)) return false;
    } else if (!(left == ref{first.replica, static_cast<std::uint32_t>(first.counter + done - 1)})) {
      return false;
    }
    if (in.kind == op_kind::insert) {
      std::size_t bytes = detail::byte_offset(std::string_view(in.text).substr(byte), k);
      if (!r.deleted) {
        std::string_view held = s.tree_.arena_text(r.text_offset, r.text_bytes);
        std::size_t b0 = detail::byte_offset(held, cur.offset);
        if (held.substr(b0, bytes) != std::string_view(in.text).substr(byte, bytes)) return false;
      }
      byte += bytes;
    }
    done += k;
  }
  return true;
}

enum class step { applied, buffered, duplicate };

// A tombstone for characters we already have says they are deleted: mark
// them so (the deletion itself arrives separately and is then a no-op). This
// makes the state independent of whether the insert or the tombstone came
// first. Ids that are not characters are ignored.
void mark_deleted_early(sequence_state& s, op_id first, std::uint64_t n, std::vector<text_change>* changes) {
  ref r = s.to_ref(first);
  if (r.none() || !s.tree_.all_characters(r, static_cast<std::uint32_t>(n))) return;
  s.tree_.erase_ids(r, static_cast<std::uint32_t>(n), changes != nullptr, [&](std::uint64_t pos, std::uint32_t k) {
    if (changes) changes->push_back(text_change{text_change::kind::erase, pos, k, {}});
  });
}

// Trims, checks and applies or buffers one op. Buffered-op bounds apply only
// to ops arriving from outside (`fresh`); re-filed ops already count.
result<step> submit(sequence_state& s, const operation& in, std::vector<text_change>* changes,
                    std::vector<operation>* applied, bool fresh) {
  std::uint64_t known = s.vv_.get(in.id.replica);
  std::uint64_t len = in.length();
  // A tombstone's known prefix marks characters deleted; that happens only
  // once the rest of the op is accepted, so a refused op changes nothing.
  auto mark_known_prefix = [&] {
    if (in.kind == op_kind::tombstone && in.id.counter <= known)
      mark_deleted_early(s, op_id{in.id.replica, in.id.counter}, std::min(len, known - in.id.counter + 1), changes);
  };
  if (in.id.counter <= known && !known_prefix_matches(s, in, std::min(len, known - in.id.counter + 1)))
    return status(error_code::id_conflict,
                  cat({"op ", id_str(in.id), " reuses ids this document holds with other content"}));
  if (in.id.counter + len - 1 <= known) {
    mark_known_prefix();
    return step::duplicate;
  }
  std::optional<operation> trimmed;
  std::uint64_t op_len = len;
  if (in.id.counter <= known) {
    trimmed = trim_front(in, known - in.id.counter + 1);
    op_len = len - (known - in.id.counter + 1);
  }
  const operation& op = trimmed ? *trimmed : in;
  if (auto dep = missing_dependency(op, s.vv_)) {
    if (fresh) {
      if (s.pending_.contains(op)) return step::buffered;
      if (s.pending_.size() >= s.options_.max_pending_ops || s.pending_.ids() + op_len > s.options_.max_pending_ids)
        return status(error_code::pending_buffer_full,
                      cat({"causal buffer holds ", std::to_string(s.pending_.size()), " ops waiting for dependencies"}));
    }
    s.pending_.add(*dep, op);
    mark_known_prefix();
    return step::buffered;
  }
  status st = apply_ready(s, op, op_len, changes);
  if (!st.ok()) return st;
  mark_known_prefix();
  if (applied) applied->push_back(op);
  return step::applied;
}

}  // namespace

result<apply_outcome> document::apply(const operation& op, std::vector<text_change>* changes,
                                      std::vector<operation>* applied) {
  sequence_state& s = *s_;
  status st = validate_structure(op, s.options_.max_op_ids);
  if (!st.ok()) return st;
  auto first = submit(s, op, changes, applied, true);
  if (!first.ok()) return first.error();
  apply_outcome out;
  if (first.value() != step::applied) {
    out.result = first.value() == step::buffered ? apply_outcome::state::buffered : apply_outcome::state::duplicate;
    return out;
  }
  out.ops_applied = 1;
  if (s.pending_.size() == 0) return out;  // the usual case: nothing waits
  // Wake everything that waited on a replica that advanced, transitively.
  std::vector<replica_id> advanced{op.id.replica};
  std::vector<operation> ready;
  while (!advanced.empty() && s.pending_.size() > 0) {
    replica_id r = advanced.back();
    advanced.pop_back();
    ready.clear();
    s.pending_.take_ready(r, s.vv_.get(r), &ready);
    for (const operation& w : ready) {
      auto res = submit(s, w, changes, applied, false);
      // A buffered op that turns out invalid is dropped: its sender was told
      // it was buffered, and no later op can make it valid.
      if (res.ok() && res.value() == step::applied) {
        ++out.ops_applied;
        advanced.push_back(w.id.replica);
      }
    }
  }
  return out;
}

// Largest op ops_since() makes, so that any receiver's max_op_ids accepts it.
constexpr std::uint64_t max_emitted_ids = 65536;

std::vector<operation> document::ops_since(const version_vector& peer) const {
  const sequence_state& s = *s_;
  std::vector<operation> out;
  const auto& targets = s.log_.targets();
  for (const detail::log_entry& e : s.log_.entries()) {
    replica_id g = s.globals_[e.replica];
    std::uint64_t have = peer.get(g);
    std::uint64_t end = std::uint64_t{e.counter} + e.length;  // exclusive
    if (end - 1 <= have) continue;
    std::uint64_t from = std::max<std::uint64_t>(e.counter, have + 1);
    if (!e.is_erase) {
      // One insert per run piece: runs may have been split since.
      for (std::uint64_t c = from; c < end;) {
        detail::cursor cur = s.tree_.locate(ref{e.replica, static_cast<std::uint32_t>(c)});
        if (cur.at_end()) break;  // impossible for a consistent log
        const detail::run& r = s.tree_.run_at(cur);
        std::uint64_t k = std::min<std::uint64_t>({r.length - cur.offset, end - c, max_emitted_ids});
        operation op;
        op.id = op_id{g, c};
        ref l = r.left_of(cur.offset);
        if (!l.none()) op.origin_left = s.to_id(l);
        if (!r.right.none()) op.origin_right = s.to_id(r.right);
        if (r.deleted) {
          // The peer lacks these characters, so it lacks their deletion too,
          // which follows in this answer: their text need not travel.
          op.kind = op_kind::tombstone;
          op.count = k;
        } else {
          op.kind = op_kind::insert;
          std::string_view txt = s.tree_.arena_text(r.text_offset, r.text_bytes);
          std::size_t b0 = detail::byte_offset(txt, cur.offset);
          std::size_t b1 = detail::byte_offset(txt, cur.offset + k);
          op.text.assign(txt.substr(b0, b1 - b0));
        }
        out.push_back(std::move(op));
        c += k;
      }
      continue;
    }
    // The entry's deletions from `from` on, in ops of at most max_emitted_ids ids.
    operation op;
    op.kind = op_kind::erase;
    op.id = op_id{g, from};
    std::uint64_t in_op = 0;
    auto add = [&](replica_id tg, std::uint64_t counter, std::uint64_t length) {
      op.targets.push_back(id_span{tg, counter, length});
      in_op += length;
      if (in_op >= max_emitted_ids) {
        out.push_back(op);
        op.targets.clear();
        op.id.counter += in_op;
        in_op = 0;
      }
    };
    std::uint64_t skip = from - e.counter;
    for (std::uint32_t i = e.targets_begin; i < e.targets_begin + e.targets_count; ++i) {
      const detail::target_span& t = targets[i];
      if (skip >= t.length) {
        skip -= t.length;
        continue;
      }
      replica_id tg = s.globals_[t.replica];
      if (t.reverse) {
        // Backspacing deleted t.counter, t.counter-1, ...; targets keep the
        // order of the erase's ids (a receiver that knows a prefix trims by
        // it), so a reversed run goes out as single characters.
        for (std::uint64_t k = skip; k < t.length; ++k) add(tg, t.counter - k, 1);
      } else {
        for (std::uint64_t c = t.counter + skip; c < std::uint64_t{t.counter} + t.length;) {
          std::uint64_t n = std::min<std::uint64_t>(std::uint64_t{t.counter} + t.length - c, max_emitted_ids - in_op);
          add(tg, c, n);
          c += n;
        }
      }
      skip = 0;
    }
    if (!op.targets.empty()) out.push_back(std::move(op));
  }
  return out;
}

std::string document::check_invariants() const {
  const sequence_state& s = *s_;
  std::string e = s.tree_.check_invariants();
  if (!e.empty()) return e;
  std::uint64_t ids = 0;
  for (const auto& [g, n] : s.vv_.entries()) {
    std::uint32_t r = s.local_of(g);
    if (r == detail::no_replica) return "version vector names an unknown replica";
    if (s.tree_.known_counters(r) != n) return "id index and version vector disagree";
    ids += n;
  }
  std::uint64_t logged = 0;
  for (const auto& le : s.log_.entries()) logged += le.length;
  if (logged != ids) return "op log does not cover the version vector";
  return {};
}

}  // namespace weft
