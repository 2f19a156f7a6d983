// weft-bots: headless bot typists against a weft-server. See --help.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "swarm.h"

namespace {

const char* usage =
    "usage: weft-bots [flags]\n"
    "\n"
    "Runs bot typists (each a full weft replica over its own WebSocket) against a\n"
    "weft-server and reports:\n"
    "  - latency of every op: from the time its keystroke was scheduled until every\n"
    "    other bot of the document has applied it (and per delivery, until one other\n"
    "    bot has). Each bot types on a schedule drawn from --seed in advance (Poisson\n"
    "    at --rate); a bot that falls behind sends its overdue keystrokes at once and\n"
    "    their latency still counts from their scheduled times (no coordinated\n"
    "    omission). How far behind schedule the bots fell is reported (max lag).\n"
    "    Ops are matched by their ids, however the server splits, merges or resends\n"
    "    them: ops sent, ops with a complete latency sample and ops that never\n"
    "    arrived (must be 0) are counted;\n"
    "  - throughput, errors and reconnects;\n"
    "  - server CPU (utime+stime from /proc/PID/stat of --server-pid) and the bots'\n"
    "    own CPU (this process), each in us per keystroke and % of a core, over the\n"
    "    typing phase;\n"
    "and checks that every replica ends equal to the server's text. Exits 1 if not,\n"
    "on server errors, or if an op never reached every other bot of its document.\n"
    "\n"
    "Against a cluster (weft-server --peer), give every node's --url: bot k of document\n"
    "d connects to URL (d + k) mod N, so each document has bots on several nodes and\n"
    "their ops reach each other through replication. Latencies then include it (that\n"
    "is what users on different nodes see); per delivery they are also split by same\n"
    "node / different nodes. The quiet period waits for the bots of every document to\n"
    "agree and compares them with the text of every node (a node that cannot be\n"
    "reached is left out, and reported). A bot whose connection cannot be (re-)made\n"
    "after --failover-after attempts in a row moves, with its replica (same id and\n"
    "document state), to the next URL. The report lists the bots per URL.\n"
    "\n"
    "  --url ws://HOST:PORT/   a server or cluster node (repeatable; default ws://127.0.0.1:8080/)\n"
    "  --failover-after K      with several URLs: failed connection attempts in a row before a\n"
    "                          bot moves to the next URL (default 2; attempts back off from 250 ms)\n"
    "  --docs D                documents (default 1)\n"
    "  --bots-per-doc N        bots per document (default 4)\n"
    "  --rate K                keystrokes per second per bot (default 5)\n"
    "  --duration S            seconds of typing (default 10)\n"
    "  --ramp S                spread the connections over S seconds (default 1)\n"
    "  --idle                  connect and sync only; no typing\n"
    "  --seed N                random seed: documents, replicas, actions, schedule (default 1)\n"
    "  --doc-prefix P          documents are named P-SEED-D, D = 0..docs-1 (default bots)\n"
    "  --server-pid PID        sample that process's CPU time and RSS from /proc (one process:\n"
    "                          with several nodes, the one you choose)\n"
    "  --threads T             network threads of the bots (default 2)\n"
    "  --quiet S               after typing, wait at most S seconds for convergence and\n"
    "                          for every op to reach every bot (default 3)\n"
    "  --storm                 after typing, drop every connection at once; all must resync,\n"
    "                          then each bot types 3 more keystrokes over 3/rate seconds\n"
    "  --json-frames           ops and acks as JSON text frames, as the browser sends them\n"
    "                          (default: binary frames, as weft::client negotiates them)\n"
    "  --json FILE             also write the report as JSON\n"
    "  --soak ROUNDS           soak: the run above ROUNDS times, each on fresh documents, pausing\n"
    "                          --soak-pause S (default 3) after each so the server unloads them\n"
    "                          (run it with a shorter --idle-unload-ms), sampling its RSS\n"
    "                          (--server-pid required). Fails if RSS keeps growing\n"
    "  --table FILE --label L  also append a markdown table row labelled L to FILE (and the\n"
    "                          table's header first when FILE is empty)\n"
    "  --no-progress           no progress line\n";

bool number(const char* s, double& out) {
  char* end = nullptr;
  out = std::strtod(s, &end);
  return end && *end == '\0';
}

// Rounds of typing on fresh documents with pauses in which the server
// unloads them; the server's RSS after each pause must level off.
int soak(weft::load::swarm_options o, int rounds, double pause_s, const std::string& json_file) {
  if (!o.server_pid) {
    fmt::print(stderr, "weft-bots: --soak needs --server-pid\n");
    return 2;
  }
  o.progress = false;
  std::vector<double> rss;
  bool all_converged = true;
  std::uint64_t keystrokes = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < rounds; ++round) {
    o.seed = o.seed + 1;  // fresh document names every round
    auto r = weft::load::run_swarm(o);
    keystrokes += r.keystrokes;
    all_converged = all_converged && r.converged && r.errors == 0 && r.ops_never_arrived == 0;
    std::this_thread::sleep_for(std::chrono::duration<double>(pause_s));
    rss.push_back(weft::load::process_rss_mib(o.server_pid));
    fmt::print("soak round {:3}/{}: {} keystrokes, converged {}, server RSS {:.1f} MiB\n", round + 1, rounds,
               r.keystrokes, r.converged ? "yes" : "NO", rss.back());
    std::fflush(stdout);
  }
  // Levelled off: the last round is within 10% (+2 MiB of allocator slack) of
  // the highest sample of the first half.
  double first_half_max = *std::max_element(rss.begin(), rss.begin() + std::max<std::size_t>(1, rss.size() / 2));
  bool level = rss.back() <= first_half_max * 1.10 + 2.0;
  double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60.0;
  fmt::print("soak: {} rounds in {:.1f} min, {} keystrokes; server RSS first-half max {:.1f} MiB, last {:.1f} MiB: {}\n",
             rounds, minutes, keystrokes, first_half_max, rss.back(), level ? "levels off" : "KEEPS GROWING");
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << fmt::format(R"({{"soak_rounds":{},"minutes":{:.2f},"keystrokes":{},"converged":{},"levels_off":{},"rss_mib":[{:.1f}]}})",
                       rounds, minutes, keystrokes, all_converged, level, fmt::join(rss, ","))
        << "\n";
  }
  return all_converged && level ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  weft::load::swarm_options o;
  bool urls_given = false;
  std::string json_file, table_file, label = "run";
  int soak_rounds = 0;
  double soak_pause = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        fmt::print(stderr, "weft-bots: {} needs a value\n", a);
        std::exit(2);
      }
      return argv[++i];
    };
    double v = 0;
    auto num = [&](double lo) {
      const char* s = value();
      if (!number(s, v) || v < lo) {
        fmt::print(stderr, "weft-bots: bad value for {}: {}\n", a, s);
        std::exit(2);
      }
      return v;
    };
    if (a == "--help" || a == "-h") {
      std::fputs(usage, stdout);
      return 0;
    } else if (a == "--url") {
      const std::string url = value();
      weft::load::server_url u;
      if (!weft::load::parse_server_url(url, u)) {
        fmt::print(stderr, "weft-bots: bad --url {} (want ws://HOST:PORT/)\n", url);
        return 2;
      }
      if (!urls_given) o.urls.clear();  // the first --url replaces the default
      urls_given = true;
      o.urls.push_back(u);
    } else if (a == "--failover-after") o.failover_attempts = static_cast<int>(num(1));
    else if (a == "--docs") o.docs = static_cast<int>(num(1));
    else if (a == "--bots-per-doc") o.bots_per_doc = static_cast<int>(num(1));
    else if (a == "--rate") o.rate = num(0.001);
    else if (a == "--duration") o.duration_s = num(0);
    else if (a == "--ramp") o.ramp_s = num(0);
    else if (a == "--idle") o.idle = true;
    else if (a == "--seed") o.seed = static_cast<std::uint64_t>(num(0));
    else if (a == "--doc-prefix") o.doc_prefix = value();
    else if (a == "--server-pid") o.server_pid = static_cast<int>(num(1));
    else if (a == "--threads") o.threads = static_cast<unsigned>(num(1));
    else if (a == "--quiet") o.quiet_s = num(0);
    else if (a == "--json") json_file = value();
    else if (a == "--table") table_file = value();
    else if (a == "--label") label = value();
    else if (a == "--storm") o.storm = true;
    else if (a == "--json-frames") o.json_frames = true;
    else if (a == "--no-progress") o.progress = false;
    else if (a == "--soak") soak_rounds = static_cast<int>(num(2));
    else if (a == "--soak-pause") soak_pause = num(0);
    else {
      fmt::print(stderr, "weft-bots: unknown flag {}\n\n{}", a, usage);
      return 2;
    }
  }
  if (soak_rounds > 0) return soak(o, soak_rounds, soak_pause, json_file);
  auto r = weft::load::run_swarm(o);
  std::fputs(weft::load::summary(o, r).c_str(), stdout);
  if (!json_file.empty()) std::ofstream(json_file) << weft::load::to_json(o, r) << "\n";
  if (!table_file.empty()) {
    const bool empty = std::ifstream(table_file, std::ios::ate).tellg() <= 0;
    std::ofstream table(table_file, std::ios::app);
    if (empty) table << weft::load::markdown_header();
    table << weft::load::markdown_row(label, o, r);
  }
  return r.converged && r.errors == 0 && r.ops_never_arrived == 0 ? 0 : 1;
}
