// A swarm of bot typists: N weft::client replicas per document, typing like
// people (bursts at a moving cursor, backspaces, pastes, jumps, presence),
// on a schedule fixed in advance, measuring end-to-end latency of every op
// (its scheduled time until every other bot of the document has applied it),
// throughput, errors and reconnects, the server's and the bots' own CPU, and
// checking at the end that every replica and the server hold the same text.
//
// Against a cluster (several URLs, weft-server --peer), the bots of every
// document are spread over the nodes, so their ops reach each other through
// replication and the latencies include it (it is what users on different
// nodes see); a bot whose node stays unreachable fails over to the next URL.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace weft::load {

/// A server (node) the bots connect to: ws://host:port/.
struct server_url {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string to_string() const;  // ws://host:port/
};

/// Parses ws://HOST:PORT[/...] (or HOST:PORT, or HOST with port 8080); false when malformed.
bool parse_server_url(const std::string& text, server_url& out);

struct swarm_options {
  // Bot k of document d connects to urls[(d + k) % urls.size()], so with
  // several URLs every document has bots on several nodes.
  std::vector<server_url> urls = {server_url{}};
  // A bot whose connection cannot be (re-)established after this many
  // attempts in a row moves to the next URL (with its replica: same id, same
  // document state; it resends what the new node lacks). Only with several URLs.
  int failover_attempts = 2;
  int docs = 1;
  int bots_per_doc = 4;
  double rate = 5;          // keystrokes per second per bot (Poisson: a schedule drawn from seed in advance)
  double duration_s = 10;   // typing time
  double ramp_s = 1;        // connections spread over this long
  bool idle = false;        // connect and sync only, no typing
  std::uint64_t seed = 1;
  int server_pid = 0;       // sample this process's CPU and peak RSS from /proc
  unsigned threads = 2;     // network threads of the bots
  double quiet_s = 3;       // after typing: wait at most this long for convergence
  std::string doc_prefix = "bots";
  bool progress = true;     // a progress line per second on stderr
  bool json_frames = false;  // JSON text frames only (no binary frames for ops and acks)
  bool storm = false;       // after typing: drop every connection at once, resync, type 3 more keystrokes each
};

struct swarm_report {
  std::uint64_t keystrokes = 0;        // local edits that made an op (scheduled ones, plus the storm's)
  std::uint64_t ops_delivered = 0;     // remote op applications by bots
  std::uint64_t errors = 0;            // error messages from the server
  std::uint64_t disconnects = 0;       // established connections lost (reconnected or failed over after)
  double seconds = 0;                  // typing phase (the storm included)
  // Latency of an op: from the time its keystroke was scheduled (not when the
  // bot got round to it: no coordinated omission) until every other bot of
  // the document has applied all of its ids, however the ops carrying them
  // were split, merged or resent on the way.
  double latency_p50_ms = 0, latency_p95_ms = 0, latency_p99_ms = 0, latency_max_ms = 0;
  std::uint64_t latency_samples = 0;   // ops with a complete sample (== ops_with_latency)
  std::uint64_t ops_sent = 0;          // ops made by the bots, in documents with another bot
  std::uint64_t ops_with_latency = 0;  // of those, applied by every other bot of the document
  std::uint64_t ops_never_arrived = 0; // of those, still missing at some bot after the quiet period (0 when healthy)
  // Per delivery: the same, until one receiving bot applied it (one sample per op and receiver).
  double delivery_p50_ms = 0, delivery_p99_ms = 0;
  std::uint64_t delivery_samples = 0;
  // How far behind its schedule a bot ran a keystroke (the edit ran on the
  // bot's executor at scheduled time + lag); overdue keystrokes are sent at once, never skipped.
  double schedule_lag_max_ms = 0, schedule_lag_p99_ms = 0;
  // CPU over the typing phase, utime + stime. Server: /proc/PID/stat of
  // server_pid (when set). Bots: this process (every bot, its network threads
  // and the scheduler).
  double server_cpu_seconds = 0;
  double server_cpu_us_per_keystroke = 0;
  double server_cpu_percent = 0;       // of one core
  double bots_cpu_seconds = 0;
  double bots_cpu_us_per_keystroke = 0;
  double bots_cpu_percent = 0;         // of one core
  double bots_cpu_percent_whole_run = 0;  // of one core, connecting and the quiet period included
  double server_peak_rss_mib = 0;          // when server_pid is set
  double server_rss_mib = 0;               // when server_pid is set (after connecting)
  double server_rss_before_mib = 0;        // when server_pid is set (before connecting)
  double storm_resync_s = 0;               // with storm: until every bot had resynced
  // Several URLs: per delivery, split by whether sender and receiver were
  // connected to the same node (across nodes the op went through replication).
  double delivery_same_node_p50_ms = 0, delivery_same_node_p99_ms = 0;
  std::uint64_t delivery_same_node_samples = 0;
  double delivery_across_nodes_p50_ms = 0, delivery_across_nodes_p99_ms = 0;
  std::uint64_t delivery_across_nodes_samples = 0;
  struct per_url {
    std::string url;
    int bots = 0;         // assigned at the start (round robin)
    int bots_at_end = 0;  // after failovers
    std::string unreachable;  // why its text could not be compared at the end (empty: it was)
  };
  std::vector<per_url> urls;
  std::uint64_t failovers = 0;         // bots moved to the next URL
  std::uint64_t failed_connects = 0;   // connection attempts that failed (reconnects included)
  bool converged = false;
  std::string convergence_detail;      // what differed, when not converged
  int connections = 0;
};

/// Runs the swarm against a server (blocking). Thread-safe to call once at a time.
swarm_report run_swarm(const swarm_options& o);

/// Resident memory of process `pid` in MiB (from /proc); -1 when unreadable.
double process_rss_mib(int pid);

/// The report as one JSON object.
std::string to_json(const swarm_options& o, const swarm_report& r);
/// A human-readable summary.
std::string summary(const swarm_options& o, const swarm_report& r);
/// The header of the markdown table markdown_row() writes rows of.
std::string markdown_header();
/// One row of a markdown table of runs (weft-bots --table).
std::string markdown_row(const std::string& label, const swarm_options& o, const swarm_report& r);

}  // namespace weft::load
