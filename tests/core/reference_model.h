// A deliberately naive, obviously-correct reference of the same CRDT: one
// array entry per character, linear searches, and the YjsMod/FugueMax
// integration loop written exactly as published (Gentle's reference-crdts).
// Tests compare the optimised document against it.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "weft/operation.h"
#include "weft/unicode.h"

namespace weft::test {

class reference_model {
 public:
  /// REQUIRES: ops arrive in a causal order.
  void apply(const operation& op) {
    if (op.kind == op_kind::erase) {
      for (const auto& t : op.targets)
        for (std::uint64_t k = 0; k < t.length; ++k) items_[find(op_id{t.replica, t.counter + k})].deleted = true;
      return;
    }
    const bool tomb = op.kind == op_kind::tombstone;
    std::uint64_t n = op.length();
    for (std::uint64_t i = 0; i < n; ++i) {
      std::size_t b = tomb ? 0 : utf8_offset_of_code_point(op.text, i);
      std::size_t e = tomb ? 0 : utf8_offset_of_code_point(op.text, i + 1);
      item it{op_id{op.id.replica, op.id.counter + i},
              i == 0 ? op.origin_left : std::optional<op_id>(op_id{op.id.replica, op.id.counter + i - 1}),
              op.origin_right, op.text.substr(b, e - b), tomb};
      integrate(it);
    }
  }

  /// Applies ops in any order: buffers an op until its dependencies are
  /// known, ignores ops already applied, and applies only the unknown part of
  /// a partly known op.
  void deliver(const operation& op) {
    pending_.push_back(op);
    for (bool progress = true; progress;) {
      progress = false;
      for (std::size_t i = 0; i < pending_.size(); ++i) {
        const operation& p = pending_[i];
        if (p.kind == op_kind::tombstone && p.id.counter <= vv_[p.id.replica]) {
          // Known characters that a tombstone names are deleted.
          std::uint64_t k = std::min(p.length(), vv_[p.id.replica] - p.id.counter + 1);
          for (std::uint64_t i = 0; i < k; ++i) {
            auto at = find(op_id{p.id.replica, p.id.counter + i});
            if (at >= 0) items_[static_cast<std::size_t>(at)].deleted = true;
          }
        }
        if (p.id.counter + p.length() - 1 <= vv_[p.id.replica]) {
          pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
          progress = true;
          break;
        }
        operation q = p;
        if (q.id.counter <= vv_[q.id.replica]) q = trim(q, vv_[q.id.replica] - q.id.counter + 1);
        if (!ready(q)) continue;
        pending_.erase(pending_.begin() + static_cast<std::ptrdiff_t>(i));
        apply(q);
        vv_[q.id.replica] = q.id.counter + q.length() - 1;
        progress = true;
        break;
      }
    }
  }

  /// Forgets buffered ops (as a replica reloaded from a snapshot does).
  void drop_pending() { pending_.clear(); }

  std::string text() const {
    std::string s;
    for (const auto& it : items_)
      if (!it.deleted) s += it.ch;
    return s;
  }

 private:
  struct item {
    op_id id;
    std::optional<op_id> left, right;
    std::string ch;
    bool deleted;
  };

  static operation trim(const operation& op, std::uint64_t k) {
    operation t = op;
    t.id.counter += k;
    if (op.kind != op_kind::erase) {
      t.origin_left = op_id{op.id.replica, op.id.counter + k - 1};
      if (op.kind == op_kind::insert)
        t.text = op.text.substr(utf8_offset_of_code_point(op.text, k));
      else
        t.count = op.count - k;
      return t;
    }
    t.targets.clear();
    for (auto s : op.targets) {
      if (k >= s.length) {
        k -= s.length;
        continue;
      }
      s.counter += k;
      s.length -= k;
      k = 0;
      t.targets.push_back(s);
    }
    return t;
  }
  bool known(op_id id) const {
    if (find(id) >= 0) return true;
    return false;
  }
  bool ready(const operation& op) {
    if (vv_[op.id.replica] != op.id.counter - 1) return false;
    if (op.kind != op_kind::erase) return (!op.origin_left || known(*op.origin_left)) && (!op.origin_right || known(*op.origin_right));
    for (const auto& t : op.targets)
      for (std::uint64_t k = 0; k < t.length; ++k)
        if (!known(op_id{t.replica, t.counter + k})) return false;
    return true;
  }
  std::vector<operation> pending_;
  std::map<replica_id, std::uint64_t> vv_;

  std::ptrdiff_t find(op_id id) const {
    for (std::size_t i = 0; i < items_.size(); ++i)
      if (items_[i].id == id) return static_cast<std::ptrdiff_t>(i);
    return -1;
  }
  std::ptrdiff_t index_of_left(const std::optional<op_id>& o) const { return o ? find(*o) : -1; }
  std::ptrdiff_t index_of_right(const std::optional<op_id>& o) const {
    return o ? find(*o) : static_cast<std::ptrdiff_t>(items_.size());
  }

  void integrate(const item& it) {
    std::ptrdiff_t left = index_of_left(it.left);
    std::ptrdiff_t dest = left + 1;
    std::ptrdiff_t right = index_of_right(it.right);
    bool scanning = false;
    for (std::ptrdiff_t i = dest;; ++i) {
      if (!scanning) dest = i;
      if (i == static_cast<std::ptrdiff_t>(items_.size())) break;
      if (i == right) break;
      const item& o = items_[static_cast<std::size_t>(i)];
      std::ptrdiff_t oleft = index_of_left(o.left);
      std::ptrdiff_t oright = index_of_right(o.right);
      if (oleft < left) break;
      if (oleft == left) {
        if (oright < right) {
          scanning = true;
          continue;
        }
        if (oright == right) {
          if (it.id.replica < o.id.replica) break;
          scanning = false;
          continue;
        }
        scanning = false;
        continue;
      }
    }
    items_.insert(items_.begin() + dest, it);
  }

  std::vector<item> items_;
};

}  // namespace weft::test
