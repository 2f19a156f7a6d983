// Databases written by older weft-servers must keep loading: each
// tests/data/fixtures/store-v<N>.sqlite is a SQLite store exactly as schema
// version N wrote it (never rewritten once committed). The test opens a copy
// (which may migrate it), rebuilds every document from its snapshot and log
// and compares with what the store held when the fixture was made.
//
// WEFT_UPDATE_GOLDEN=1 runs the generator below with the current code; it
// writes store-v<current schema>.sqlite when that file does not exist yet
// and prints the fixtures[] row to add (docs/encoding.md, "Pinned formats").
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "server/metrics.h"
#include "server/storage.h"
#include "storage_calls.h"
#include "weft/document.h"
#include "weft/encoding.h"

namespace weft::test {
namespace {

namespace fs = std::filesystem;

const fs::path fixtures_dir = fs::path(WEFT_TEST_DATA_DIR) / "fixtures";

// The replica id weft-server's rooms use (src/server/room.cc).
constexpr replica_id server_replica = 0;

// The generator's typists.
constexpr replica_id ana = 0x1f2e3d, ben = 0x4c5b6a, cy = (std::uint64_t{1} << 53) - 5, dora = 777;
constexpr replica_id eve = 0xe5e, fay = 0xfa7, gus = 42;

struct expected_doc {
  const char* doc;
  bool has_snapshot;
  std::size_t batches_after_snapshot;
  const char* text;
  std::vector<std::pair<replica_id, std::uint64_t>> version;
};

// What the generator's replicas held when store-v2.sqlite was made. Every
// fixture holds the same documents (the generator's scenario never changes).
const std::vector<expected_doc> expected_docs = {
    {"notes", true, 3, "… Grüße ¡hola! von Köln.\n日本語のメモ🙂 emoj", {{dora, 7}, {ana, 24}, {ben, 8}, {cy, 10}}},
    {"journal", false, 3, "𝄞 music\nïcödé ✓\nend", {{eve, 12}, {fay, 11}}},
    {"archive", true, 0, "archived ok", {{gus, 15}}},
};

// The feed as the fixture holds it: this node's own entries (olsn 1..10;
// those a snapshot covers are compacted) and one batch relayed from "us".
constexpr std::uint64_t own_batches = 10;
const char* const relayed_origin = "us~0badc0ffee0";
struct expected_feed_entry {
  std::uint64_t olsn;
  const char* doc;
};
const std::vector<expected_feed_entry> own_feed_after_6 = {{7, "journal"}, {8, "notes"}, {9, "notes"}, {10, "journal"}};

struct fixture_file {
  const char* name;
  int schema_version;
  const char* incarnation;  // meta's, random when the fixture was made: the origin key is "local~" + it
};
const std::vector<fixture_file> fixtures = {
    {"store-v2.sqlite", 2, "ab1ef0ce8b23"},
};

struct temp_dir {
  fs::path path = fs::temp_directory_path() / ("weft-fixture-store-" + std::to_string(std::random_device{}()));
  temp_dir() { fs::create_directories(path); }
  ~temp_dir() { fs::remove_all(path); }
};

std::unique_ptr<server::storage> open_store(const fs::path& dir, server::metrics& m) {
  auto st = server::storage::open(dir.string(), &m);
  if (!st.ok()) {
    ADD_FAILURE() << "cannot open " << dir << ": " << st.error().to_string();
    return nullptr;
  }
  return std::move(st.value());
}

server::stored_document must_load(server::storage& s, const std::string& doc) {
  auto r = load_and_wait(s, doc);
  EXPECT_TRUE(r.ok()) << doc << ": " << r.error().to_string();
  return r.ok() ? std::move(r.value()) : server::stored_document{};
}

// As weft-server's room loads a document: the snapshot, then every batch after it.
document rebuild(const std::string& name, const server::stored_document& d) {
  document doc(server_replica);
  if (!d.snapshot.empty()) {
    auto snap = document::decode_snapshot(d.snapshot, server_replica);
    EXPECT_TRUE(snap.ok()) << name << ": " << snap.error().to_string();
    if (snap.ok()) doc = std::move(snap.value());
  }
  for (const auto& [lsn, bytes] : d.batches) {
    auto ops = decode_ops(bytes);
    EXPECT_TRUE(ops.ok()) << name << " lsn " << lsn << ": " << ops.error().to_string();
    if (!ops.ok()) continue;
    for (const auto& op : ops.value()) {
      auto a = doc.apply(op);
      EXPECT_TRUE(a.ok()) << name << " lsn " << lsn << ": " << a.error().to_string();
    }
  }
  EXPECT_EQ(doc.pending_ops(), 0u) << name;
  return doc;
}

// PRAGMA user_version, read from the file header itself so that the
// committed fixture is never opened (SQLite could write beside a WAL database).
int header_user_version(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string header(100, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header.size()));
  if (!in || header.compare(0, 16, std::string("SQLite format 3\0", 16)) != 0) return -1;
  int v = 0;
  for (int i = 60; i < 64; ++i) v = (v << 8) | static_cast<unsigned char>(header[static_cast<std::size_t>(i)]);
  return v;
}

TEST(FixtureStore, EveryFixtureIsListedWithItsExpectations) {
  ASSERT_TRUE(fs::is_directory(fixtures_dir)) << fixtures_dir;
  const std::regex name("store-v([0-9]+)\\.sqlite");
  std::size_t found = 0;
  for (const auto& e : fs::directory_iterator(fixtures_dir)) {
    std::smatch m;
    const std::string file = e.path().filename().string();
    if (!std::regex_match(file, m, name)) continue;
    ++found;
    bool listed = false;
    for (const auto& f : fixtures) listed |= file == f.name;
    EXPECT_TRUE(listed) << file << " is not in fixtures[]: add the row WEFT_UPDATE_GOLDEN=1 printed";
  }
  EXPECT_EQ(found, fixtures.size()) << "a listed fixture is missing: fixtures of released formats are never deleted";
}

TEST(FixtureStore, OldDatabasesLoadWithTheirDocumentsAndFeed) {
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.name);
    const fs::path source = fixtures_dir / f.name;
    ASSERT_TRUE(fs::exists(source)) << source;
    EXPECT_EQ(header_user_version(source), f.schema_version) << "the file is not the format its name says";
    temp_dir dir;
    fs::copy_file(source, dir.path / "weft.db");
    server::metrics m;
    auto store = open_store(dir.path, m);
    ASSERT_TRUE(store);
    const std::string own_key = std::string("local~") + f.incarnation;
    EXPECT_EQ(store->origin_key(), own_key) << "the database's incarnation is kept";
    const server::origin_vector have = store->have();
    EXPECT_EQ(have, (server::origin_vector{{own_key, own_batches}, {relayed_origin, 1}}));

