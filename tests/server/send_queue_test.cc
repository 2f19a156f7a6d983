// send_queue: the per-connection FIFO of frames waiting to be written.
#include "server/send_queue.h"

#include <gtest/gtest.h>

namespace weft::server {
namespace {

send_queue::frame frame_of(int i) { return std::make_shared<const std::string>(std::to_string(i)); }

TEST(SendQueue, IsFirstInFirstOut) {
  send_queue q;
  EXPECT_TRUE(q.empty());
  for (int i = 0; i < 10; ++i) q.push_back(frame_of(i));
  EXPECT_EQ(q.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    ASSERT_FALSE(q.empty());
    EXPECT_EQ(*q.front(), std::to_string(i));
    q.pop_front();
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.size(), 0u);
}

TEST(SendQueue, ReleasesFramesAsTheyAreSent) {
  send_queue q;
  auto f = frame_of(1);
  q.push_back(f);
  q.push_back(frame_of(2));
  EXPECT_EQ(f.use_count(), 2);
  q.pop_front();
  EXPECT_EQ(f.use_count(), 1);  // a sent frame is not kept alive by the queue
}

TEST(SendQueue, NeverDrainingStaysInOrderAndBounded) {
  // A connection that always has something queued: the queue must keep its
  // order and not keep every frame it ever sent.
  send_queue q;
  int next_in = 0, next_out = 0;
  q.push_back(frame_of(next_in++));
  for (int round = 0; round < 100000; ++round) {
    q.push_back(frame_of(next_in++));
    if (round % 3 == 0) q.push_back(frame_of(next_in++));
    ASSERT_EQ(*q.front(), std::to_string(next_out++));
    q.pop_front();
    if (q.size() > 50) {
      ASSERT_EQ(*q.front(), std::to_string(next_out++));
      q.pop_front();
    }
    ASSERT_FALSE(q.empty());
    // Memory, not just the count of unsent frames, stays bounded: sent
    // slots are compacted away (without that, ~133,000 slots by the end).
    ASSERT_LE(q.slots(), 2 * q.size() + 64) << "round " << round;
  }
  EXPECT_LE(q.size(), 52u);
  while (!q.empty()) {
    EXPECT_EQ(*q.front(), std::to_string(next_out++));
    q.pop_front();
  }
  EXPECT_EQ(next_out, next_in);
}

TEST(SendQueue, KeepFirstDropsTheRest) {
  send_queue q;
  for (int i = 0; i < 5; ++i) q.push_back(frame_of(i));
  q.pop_front();
  q.keep_first(1);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(*q.front(), "1");
  q.push_back(frame_of(9));
  EXPECT_EQ(q.size(), 2u);
  q.keep_first(0);
  EXPECT_TRUE(q.empty());
  q.keep_first(3);  // keeping more than there is changes nothing
  EXPECT_TRUE(q.empty());
  q.push_back(frame_of(7));
  EXPECT_EQ(*q.front(), "7");
}

}  // namespace
}  // namespace weft::server
