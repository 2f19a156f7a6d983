// One replication link to another weft-server node (docs/replication.md):
// a WebSocket on /peer, dialled by one side, carrying batches both ways.
//
// As a sender it streams this node's changes feed to the peer: the batches
// of the origins the peer subscribed to here, from the peer's checkpoint on,
// never one whose path holds the peer, at most `window` unconfirmed at once.
// As a receiver it hands the peer's batches to their documents' rooms (which
// load a document nobody has open), and confirms what is durable here; the
// peer's checkpoint for this node is that confirmation, so it is written
// only once the data is durable (the order CouchDB's replicator keeps).
//
// All state lives on the link's strand; the counters the monitoring reads
// are atomics. Thread-safety: public methods may be called from any thread.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "protocol/peer_messages.h"
#include "server/limits.h"

namespace weft::server {

struct server_context;
struct token_claims;
class replicator;
class document_room;

class peer_link : public std::enable_shared_from_this<peer_link> {
 public:
  virtual ~peer_link();

  /// The peer's node id and origin key (known once the handshake is done).
  const std::string& peer_node() const noexcept { return peer_node_; }
  const std::string& peer_key() const noexcept { return peer_key_; }
  /// True when this node dialled the link.
  bool outbound() const noexcept { return outbound_; }

  /// Starts replicating once the replicator has accepted the link: sends the
  /// cluster's link state and this node's subscription.
  void start(protocol::peer::link_state state, std::vector<std::string> origins);
  /// Sends the cluster's link state (flooding).
  void send_link_state(protocol::peer::link_state state);
  /// Subscribes to these origin nodes at the peer (replacing the last list).
  void subscribe(std::vector<std::string> origins);
  /// This node's feed grew: send what the peer lacks.
  void feed_advanced();
  /// Closes the link, telling the peer why.
  void close(std::string reason);
  /// The peer token an inbound link was accepted with (auth on): kept so that
  /// revoking it (--auth-deny-list) closes the link. Call before it starts.
  void set_claims(std::shared_ptr<const token_claims> claims) { claims_ = std::move(claims); }
  /// The names of the inbound link's verified client certificate
  /// (--peer-client-ca): the hello's node id must be one of them. Call
  /// before it starts; empty: no certificate is asked for.
  void set_certificate_names(std::vector<std::string> names) { cert_names_ = std::move(names); }
  /// Closes the link when its peer token is now revoked. Thread-safe.
  void recheck_token();

  /// What the monitoring shows (readable from any thread).
  struct counters {
    std::atomic<std::uint64_t> bytes_sent{0}, bytes_received{0};
    std::atomic<std::uint64_t> batches_sent{0}, batches_received{0};
    std::atomic<std::uint64_t> duplicates{0};     // batches received that were held already
    std::atomic<std::uint64_t> errors{0};         // batches that could not be stored here
    std::atomic<std::uint64_t> rtt_us{0};
    std::atomic<std::uint64_t> lag_ms{0};         // age of the oldest batch the peer has not confirmed
    std::atomic<std::uint64_t> lag_batches{0};    // batches the peer has not confirmed
    std::atomic<std::uint64_t> queue{0};          // frames waiting to be written
    std::atomic<std::uint64_t> queue_bytes{0};    // their bytes
    std::atomic<std::int64_t> last_contact_ms{0}; // Unix ms
  };
  const counters& stats() const noexcept { return stats_; }
  /// The origin nodes this node receives over the link.
  std::vector<std::string> subscribed() const;

 protected:
  peer_link(server_context& ctx, replicator& rep, bool outbound, boost::asio::any_io_executor ex);

  // ---- the transport (peer_transport<Stream>) ----
  virtual void post(std::function<void()> f) = 0;
  virtual void read_message() = 0;
  virtual bool got_text() const = 0;
  virtual void write_message(const std::string& frame, bool text) = 0;
  virtual void close_transport(const std::string& reason) = 0;

  bool handshaken() const noexcept { return handshaken_; }
  /// The handshake (first message) and everything after it.
  void on_read(boost::system::error_code ec, std::string_view frame);
  void on_write(boost::system::error_code ec);
  /// Outbound: the hello to send first.
  void send_hello();
  /// Queues a frame (text: JSON control; else binary entries). Closes the
  /// link when more than max_outbox_bytes wait: the peer does not read.
  void send(std::string frame, bool text);
  void start_write();
  /// Ends the link without a goodbye the peer would have to read first
  /// (it is silent or does not read); `why` goes to the log and the replicator.
  void abandon(const char* transport_reason, const std::string& why);
  /// False while enough waits to be written that feed entries and document
  /// answers should wait in storage (on_write() resumes them).
  bool may_queue_more() const;
  void closed(const std::string& why);

