// A complete minimal embedding in C++ (docs/embedding.md): weft::client
// connects to a weft-server, keeps a replica of one document, appends a line
// to it from this (the "UI") thread, shows remote changes, and waits until the
// edit is durable on the server.
//
//   embed_cpp HOST PORT DOC "text to append"
#include <weft/client.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <string>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: embed_cpp HOST PORT DOC TEXT\n");
    return 2;
  }
  const std::string doc = argv[3];
  const std::string line = std::string(argv[4]) + "\n";

  weft::network net(1);  // the network's own thread
  weft::client_options options;
  options.host = argv[1];
  options.port = static_cast<std::uint16_t>(std::atoi(argv[2]));
  options.name = "embed_cpp";

  std::promise<void> synced;
  bool synced_once = false;
  weft::client_handlers handlers;
  // Handlers run on the client's executor, never on this thread: a real
  // editor posts the changes to its UI thread here.
  handlers.on_synced = [&] {
    if (!synced_once) synced.set_value();
    synced_once = true;
  };
  handlers.on_remote = [](const std::string&, const std::vector<weft::operation>&,
                          const std::vector<weft::text_change>& changes) {
    for (const auto& c : changes)
      std::printf("remote %s at %llu\n", c.type == weft::text_change::kind::insert ? "insert" : "erase",
                  static_cast<unsigned long long>(c.position));
  };
  weft::client client(net, options, handlers);
  client.open(doc);
  client.start();
  if (synced.get_future().wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "could not sync with %s:%s\n", argv[1], argv[2]);
    return 1;
  }

  // A local edit: positions are computed inside edit(), on the executor, so
  // they refer to the document as it is when the edit applies.
  std::promise<std::uint64_t> my_counter;
  client.edit(doc, [&](weft::document& d, std::vector<weft::operation>& out) {
    auto op = d.insert(d.length(), line);
    if (op.ok()) out.push_back(std::move(op).value());
    my_counter.set_value(d.version().get(d.replica()));
  });
  std::uint64_t want = my_counter.get_future().get();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (client.acked(doc) < want && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  if (client.acked(doc) < want) {
    std::fprintf(stderr, "the server did not acknowledge the edit\n");
    return 1;
  }

  std::promise<std::string> text;
  client.read(doc, [&](const weft::document& d) { text.set_value(d.text()); });
  std::printf("%s", text.get_future().get().c_str());
  return 0;
}