    for (const auto& want : expected_docs) {
      SCOPED_TRACE(want.doc);
      const auto d = must_load(*store, want.doc);
      EXPECT_EQ(!d.snapshot.empty(), want.has_snapshot);
      EXPECT_EQ(d.batches.size(), want.batches_after_snapshot);
      const document doc = rebuild(want.doc, d);
      EXPECT_EQ(doc.text(), want.text);
      EXPECT_EQ(doc.version().entries(), want.version);
    }

    // Entries a snapshot covers are compacted; the rest keep doc, origin and path.
    auto from_start = feed_and_wait(*store, own_key, 0);
    ASSERT_TRUE(from_start.ok()) << from_start.error().to_string();
    EXPECT_TRUE(from_start.value().compacted);
    auto page = feed_and_wait(*store, own_key, 6);
    ASSERT_TRUE(page.ok()) << page.error().to_string();
    ASSERT_EQ(page.value().entries.size(), own_feed_after_6.size());
    for (std::size_t i = 0; i < own_feed_after_6.size(); ++i) {
      const auto& e = page.value().entries[i];
      EXPECT_EQ(e.olsn, own_feed_after_6[i].olsn);
      EXPECT_EQ(e.doc, own_feed_after_6[i].doc);
      EXPECT_EQ(e.path, own_key);
      EXPECT_GT(e.ts_ms, 0);
      EXPECT_TRUE(decode_ops(e.batch).ok());
    }
    auto relayed = feed_and_wait(*store, relayed_origin, 0);
    ASSERT_TRUE(relayed.ok()) << relayed.error().to_string();
    ASSERT_EQ(relayed.value().entries.size(), 1u);
    EXPECT_EQ(relayed.value().entries[0].doc, "notes");
    EXPECT_EQ(relayed.value().entries[0].path, "other~1," + own_key);
  }
}