  server_context& ctx_;
  replicator& rep_;
  const bool outbound_;
  std::shared_ptr<const token_claims> claims_;  // the inbound link's peer token (auth on), for revocation
  std::vector<std::string> cert_names_;          // the inbound link's client certificate names (--peer-client-ca)
  boost::asio::steady_timer timer_;

 private:
  void handle_control(const protocol::peer::message& m);
  void handle_hello(const protocol::peer::hello& h);
  void handle_entries(std::string_view frame);
  void entry_done(const std::shared_ptr<document_room>& room, const std::string& key, std::uint64_t olsn,
                  const status& st);
  void send_confirm();
  void handle_gap(const protocol::peer::gap& g);
  void handle_want_doc(const protocol::peer::want_doc& w);
  /// A per-document answer for the gap in `key` is durable (or failed);
  /// `doc`: one of its documents (false: handle_gap's own share).
  void gap_doc_done(const std::string& key, bool ok, bool doc = true);
  /// Asks for more documents of the gap in `key`, up to max_gap_asks at once.
  void ask_gap_docs(const std::string& key);
  /// Answers queued want_docs, up to max_gap_answers at once.
  void answer_want_docs();
  void answer_want_doc(const protocol::peer::want_doc& w);
  void pump();
  void on_feed(std::uint64_t generation, std::string key, result<struct feed_page> page);
  void on_confirm(const protocol::peer::origin_vector& have);
  void tick();
  void update_lag();
  /// The same, given this node's have() (pump has a copy already).
  void update_lag(const protocol::peer::origin_vector& have);
  void maybe_resume_reading();

  std::string peer_node_, peer_key_;
  counters stats_;
  // Strand only:
  bool handshaken_ = false, started_ = false, closed_ = false, writing_ = false, reading_paused_ = false;
  std::deque<std::pair<std::string, bool>> outbox_;
  std::size_t outbox_bytes_ = 0;
  bool sending_paused_ = false;  // pump() or answer_want_docs() held back by the outbox's size
  std::chrono::steady_clock::time_point write_began_;  // of the frame being written
  std::chrono::steady_clock::time_point last_heard_;
  // Receiving.
  std::size_t in_flight_ = 0;
  bool confirm_scheduled_ = false;
  protocol::peer::origin_vector last_confirmed_;  // what the last confirm said
  bool resubscribe_scheduled_ = false;
  mutable std::mutex subscribed_mu_;
  std::vector<std::string> subscribed_;  // guarded by subscribed_mu_
  // Sending.
  std::uint64_t generation_ = 0;  // bumped by each subscription from the peer
  std::set<std::string> origins_;  // origin nodes the peer wants from us
  protocol::peer::origin_vector cursor_;        // last olsn sent, per key
  protocol::peer::origin_vector peer_have_;     // what the peer confirmed
  bool feed_reading_ = false;
  std::string last_key_;  // round robin over keys
  struct sent {
    std::string key;
    std::uint64_t olsn;
    std::int64_t ts_ms;
  };
  std::deque<sent> unconfirmed_;
  std::chrono::steady_clock::time_point progress_recorded_{};
  std::set<std::string> gaps_reported_;
  // Documents named in gap messages to the peer, by key: the only ones its
  // want_doc may ask for (a peer cannot make this node load any document it
  // likes), with how many gaps named each and were not asked for yet.
  std::map<std::string, std::map<std::string, std::size_t>> offered_;
  std::deque<protocol::peer::want_doc> want_queue_;  // asked, not yet being answered
  std::size_t answering_ = 0;                        // being read or sent
  std::chrono::steady_clock::time_point behind_since_{};  // behind with nothing in flight since (epoch: not)
  // Receiving: per-document exchanges after gaps in the peer's feed, by key.
  struct gap_state {
    std::uint64_t resume = 0;
    std::size_t remaining = 0;
    bool failed = false;
    std::deque<std::string> todo;  // documents not asked for yet
    std::size_t asking = 0;        // asked, answer not durable yet
  };
  std::map<std::string, gap_state> gaps_;
};

/// Dials `url` (ws://HOST:PORT, or wss:// with the peer's certificate checked
/// against ctx.peer_tls and the host name) as this node; `done` gets the link
/// once the WebSocket upgrade succeeded, or an error saying which step failed.
void dial_peer(server_context& ctx, replicator& rep, const std::string& url,
               std::function<void(result<std::shared_ptr<peer_link>>)> done);

/// Accepts an inbound link on /peer: upgrades `stream`, waits for the hello,
/// checks the peer token (with auth on; `header_claims` are those of a valid
/// peer token the upgrade's Authorization header already carried), then
/// hands the link to the replicator. The link holds `slot` (its place under
/// --max-connections-per-address) for as long as it lives.
template <class Stream>
void accept_peer_link(Stream&& stream, boost::beast::http::request<boost::beast::http::string_body> req,
                      server_context& ctx, std::shared_ptr<const token_claims> header_claims, connection_slot slot,
                      std::vector<std::string> cert_names = {});

}  // namespace weft::server
