// The SQLite storage on its own: what it refuses to do silently.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <random>

#include "server/metrics.h"
#include "server/storage.h"

namespace weft::test {
namespace {

TEST(Storage, AStoredBatchIsNeverReplaced) {
  auto dir = std::filesystem::temp_directory_path() / ("weft-storage-test-" + std::to_string(std::random_device{}()));
  server::metrics m;
  auto st = server::storage::open(dir.string(), &m);
  ASSERT_TRUE(st.ok()) << st.error().to_string();
  auto& store = *st.value();
  auto append = [&](std::uint64_t seq, std::string bytes) {
    std::promise<status> p;
    auto f = p.get_future();
    store.append("doc", seq, std::move(bytes), [&p](status s) { p.set_value(s); });
    return f.get();
  };
  EXPECT_TRUE(append(1, "first").ok());
  // The same key again, with other bytes: a bug elsewhere (two writers of one
  // document) must surface as an error, not overwrite what was acknowledged.
  status again = append(1, "other");
  EXPECT_FALSE(again.ok());
  EXPECT_NE(again.detail().find("UNIQUE"), std::string::npos) << again.to_string();
  EXPECT_TRUE(append(2, "second").ok());  // the storage goes on
  std::promise<result<server::stored_document>> loaded;
  auto lf = loaded.get_future();
  store.load("doc", [&loaded](result<server::stored_document> r) { loaded.set_value(std::move(r)); });
  auto d = lf.get();
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d.value().batches.size(), 2u);
  EXPECT_EQ(d.value().batches[0].second, "first");
  EXPECT_EQ(d.value().batches[1].second, "second");
  st.value().reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace weft::test