TEST(FixtureStore, OldDatabasesTakeNewEditsAndSnapshots) {
  for (const auto& f : fixtures) {
    SCOPED_TRACE(f.name);
    temp_dir dir;
    fs::copy_file(fixtures_dir / f.name, dir.path / "weft.db");
    server::metrics m;
    auto store = open_store(dir.path, m);
    ASSERT_TRUE(store);
    const std::string own_key = store->origin_key();
    // A client that loaded "notes" types at its end and at the start of "journal".
    std::string notes_text, journal_text;
    for (const char* name : {"notes", "journal"}) {
      const document loaded = rebuild(name, must_load(*store, name));
      auto client = document::decode_snapshot(loaded.encode_snapshot(), 0x5eed);
      ASSERT_TRUE(client.ok()) << client.error().to_string();
      const bool notes = std::string(name) == "notes";
      auto op = client.value().insert(notes ? client.value().length() : 0, notes ? " ✓" : "¶ ");
      ASSERT_TRUE(op.ok()) << op.error().to_string();
      ASSERT_TRUE(append_and_wait(*store, name, encode_ops(std::span<const operation>(&op.value(), 1))).ok());
      (notes ? notes_text : journal_text) = client.value().text();
    }
    EXPECT_EQ(store->have()[own_key], own_batches + 2);

    // The same after a restart, and a snapshot of the old document compacts its log.
    store.reset();
    store = open_store(dir.path, m);
    ASSERT_TRUE(store);
    const document notes = rebuild("notes", must_load(*store, "notes"));
    EXPECT_EQ(notes.text(), notes_text);
    EXPECT_EQ(notes_text, std::string(expected_docs[0].text) + " ✓");
    EXPECT_EQ(notes.version().get(0x5eed), 2u);
    EXPECT_EQ(rebuild("journal", must_load(*store, "journal")).text(), journal_text);
    EXPECT_EQ(journal_text, "¶ " + std::string(expected_docs[1].text));
    ASSERT_TRUE(snapshot_and_wait(*store, "notes", notes.encode_snapshot(), notes.version()).ok());
    const auto after = must_load(*store, "notes");
    EXPECT_TRUE(after.batches.empty());
    EXPECT_EQ(rebuild("notes", after).text(), notes_text);
  }
}

// ---- the generator (WEFT_UPDATE_GOLDEN=1) ------------------------------------

// C++ source for a string literal (the expectations above are pasted from it).
std::string cpp_literal(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '"' || c == '\\') out += std::string("\\") + c;
    else out += c;
  }
  return out + "\"";
}

// A typist's replica: it catches up with the server's copy before it types.
void catch_up(document& client, const document& server_copy) {
  for (const auto& op : server_copy.ops_since(client.version())) ASSERT_TRUE(client.apply(op).ok());
}

operation must(result<operation> r) {
  EXPECT_TRUE(r.ok()) << r.error().to_string();
  return r.ok() ? std::move(r.value()) : operation{};
}

// What a room does with a client's ops: apply them, then append them as one batch.
void commit(server::storage& s, document& server_copy, const std::string& doc, const std::vector<operation>& ops) {
  for (const auto& op : ops) ASSERT_TRUE(server_copy.apply(op).ok());
  ASSERT_TRUE(append_and_wait(s, doc, encode_ops(ops)).ok());
}

void snapshot(server::storage& s, const document& server_copy, const std::string& doc) {
  ASSERT_TRUE(snapshot_and_wait(s, doc, server_copy.encode_snapshot(), server_copy.version()).ok());
}

