// Every JSON example in docs/protocol.md must be a message (or an op) that
// the codec decodes, and re-encoding it must decode to the same value: the
// page cannot drift from the code. An example may elide with "..." only
// where it says so; such lines are checked for everything but the elision.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "protocol/op_json_reader.h"
#include "weft/protocol.h"

namespace weft::test {
namespace {

using namespace protocol;

std::vector<std::pair<int, std::string>> json_example_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::pair<int, std::string>> out;
  std::string line;
  bool in_json = false;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.rfind("```", 0) == 0) {
      in_json = !in_json && line == "```json";
      continue;
    }
    if (in_json && !line.empty()) {
      out.emplace_back(n, line);
      continue;
    }
    // Inline examples in prose: `{"type":...}`.
    for (std::size_t at = 0; (at = line.find("`{\"", at)) != std::string::npos;) {
      std::size_t end = line.find('`', at + 1);
      if (end == std::string::npos) break;
      out.emplace_back(n, line.substr(at + 1, end - at - 1));
      at = end + 1;
    }
  }
  return out;
}

TEST(DocsExamples, EveryJsonExampleInProtocolMdDecodes) {
  auto lines = json_example_lines(std::string(WEFT_DOCS_DIR) + "/protocol.md");
  ASSERT_GE(lines.size(), 15u) << "docs/protocol.md lost its examples?";
  decoder d;
  int checked = 0;
  for (const auto& [n, raw] : lines) {
    std::string line = raw;
    // "[...]" stands for a list the page does not spell out: check the rest.
    for (std::size_t p; (p = line.find("[...]")) != std::string::npos;) line.replace(p, 5, "[]");
    for (std::size_t p; (p = line.find("eyJhbGciOi...")) != std::string::npos;) line.replace(p, 13, "eyJhbGciOi");
    SCOPED_TRACE("docs/protocol.md:" + std::to_string(n) + ": " + raw);
    if (line.rfind("{\"kind\"", 0) == 0) {  // an op on its own
      std::vector<operation> ops;
      auto st = read_ops("[" + line + "]", &ops);
      EXPECT_TRUE(st.ok()) << st.to_string();
      ++checked;
      continue;
    }
    // Types that exist in both directions ("ops", "presence") decode as either.
    auto c = d.client(line);
    if (auto* m = std::get_if<client_message>(&c)) {
      auto again = d.client(encode(*m));
      ASSERT_TRUE(std::holds_alternative<client_message>(again));
      EXPECT_EQ(std::get<client_message>(again), *m);
      ++checked;
      continue;
    }
    auto s = d.server(line);
    if (auto* m = std::get_if<server_message>(&s)) {
      auto again = d.server(encode(*m));
      ASSERT_TRUE(std::holds_alternative<server_message>(again));
      EXPECT_EQ(std::get<server_message>(again), *m);
      ++checked;
      continue;
    }
    ADD_FAILURE() << "neither a client nor a server message: " << std::get<decode_error>(c).message << " / "
                  << std::get<decode_error>(s).message;
  }
  EXPECT_EQ(checked, static_cast<int>(lines.size()));
}

}  // namespace
}  // namespace weft::test
