#include "core/op_log.h"

namespace weft::detail {

void op_log::append_insert(std::uint32_t replica, std::uint32_t counter, std::uint32_t length) {
  if (!entries_.empty()) {
    log_entry& last = entries_.back();
    if (!last.is_erase && last.replica == replica && last.counter + last.length == counter) {
      last.length += length;
      return;
    }
  }
  entries_.push_back(log_entry{replica, counter, length, 0, 0, 0});
}

void op_log::begin_erase(std::uint32_t replica, std::uint32_t counter) {
  if (!entries_.empty()) {
    log_entry& last = entries_.back();
    if (last.is_erase && last.replica == replica && last.counter + last.length == counter) {
      return;
    }
  }
  entries_.push_back(log_entry{replica, counter, 0, 1, static_cast<std::uint32_t>(targets_.size()), 0});
}

void op_log::add_erase_target(std::uint32_t replica, std::uint32_t counter, std::uint32_t length) {
  log_entry& e = entries_.back();
  e.length += length;
  if (e.targets_count > 0) {
    target_span& t = targets_.back();
    if (t.replica == replica) {
      if ((!t.reverse || t.length == 1) && t.counter + t.length == counter) {
        t.reverse = 0;
        t.length += length;
        return;
      }
      // Backspacing: single characters walking left.
      if (length == 1 && (t.reverse || t.length == 1) && t.counter - t.length == counter && counter != 0) {
        t.reverse = 1;
        t.length += 1;
        return;
      }
    }
  }
  targets_.push_back(target_span{replica, counter, length, 0});
  ++e.targets_count;
}

}  // namespace weft::detail