// The scenario every fixture holds: several replicas (one with a 53-bit id),
// concurrent inserts at one place, deletes, backspacing, non-ASCII text
// (2-, 3- and 4-byte UTF-8), documents with a snapshot and log entries after
// it, with only a log, and with only a snapshot, interleaved in the feed,
// a batch relayed from another region and a peer's confirmed progress.
// Changing it makes the expectations above wrong for every fixture: don't.
void generate(server::storage& s) {
  document notes(server_replica), journal(server_replica), archive(server_replica);
  document ana(test::ana), ben(test::ben), cy(test::cy), dora(test::dora);
  document eve(test::eve), fay(test::fay), gus(test::gus);

  commit(s, notes, "notes", {must(ana.insert(0, "Grüße aus Köln.\n"))});  // olsn 1
  commit(s, journal, "journal", {must(eve.insert(0, "Ünïcödé ✓\n"))});    // 2
  catch_up(ben, notes);
  catch_up(cy, notes);
  // Both at the end of the same text, neither seeing the other.
  commit(s, notes, "notes", {must(ben.insert(ben.length(), "日本語のメモ")), must(cy.insert(cy.length(), "🙂 emoji "))});  // 3
  commit(s, archive, "archive", {must(gus.insert(0, "archived — ok"))});  // 4
  catch_up(ana, notes);
  commit(s, notes, "notes", {must(ana.erase(6, 4)), must(ana.insert(6, "von "))});  // 5
  commit(s, archive, "archive", {must(gus.erase(8, 2))});  // 6
  // A row of another document stays above the ones the snapshots compact: at
  // this commit SQLite would give the next rows the lsns of deleted top rows
  // again, and a load skips rows at or below a snapshot's seq.
  catch_up(fay, journal);
  commit(s, journal, "journal", {must(fay.insert(0, "𝄞 music\n")), must(eve.erase(0, 2))});  // 7
  snapshot(s, archive, "archive");
  snapshot(s, notes, "notes");

  catch_up(cy, notes);
  commit(s, notes, "notes", {must(cy.insert(0, "… "))});  // 8
  catch_up(ben, notes);
  // Backspacing: two one-character deletes from the end.
  commit(s, notes, "notes", {must(ben.erase(ben.length() - 1, 1)), must(ben.erase(ben.length() - 1, 1))});  // 9
  catch_up(dora, notes);
  {
    const std::vector<operation> ops = {must(dora.insert(8, "¡hola! "))};
    for (const auto& op : ops) ASSERT_TRUE(notes.apply(op).ok());
    ASSERT_TRUE(replicate_and_wait(s, "notes", relayed_origin, 1, encode_ops(ops)).ok());
  }
  catch_up(fay, journal);
  commit(s, journal, "journal", {must(fay.insert(fay.length(), "end"))});  // 10
  s.record_peer_progress("us", {{s.origin_key(), own_batches}});
  s.flush();

  std::printf("expected_docs = {\n");
  for (const auto& [name, d, snap] : {std::tuple{"notes", &notes, true}, std::tuple{"journal", &journal, false},
                                      std::tuple{"archive", &archive, true}}) {
    std::string vv;
    for (const auto& [r, c] : d->version().entries())
      vv += (vv.empty() ? "" : ", ") + std::string("{") + std::to_string(r) + ", " + std::to_string(c) + "}";
    std::printf("    {\"%s\", %s, %zu, %s,\n     {%s}},\n", name, snap ? "true" : "false",
                must_load(s, name).batches.size(), cpp_literal(d->text()).c_str(), vv.c_str());
  }
  std::printf("};\n");
}

TEST(FixtureStore, GenerateWithTheCurrentCode) {
  const char* update = std::getenv("WEFT_UPDATE_GOLDEN");
  if (!update || std::string(update) != "1") GTEST_SKIP() << "WEFT_UPDATE_GOLDEN=1 writes a fixture";
  temp_dir dir;
  std::string incarnation;
  {
    server::metrics m;
    auto store = open_store(dir.path, m);
    ASSERT_TRUE(store);
    generate(*store);
    if (HasFatalFailure()) return;
    incarnation = store->origin_key().substr(store->origin_key().find('~') + 1);
  }
  // Closing the last connection checkpointed the WAL into the file: weft.db alone is the database.
  ASSERT_FALSE(fs::exists(dir.path / "weft.db-wal") && fs::file_size(dir.path / "weft.db-wal") > 0);
  const int version = header_user_version(dir.path / "weft.db");
  ASSERT_GT(version, 0);
  const fs::path out = fixtures_dir / ("store-v" + std::to_string(version) + ".sqlite");
  if (fs::exists(out)) {
    std::printf("%s exists: a fixture of a released format is never rewritten\n", out.c_str());
    return;
  }
  fs::create_directories(fixtures_dir);
  fs::copy_file(dir.path / "weft.db", out);
  std::printf("wrote %s; add to fixtures[]: {\"%s\", %d, \"%s\"},\n", out.c_str(), out.filename().c_str(), version,
              incarnation.c_str());
}

}  // namespace
}  // namespace weft::test
