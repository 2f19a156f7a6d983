// weft — a C++ client for weft-server (docs/protocol.md).
//
// A `client` holds a full replica of every document it opens, talks to the
// server over one WebSocket, syncs by version vector in both directions,
// sends local edits, applies remote ones, relays presence, tracks
// acknowledgements and reconnects with exponential backoff and jitter.
//
// Threading contract: every client runs on a `network` (I/O threads). The
// documents are owned by the network side: touch them only inside edit() /
// read(), which run your function on the client's serialized executor. All
// handlers are called there too, one at a time per client. Every public
// method of client is thread-safe and non-blocking, so an editor's UI thread
// can call edit() and receive changes through the handlers (post them back
// to its own thread).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "weft/document.h"

namespace weft {

/// I/O threads shared by any number of clients. Destroy after its clients.
class network {
 public:
  /// Starts `threads` I/O threads.
  explicit network(unsigned threads = 1);
  /// Stops the threads (pending operations are abandoned).
  ~network();
  network(const network&) = delete;
  network& operator=(const network&) = delete;
  struct impl;
  impl& get() { return *p_; }

 private:
  std::unique_ptr<impl> p_;
};

struct client_options {
  std::string host = "127.0.0.1";  ///< server address (numeric or a name)
  std::uint16_t port = 8080;
  replica_id replica = 0;            ///< 0: a random id below 2^53
  std::string name = "weft-client";  ///< sent in hello
  std::string token;                 ///< access token sent in hello, when the server requires one
  bool binary = true;                ///< ops and acks as binary frames (~20 bytes a keystroke, not ~120)
  /// With binary frames, an empty replica asks for its document as one
  /// snapshot frame instead of the history as ops (far faster for a large
  /// document). on_remote then hears of it with no ops and one change: the
  /// insert of the whole text.
  bool snapshot = true;
  bool reconnect = true;             ///< reconnect after the connection drops
  unsigned reconnect_min_ms = 250;   ///< first backoff step (then doubling, with jitter)
  unsigned reconnect_max_ms = 10000;
  document_options document;         ///< options of every replica
};

enum class connection_state { connecting, syncing, online, offline, stopped };

/// Called on the client's executor; any may be left empty.
struct client_handlers {
  std::function<void(connection_state)> on_state;
  /// Every open document got its sync answer (after each (re)connect).
  std::function<void()> on_synced;
  /// Remote ops of `doc` the replica accepted (applied, buffered until their
  /// dependencies arrive, or already known), and the visible changes they
  /// made. An op the replica refuses is not passed on: on_error gets
  /// "invalid_op" for it.
  std::function<void(const std::string& doc, const std::vector<operation>& ops,
                     const std::vector<text_change>& changes)>
      on_remote;
  /// The server made this replica's ops of `doc` durable up to `counter`.
  std::function<void(const std::string& doc, std::uint64_t counter)> on_ack;
  /// Another connection's presence (state_json "null": gone).
  std::function<void(const std::string& doc, std::uint64_t session, const std::string& state_json)> on_presence;
  /// An error message from the server (protocol error code and text).
  std::function<void(const std::string& code, const std::string& message)> on_error;
  /// The server refused this client's ops of `doc` because their replica id
  /// belongs to another user (`forbidden`, auth on; a replica id reused from
  /// elsewhere, say). Nothing written under it would ever be accepted, so
  /// the client starts a new replica of `doc` under a fresh id by itself:
  /// it opens the document again, and once the server's state is loaded it
  /// carries over, under the new id, what this client wrote under the old
  /// one and the server never acknowledged (edits made meanwhile included):
  /// its characters after their nearest neighbour that both replicas show,
  /// its deletions of others' characters. Nothing typed here is lost, and
  /// nothing the id's owner wrote is undone. Called once the new id is in
  /// use; on_remote then reports how the text differs from the one shown
  /// (others' edits the old replica could not take), if it does.
  std::function<void(const std::string& doc, replica_id old_id, replica_id new_id)> on_replica_changed;
};

class client {
 public:
  client(network& net, client_options options, client_handlers handlers = {});
  /// Stops and waits until the client no longer runs anything. edit() and
  /// read() work still queued then (for instance asked for by a handler while
  /// the client stopped) is dropped, never run after this returns.
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// The replica id this client starts every document with.
  replica_id replica() const noexcept;
  /// The replica id `doc` is written under now: replica(), unless the server
  /// refused it (see on_replica_changed). Thread-safe.
  replica_id replica(const std::string& doc) const;
  /// Connects (and keeps reconnecting if options.reconnect).
  void start();
  /// Closes the connection; no reconnect.
  void stop();
  /// Opens `doc` (now, or on the next connect).
  void open(const std::string& doc);
  /// Runs `f` on the client's executor with the replica of `doc` (opened if
  /// needed); ops it appends to its second argument are sent to the server
  /// (or, offline, on the next sync). Use it for local edits:
  ///   c.edit("notes", [](document& d, std::vector<operation>& out) {
  ///     out.push_back(d.insert(0, "hi").value()); });
  void edit(const std::string& doc, std::function<void(document&, std::vector<operation>&)> f);
  /// Runs `f` on the client's executor with the replica of `doc` (read only).
  void read(const std::string& doc, std::function<void(const document&)> f);
  /// Sets this client's presence on `doc` (a JSON object, or "null").
  void set_presence(const std::string& doc, std::string state_json);
  /// Drops the connection as a network failure would (it reconnects if enabled).
  void drop_connection();
  /// This replica's counter acknowledged as durable for `doc` (thread-safe snapshot).
  std::uint64_t acked(const std::string& doc) const;

  struct impl;

 private:
  std::shared_ptr<impl> p_;
};

}  // namespace weft
