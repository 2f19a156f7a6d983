// Threads that type into weft::client documents like people (fast): words
// at random places, some deletes, a pause after each keystroke. For the
// crash, kill and scale-out tests, which type while servers die.
#pragma once

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "weft/client.h"

namespace weft::test {

class typists {
 public:
  struct target {
    client* c;
    std::string doc;
  };
  /// Starts one thread per target. Each edit deletes a character with
  /// probability 1/`erase_one_in` once the text is longer than `erase_above`
  /// (never when `erase_one_in` is 0), else inserts a 1..`max_word` letter
  /// word; then sleeps `min_pause_ms` + [0, `pause_spread_ms`).
  struct options {
    unsigned seed = 1;
    unsigned erase_one_in = 5;
    std::uint64_t erase_above = 20;
    unsigned max_word = 6;
    unsigned min_pause_ms = 2;
    unsigned pause_spread_ms = 6;
    int max_edits = 1 << 30;  ///< per thread
  };
  typists(std::vector<target> targets, options o) : targets_(std::move(targets)) {
    for (std::size_t i = 0; i < targets_.size(); ++i)
      threads_.emplace_back([this, i, o] {
        std::mt19937 rng(static_cast<unsigned>(i) * 7919u + o.seed);
        for (int n = 0; n < o.max_edits && typing_; ++n) {
          // The edit runs later on the client's thread: it gets numbers, not
          // this thread's generator (which is gone once typing stops).
          const std::uint32_t r[4] = {static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng()),
                                      static_cast<std::uint32_t>(rng()), static_cast<std::uint32_t>(rng())};
          targets_[i].c->edit(targets_[i].doc, [r, o](document& d, std::vector<operation>& out) {
            const std::uint64_t len = d.length();
            if (o.erase_one_in && len > o.erase_above && r[0] % o.erase_one_in == 0) {
              auto op = d.erase(r[1] % (len - 1), 1);
              if (op.ok()) out.push_back(op.value());
            } else {
              std::string word(1 + r[2] % o.max_word, static_cast<char>('a' + r[3] % 26));
              auto op = d.insert(len ? r[1] % (len + 1) : 0, word);
              if (op.ok()) out.push_back(op.value());
            }
          });
          std::this_thread::sleep_for(std::chrono::milliseconds(o.min_pause_ms + rng() % o.pause_spread_ms));
        }
      });
  }
  ~typists() { stop(); }
  /// Stops typing and joins the threads.
  void stop() {
    typing_ = false;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

 private:
  std::vector<target> targets_;
  std::atomic<bool> typing_{true};
  std::vector<std::thread> threads_;
};

}  // namespace weft::test
