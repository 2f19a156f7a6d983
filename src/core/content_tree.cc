#include "core/content_tree.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <tuple>

#include "core/utf8.h"

namespace weft::detail {

namespace {

// Total order of positions for the integration scan; start and end of the
// document are below and above every character.
struct pos_key {
  std::int64_t block;
  std::uint32_t slot;
  std::uint32_t offset;
  friend auto operator<=>(const pos_key&, const pos_key&) = default;
};
constexpr pos_key begin_key{-1, 0, 0};
constexpr pos_key end_key{std::numeric_limits<std::int64_t>::max(), 0, 0};

pos_key key_of(cursor c) {
  if (c.at_end()) return end_key;
  return pos_key{static_cast<std::int64_t>(c.block), c.slot, c.offset};
}

}  // namespace

content_tree::content_tree(const std::vector<replica_id>* global_ids) : global_ids_(global_ids) {
  by_id_.push_back(std::make_unique<block>());
  blocks_.push_back(by_id_.back().get());
  vis_.push_back(0);
}

content_tree::content_tree(const content_tree& o, const std::vector<replica_id>* global_ids)
    : global_ids_(global_ids),
      vis_(o.vis_),
      index_(o.index_),
      arena_(o.arena_),
      visible_(o.visible_),
      total_(o.total_),
      cache_order_(o.cache_order_),
      cache_visible_(o.cache_visible_) {
  by_id_.reserve(o.by_id_.size());
  for (const auto& b : o.by_id_) by_id_.push_back(std::make_unique<block>(*b));
  blocks_.reserve(o.blocks_.size());
  for (const block* b : o.blocks_) blocks_.push_back(by_id_[b->id].get());
}

void content_tree::ensure_replica(std::uint32_t replica) {
  if (index_.size() <= replica) index_.resize(replica + 1);
}

std::uint32_t content_tree::known_counters(std::uint32_t replica) const noexcept {
  return replica < index_.size() ? static_cast<std::uint32_t>(index_[replica].size()) : 0;
}

void content_tree::note_non_characters(std::uint32_t replica, std::uint32_t n) {
  ensure_replica(replica);
  index_[replica].insert(index_[replica].end(), n, no_block);
}

void content_tree::index_set(std::uint32_t replica, std::uint32_t counter, std::uint32_t n,
                             std::uint32_t block_id) {
  auto& ix = index_[replica];
  std::size_t from = counter - 1;
  if (ix.size() < from + n) ix.resize(from + n, no_block);
  std::fill_n(ix.begin() + static_cast<std::ptrdiff_t>(from), n, block_id);
}

cursor content_tree::first() const {
  for (std::uint32_t b = 0; b < blocks_.size(); ++b)
    if (blocks_[b]->count > 0) return cursor{b, 0, 0};
  return cursor{};
}

cursor content_tree::next_run(cursor c) const {
  std::uint32_t b = c.block, s = c.slot + 1;
  while (b < blocks_.size()) {
    if (s < blocks_[b]->count) return cursor{b, s, 0};
    ++b;
    s = 0;
  }
  return cursor{};
}

std::uint64_t content_tree::visible_before_block(std::uint32_t order) {
  std::uint32_t b = cache_order_;
  std::uint64_t before = cache_visible_;
  while (b < order) before += vis_[b++];
  while (b > order) before -= vis_[--b];
  cache_order_ = b;
  cache_visible_ = before;
  return before;
}

std::uint64_t content_tree::visible_pos(cursor c) {
  if (c.at_end()) return visible_;
  const std::uint64_t pos = visible_before_block(c.block);
  const block& bl = blk(c.block);
  // The count before a slot is what locate_visible() caches: start from it
  // when it lies before `c`, and leave it at `c` for the next call (a remote
  // typist's next character lands in the same run).
  std::uint32_t s = 0;
  std::uint64_t in_block = 0;
  if (slot_stamp_ == stamp_ && slot_block_ == c.block && slot_ <= c.slot) {
    s = slot_;
    in_block = slot_before_;
  }
  for (; s < c.slot; ++s)
    if (!bl.runs[s].deleted) in_block += bl.runs[s].length;
  slot_stamp_ = stamp_;
  slot_block_ = c.block;
  slot_ = c.slot;
  slot_before_ = in_block;
  return pos + in_block + (bl.runs[c.slot].deleted ? 0 : c.offset);
}

cursor content_tree::locate_visible(std::uint64_t p) {
  std::uint32_t b = cache_order_;
  std::uint64_t before = cache_visible_;
  while (p >= before + vis_[b]) before += vis_[b++];
  while (p < before) before -= vis_[--b];
  cache_order_ = b;
  cache_visible_ = before;
  const block& bl = blk(b);
  const std::uint64_t in_block = p - before;
  std::uint64_t rel = in_block;
  std::uint32_t s = 0;
  // Start at the run found last time when nothing moved since (typing).
  if (slot_stamp_ == stamp_ && slot_block_ == b && in_block >= slot_before_) {
    s = slot_;
    rel -= slot_before_;
  }
  for (; s < bl.count; ++s) {
    const run& r = bl.runs[s];
    if (r.deleted) continue;
    if (rel < r.length) {
      slot_stamp_ = stamp_;
      slot_block_ = b;
      slot_ = s;
      slot_before_ = in_block - rel;
      return cursor{b, s, static_cast<std::uint32_t>(rel)};
    }
    rel -= r.length;
  }
  return cursor{};  // unreachable when p < visible()
}

cursor content_tree::locate(ref id) const {
  if (id.replica >= index_.size()) return cursor{};
  const auto& ix = index_[id.replica];
  if (id.counter == 0 || id.counter > ix.size()) return cursor{};
  std::uint32_t bid = ix[id.counter - 1];
  if (bid == no_block) return cursor{};
  const block& bl = *by_id_[bid];
  // Lookups cluster (an insert's left origin is usually the character typed
  // just before): try the slot found last time and the one after it before
  // scanning the block.
  if (hint_block_ == bid) {
    for (std::uint32_t s = hint_slot_; s < hint_slot_ + 2 && s < bl.count; ++s)
      if (bl.runs[s].contains(id)) return cursor{bl.order, s, id.counter - bl.runs[s].counter};
  }
  for (std::uint32_t s = 0; s < bl.count; ++s) {
    if (bl.runs[s].contains(id)) {
      hint_block_ = bid;
      hint_slot_ = s;
      return cursor{bl.order, s, id.counter - bl.runs[s].counter};
    }
  }
  return cursor{};
}

bool content_tree::all_characters(ref first, std::uint32_t n) const {
  if (first.replica >= index_.size() || first.counter == 0) return false;
  const auto& ix = index_[first.replica];
  if (static_cast<std::uint64_t>(first.counter) + n - 1 > ix.size()) return false;
  // No early exit: the loop vectorises.
  bool gap = false;
  for (const std::uint32_t *e = ix.data() + (first.counter - 1), *end = e + n; e != end; ++e) gap |= *e == no_block;
  return !gap;
}

bool content_tree::ids_free(ref first, std::uint32_t n) const {
  if (first.replica >= index_.size()) return true;
  const auto& ix = index_[first.replica];
  // Ids 1..ix.size() are indexed; counter 0 and ids past the end are free.
  const std::uint64_t lo = std::max<std::uint64_t>(first.counter, 1);
  const std::uint64_t hi = std::min<std::uint64_t>(std::uint64_t{first.counter} + n, std::uint64_t{ix.size()} + 1);
  bool used = false;
  for (std::uint64_t c = lo; c < hi; ++c) used |= ix[c - 1] != no_block;
  return !used;
}

void content_tree::pad_index(std::uint32_t replica, std::uint32_t n) {
  ensure_replica(replica);
  if (index_[replica].size() < n) index_[replica].resize(n, no_block);
}

ref content_tree::char_at(cursor c) const {
  if (c.at_end()) return ref{};
  return at(c).id_at(c.offset);
}

ref content_tree::char_before(cursor c) const {
  if (!c.at_end() && c.offset > 0) return at(c).id_at(c.offset - 1);
  std::uint32_t b, s;
  if (c.at_end()) {
    b = static_cast<std::uint32_t>(blocks_.size());
    s = 0;
  } else {
    b = c.block;
    s = c.slot;
  }
  while (true) {
    if (s > 0) {
      const run& r = blocks_[b]->runs[s - 1];
      return r.id_at(r.length - 1);
    }
    if (b == 0) return ref{};
    --b;
    s = blocks_[b]->count;
  }
}

void content_tree::add_visible(std::uint32_t order, std::int64_t delta) {
  vis_[order] = static_cast<std::uint32_t>(vis_[order] + delta);
  visible_ = static_cast<std::uint64_t>(static_cast<std::int64_t>(visible_) + delta);
  // The cached prefix counts every block before cache_order_.
  if (order < cache_order_) cache_visible_ = static_cast<std::uint64_t>(static_cast<std::int64_t>(cache_visible_) + delta);
}

void content_tree::recount(std::uint32_t order) {
  const block& bl = blk(order);
  std::uint32_t v = 0;
  for (std::uint32_t s = 0; s < bl.count; ++s)
    if (!bl.runs[s].deleted) v += bl.runs[s].length;
  vis_[order] = v;
}

void content_tree::split_block(std::uint32_t order) {
  ++stamp_;
  block& old = blk(order);
  auto fresh = std::make_unique<block>();
  block* nb = fresh.get();
  nb->id = static_cast<std::uint32_t>(by_id_.size());
  by_id_.push_back(std::move(fresh));
  std::uint32_t half = old.count / 2;
  nb->count = old.count - half;
  std::memcpy(static_cast<void*>(nb->runs), static_cast<const void*>(old.runs + half), sizeof(run) * nb->count);
  old.count = half;
  blocks_.insert(blocks_.begin() + order + 1, nb);
  vis_.insert(vis_.begin() + order + 1, 0);
  for (std::uint32_t i = order + 1; i < blocks_.size(); ++i) blocks_[i]->order = i;
  recount(order);
  recount(order + 1);
  for (std::uint32_t s = 0; s < nb->count; ++s) {
    const run& r = nb->runs[s];
    index_set(r.replica, r.counter, r.length, nb->id);
  }
  if (cache_order_ > order) {
    // The prefix before any block after `order` is unchanged; only its order moved.
    ++cache_order_;
  }
}

cursor content_tree::make_room(cursor c) {
  if (blk(c.block).count < block_capacity) return c;
  std::uint32_t half = blk(c.block).count / 2;
  split_block(c.block);
  if (c.slot >= half) {
    c.block += 1;
    c.slot -= half;
  }
  return c;
}

cursor content_tree::split_run(cursor c) {
  ++stamp_;
  c = make_room(c);
  block& bl = blk(c.block);
  run& r = bl.runs[c.slot];
  run right = r;
  std::string_view txt = arena_text(r.text_offset, r.text_bytes);
  std::uint32_t byte_off = (r.text_bytes == r.length) ? c.offset
                                                        : static_cast<std::uint32_t>(byte_offset(txt, c.offset));
  right.counter = r.counter + c.offset;
  right.length = r.length - c.offset;
  right.left = ref{r.replica, right.counter - 1};
  right.text_offset = r.text_offset + byte_off;
  right.text_bytes = r.text_bytes - byte_off;
  r.length = c.offset;
  r.text_bytes = byte_off;
  std::memmove(static_cast<void*>(bl.runs + c.slot + 2), static_cast<const void*>(bl.runs + c.slot + 1),
               sizeof(run) * (bl.count - c.slot - 1));
  bl.runs[c.slot + 1] = right;
  ++bl.count;
  return cursor{c.block, c.slot + 1, 0};
}

cursor content_tree::insert_at(cursor dest, run nr, std::string_view text) {
  if (dest.at_end()) {
    auto last = static_cast<std::uint32_t>(blocks_.size() - 1);
    dest = cursor{last, blk(last).count, 0};
  } else if (dest.offset > 0) {
    dest = split_run(dest);
  }
  const bool slot_cached = slot_stamp_ == stamp_;  // (a split above has voided it)
  ++stamp_;
  // Merge with the run just before when this continues it (the typing fast path).
  {
    std::uint32_t pb = dest.block, ps = dest.slot;
    bool have_prev = true;
    if (ps == 0) {
      if (pb == 0) {
        have_prev = false;
      } else {
        --pb;
        ps = blk(pb).count;
      }
    }
    if (have_prev && ps > 0) {
      run& p = blk(pb).runs[ps - 1];
      if (p.replica == nr.replica && p.counter + p.length == nr.counter && p.deleted == nr.deleted &&
          p.right == nr.right && (p.text_bytes == 0) == text.empty() &&
          nr.left == ref{p.replica, p.counter + p.length - 1} &&
          p.text_offset + p.text_bytes == arena_.size()) {
        arena_.append(text);
        std::uint32_t old_len = p.length;
        p.length += nr.length;
        p.text_bytes += static_cast<std::uint32_t>(text.size());
        if (!nr.deleted) add_visible(pb, nr.length);
        total_ += nr.length;
        index_set(nr.replica, nr.counter, nr.length, blk(pb).id);
        // Only run ps-1 grew: locate_visible's slot stays right, shifted
        // when it lies after that run in its block.
        if (slot_cached && slot_block_ == pb) {
          if (slot_ > ps - 1 && !nr.deleted) slot_before_ += nr.length;
          slot_stamp_ = stamp_;
        }
        return cursor{pb, ps - 1, old_len};
      }
    }
  }
  dest = make_room(dest);
  block& bl = blk(dest.block);
  nr.text_offset = static_cast<std::uint32_t>(arena_.size());
  nr.text_bytes = static_cast<std::uint32_t>(text.size());
  arena_.append(text);
  std::memmove(static_cast<void*>(bl.runs + dest.slot + 1), static_cast<const void*>(bl.runs + dest.slot),
               sizeof(run) * (bl.count - dest.slot));
  bl.runs[dest.slot] = nr;
  ++bl.count;
  if (!nr.deleted) add_visible(dest.block, nr.length);
  total_ += nr.length;
  index_set(nr.replica, nr.counter, nr.length, bl.id);
  return dest;
}

void content_tree::insert_local(std::uint64_t p, run& nr, std::string_view text) {
  cursor dest = p < visible_ ? locate_visible(p) : cursor{};
  nr.left = char_before(dest);
  nr.right = char_at(dest);
  insert_at(dest, nr, text);
}

bool content_tree::integrate(run nr, std::string_view text, std::uint64_t* visible_pos_out) {
  pos_key lk = begin_key;
  cursor start;
  if (nr.left.none()) {
    start = first();
  } else {
    cursor lc = locate(nr.left);
    if (lc.at_end()) return false;
    lk = key_of(lc);
    start = (lc.offset + 1 < at(lc).length) ? cursor{lc.block, lc.slot, lc.offset + 1} : next_run(lc);
  }
  cursor rc;
  pos_key rk = end_key;
  if (!nr.right.none()) {
    rc = locate(nr.right);
    if (rc.at_end()) return false;
    rk = key_of(rc);
    if (rk <= lk) return false;
  }
  const std::vector<replica_id>& g = *global_ids_;
  const replica_id mine = g[nr.replica];
  cursor i = start, dest = start;
  bool scanning = false;
  while (true) {
    if (!scanning) dest = i;
    if (i.at_end()) break;
    pos_key ik = key_of(i);
    if (ik >= rk) break;
    const run& o = at(i);
    ref ol = o.left_of(i.offset);
    int cmp_left;
    if (ol == nr.left) {
      cmp_left = 0;
    } else {
      pos_key ok = ol.none() ? begin_key : key_of(locate(ol));
      cmp_left = ok < lk ? -1 : (ok == lk ? 0 : 1);
    }
    if (cmp_left < 0) break;
    if (cmp_left == 0) {
      int cmp_right;
      if (o.right == nr.right) {
        cmp_right = 0;
      } else {
        pos_key ork = o.right.none() ? end_key : key_of(locate(o.right));
        cmp_right = ork < rk ? -1 : (ork == rk ? 0 : 1);
      }
      if (cmp_right < 0) {
        scanning = true;
      } else if (cmp_right == 0) {
        if (mine < g[o.replica]) break;
        scanning = false;
      } else {
        scanning = false;
      }
    }
    // Every later character of this run has its left origin inside the run,
    // i.e. after ours, so it is skipped without changing state: jump over
    // the rest of the run, or to the right origin if it lies inside it.
    if (!rc.at_end() && rc.block == i.block && rc.slot == i.slot && rc.offset > i.offset)
      i = rc;
    else
      i = next_run(i);
  }
  cursor placed = insert_at(dest, nr, text);
  if (visible_pos_out) *visible_pos_out = visible_pos(placed);
  return true;
}

void content_tree::erase_in_run(cursor c, std::uint32_t n) {
  ++stamp_;
  if (c.offset > 0) c = split_run(c);
  if (n < at(c).length) {
    // The split may move the run to a new block; the left part sits just before the right.
    cursor right = split_run(cursor{c.block, c.slot, n});
    c = cursor{right.block, right.slot - 1, 0};
  }
  run& r = at(c);
  r.deleted = 1;
  add_visible(c.block, -static_cast<std::int64_t>(r.length));
  // Deleting splits runs; glue the deleted piece back to deleted neighbours
  // from the same typing run, or every backspace would leave a run behind.
  if (c.slot + 1 < blk(c.block).count) merge_with_next(c.block, c.slot);
  if (c.slot > 0) merge_with_next(c.block, c.slot - 1);
}

bool content_tree::merge_with_next(std::uint32_t order, std::uint32_t slot) {
  ++stamp_;
  block& bl = blk(order);
  run& a = bl.runs[slot];
  const run& b = bl.runs[slot + 1];
  if (a.replica != b.replica || a.counter + a.length != b.counter || a.deleted != b.deleted || a.right != b.right ||
      (a.text_bytes == 0) != (b.text_bytes == 0) ||
      b.left != ref{a.replica, a.counter + a.length - 1} || a.text_offset + a.text_bytes != b.text_offset)
    return false;
  a.length += b.length;
  a.text_bytes += b.text_bytes;
  std::memmove(static_cast<void*>(bl.runs + slot + 1), static_cast<const void*>(bl.runs + slot + 2),
               sizeof(run) * (bl.count - slot - 2));
  --bl.count;
  return true;
}

void content_tree::erase_visible(std::uint64_t p, std::uint64_t n, std::vector<span_ref>* out) {
  while (n > 0) {
    cursor c = locate_visible(p);
    const run& r = at(c);
    std::uint32_t k = r.length - c.offset;
    if (k > n) k = static_cast<std::uint32_t>(n);
    ref first = r.id_at(c.offset);
    erase_in_run(c, k);
    if (out) {
      if (!out->empty() && out->back().replica == first.replica &&
          out->back().counter + out->back().length == first.counter)
        out->back().length += k;
      else
        out->push_back(span_ref{first.replica, first.counter, k});
    }
    n -= k;
  }
}

void content_tree::load(std::vector<run>& runs, std::string text, const std::vector<std::uint64_t>& ids) {
  ++stamp_;
  constexpr std::uint32_t fill = block_capacity * 3 / 4;
  arena_ = std::move(text);
  const bool ascii = count_cp(arena_) == arena_.size();
  const std::string_view all(arena_);
  if (index_.size() < ids.size()) index_.resize(ids.size());
  for (std::size_t r = 0; r < ids.size(); ++r) index_[r].assign(ids[r], no_block);
  by_id_.clear();
  blocks_.clear();
  vis_.clear();
  visible_ = total_ = 0;
  cache_order_ = 0;
  cache_visible_ = 0;
  std::size_t at = 0;
  block* bl = nullptr;
  for (run& r : runs) {
    if (!bl || bl->count == fill) {
      by_id_.push_back(std::make_unique<block>());
      bl = by_id_.back().get();
      bl->id = bl->order = static_cast<std::uint32_t>(blocks_.size());
      blocks_.push_back(bl);
      vis_.push_back(0);
    }
    r.text_offset = static_cast<std::uint32_t>(at);
    r.text_bytes = 0;
    if (!r.deleted) {
      const std::size_t bytes = ascii ? r.length : byte_offset(all.substr(at), r.length);
      r.text_bytes = static_cast<std::uint32_t>(bytes);
      at += bytes;
      vis_.back() += r.length;
      visible_ += r.length;
    }
    total_ += r.length;
    std::fill_n(index_[r.replica].data() + (r.counter - 1), r.length, bl->id);
    bl->runs[bl->count++] = r;
  }
  if (blocks_.empty()) {
    by_id_.push_back(std::make_unique<block>());
    blocks_.push_back(by_id_.back().get());
    vis_.push_back(0);
  }
}

std::string content_tree::text() const {
  std::string out;
  out.reserve(visible_);
  for (const block* b : blocks_)
    for (std::uint32_t s = 0; s < b->count; ++s)
      if (!b->runs[s].deleted) out.append(arena_, b->runs[s].text_offset, b->runs[s].text_bytes);
  return out;
}

std::size_t content_tree::memory_usage() const noexcept {
  std::size_t bytes = sizeof(*this) + by_id_.size() * (sizeof(block) + sizeof(void*) * 2 + sizeof(std::uint32_t));
  for (const auto& ix : index_) bytes += ix.capacity() * sizeof(std::uint32_t) + sizeof(ix);
  bytes += arena_.capacity();
  return bytes;
}

bool content_tree::origins_in_order() const {
  // Where `id` is relative to run `s` of block `b`: -1 before it, +1 after
  // it, 0 when it is no character or inside the run. The block comes from
  // the index; inside the run's own block only the slots on the side the
  // origin should be on are scanned, nearest first, and origins are near.
  auto side = [&](ref id, std::uint32_t b, std::uint32_t s, int want) -> int {
    if (id.replica >= index_.size() || id.counter == 0 || id.counter > index_[id.replica].size()) return 0;
    const std::uint32_t bid = index_[id.replica][id.counter - 1];
    if (bid == no_block) return 0;
    const block& bl = *by_id_[bid];
    if (bl.order != b) return bl.order < b ? -1 : 1;
    if (want < 0) {
      for (std::uint32_t k = s; k-- > 0;)
        if (bl.runs[k].contains(id)) return -1;
    } else {
      for (std::uint32_t k = s + 1; k < bl.count; ++k)
        if (bl.runs[k].contains(id)) return 1;
    }
    return 0;
  };
  ref before{};  // the last character of the run before, none at the start
  for (std::uint32_t b = 0; b < blocks_.size(); ++b) {
    const block& bl = *blocks_[b];
    for (std::uint32_t s = 0; s < bl.count; ++s) {
      const run& r = bl.runs[s];
      const run* next = s + 1 < bl.count ? &bl.runs[s + 1]
                        : b + 1 < blocks_.size() ? &blocks_[b + 1]->runs[0]
                                                 : nullptr;
      // An origin next to the run is in order by position: no lookup.
      if (!r.left.none() && r.left != before && side(r.left, b, s, -1) != -1) return false;
      if (!r.right.none() && !(next && r.right == next->id_at(0)) && side(r.right, b, s, 1) != 1) return false;
      before = r.id_at(r.length - 1);
    }
  }
  return true;
}

std::string content_tree::check_invariants() const {
  std::uint64_t vis = 0, tot = 0;
  for (std::uint32_t b = 0; b < blocks_.size(); ++b) {
    const block& bl = *blocks_[b];
    if (bl.order != b) return "block order mismatch";
    if (bl.count == 0 && blocks_.size() > 1) return "empty block in a non-empty list";
    std::uint32_t v = 0;
    for (std::uint32_t s = 0; s < bl.count; ++s) {
      const run& r = bl.runs[s];
      if (r.length == 0) return "empty run";
      if (r.deleted > 1) return "bad deleted flag";
      // Deleted runs may have no text (received as tombstones or from a snapshot).
      if (count_cp(arena_text(r.text_offset, r.text_bytes)) != r.length && !(r.deleted && r.text_bytes == 0))
        return "run text length mismatch";
      if (!r.deleted) v += r.length;
      tot += r.length;
      for (std::uint32_t k = 0; k < r.length; ++k) {
        std::uint32_t c = r.counter + k;
        if (r.replica >= index_.size() || c - 1 >= index_[r.replica].size() ||
            index_[r.replica][c - 1] != bl.id)
          return "id index does not point at the run's block";
      }
    }
    if (v != vis_[b]) return "block visible count mismatch";
    vis += v;
  }
  if (vis != visible_) return "visible total mismatch";
  if (tot != total_) return "total mismatch";
  return {};
}

}  // namespace weft::detail
