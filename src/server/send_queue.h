// The FIFO of frames waiting to be written to one connection.
//
// Why not std::deque: libstdc++'s deque allocates ~600 bytes on construction
// even when empty, and most connections are idle with nothing queued. This
// queue holds no memory while empty.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace weft::server {

/// A FIFO of shared frames. Not thread-safe: used on one connection's strand.
class send_queue {
 public:
  using frame = std::shared_ptr<const std::string>;

  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }
  /// Slots the queue holds, sent ones not yet compacted away included: what
  /// its memory grows with (tests check it stays bounded).
  std::size_t slots() const noexcept { return items_.size(); }
  /// The oldest frame. Precondition: !empty().
  const frame& front() const noexcept { return items_[head_]; }
  void push_back(frame f) { items_.push_back(std::move(f)); }
  /// Removes the oldest frame. Precondition: !empty().
  void pop_front() {
    items_[head_++].reset();
    if (empty()) {
      clear();
    } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
      // A connection that never drains must not grow the vector forever:
      // drop the sent slots (amortised O(1): at least half are sent ones).
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  /// Keeps the `n` oldest frames and drops the rest.
  void keep_first(std::size_t n) {
    if (n < size()) items_.resize(head_ + n);
    if (empty()) clear();
  }

 private:
  // Drained: give the slots back. An idle connection then holds nothing; a
  // busy one pays one small allocation per burst.
  void clear() {
    std::vector<frame>().swap(items_);
    head_ = 0;
  }

  std::vector<frame> items_;
  std::size_t head_ = 0;  // items_[0, head_) are already sent (and reset)
};

}  // namespace weft::server
