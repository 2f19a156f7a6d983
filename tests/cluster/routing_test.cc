// The routing of replication links on its own (src/server/routing.h).
#include <gtest/gtest.h>

#include "server/routing.h"

namespace weft::server {
namespace {

reported_links full_mesh(const std::set<std::string>& nodes, const std::set<std::string>& down = {}) {
  reported_links r;
  for (const auto& a : nodes) {
    auto& s = r[a];  // a node that is down is still known, with no links
    if (down.count(a)) continue;
    for (const auto& b : nodes)
      if (a != b && !down.count(b)) s.insert(b);
  }
  return r;
}

TEST(Routing, AllToAllReceivesFromTheOrigin) {
  auto up = upstream_by_origin(full_mesh({"a", "b", "c"}), "c", topology_kind::all, "");
  EXPECT_EQ(up, (std::map<std::string, std::string>{{"a", "a"}, {"b", "b"}}));
}

TEST(Routing, ARingOfFourUsesRingNeighboursAndRoutesAround) {
  auto up = upstream_by_origin(full_mesh({"a", "b", "c", "d"}), "c", topology_kind::ring, "");
  EXPECT_EQ(up, (std::map<std::string, std::string>{{"a", "b"}, {"b", "b"}, {"d", "d"}}));
  auto around = upstream_by_origin(full_mesh({"a", "b", "c", "d"}, {"b"}), "c", topology_kind::ring, "");
  EXPECT_EQ(around, (std::map<std::string, std::string>{{"a", "d"}, {"d", "d"}}));
}

TEST(Routing, EveryNodeGetsEachOriginFromExactlyOneTreeParent) {
  // The trees every node computes agree: following upstream links from any
  // node reaches the origin without a cycle.
  std::set<std::string> nodes{"a", "b", "c", "d", "e", "f"};
  for (auto kind : {topology_kind::all, topology_kind::ring, topology_kind::star})
    for (const auto& origin : nodes) {
      for (const auto& start : nodes) {
        if (start == origin) continue;
        std::string at = start;
        int hops = 0;
        while (at != origin && hops < 10) {
          auto up = upstream_by_origin(full_mesh(nodes), at, kind, "c");
          ASSERT_TRUE(up.count(origin));
          at = up[origin];
          ++hops;
        }
        EXPECT_EQ(at, origin);
        EXPECT_LE(hops, kind == topology_kind::ring ? 3 : 2);
      }
    }
}

TEST(Routing, AStarUsesTheHubAndRoutesAroundIt) {
  auto up = upstream_by_origin(full_mesh({"a", "b", "c", "h"}), "a", topology_kind::star, "h");
  EXPECT_EQ(up, (std::map<std::string, std::string>{{"b", "h"}, {"c", "h"}, {"h", "h"}}));
  auto around = upstream_by_origin(full_mesh({"a", "b", "c", "h"}, {"h"}), "a", topology_kind::star, "h");
  EXPECT_EQ(around, (std::map<std::string, std::string>{{"b", "b"}, {"c", "c"}}));
}

TEST(Routing, ALinkCountsOnlyWhenBothEndsReportIt) {
  reported_links r{{"a", {"b"}}, {"b", {}}};
  EXPECT_TRUE(upstream_by_origin(r, "b", topology_kind::all, "").empty());
}

}  // namespace
}  // namespace weft::server
