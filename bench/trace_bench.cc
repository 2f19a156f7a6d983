// weft-trace-bench: replays an editing trace through the document core and
// prints one JSON object per line: {"trace","metric","value","unit","machine"}.
// Verifies the final text and exits non-zero on a mismatch.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "machine_info.h"
#include "traces/replay.h"
#include "weft/document.h"

namespace {

using clock_type = std::chrono::steady_clock;

double time_ms(const std::function<void()>& f) {
  auto t0 = clock_type::now();
  f();
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o;
}


struct printer {
  std::string trace, mach;
  void operator()(const char* metric, double value, const char* unit) const {
    std::printf("{\"trace\": \"%s\", \"metric\": \"%s\", \"value\": %.6g, \"unit\": \"%s\", \"machine\": \"%s\"}\n",
                json_escape(trace).c_str(), metric, value, unit, json_escape(mach).c_str());
  }
};

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --trace FILE.json.gz [--runs N] [--repeat R1,R2,...]\n"
               "Replays a sequential or concurrent editing trace (josephg/editing-traces format)\n"
               "and prints JSON lines: local_replay_ms, remote_apply_ms, snapshot_bytes,\n"
               "snapshot_encode_ms, snapshot_decode_ms, memory_bytes (medians of N runs, default 5).\n"
               "--repeat (sequential traces): also replays the trace R times into one document,\n"
               "each copy after the text so far, and prints the cost per patch of the last copy\n"
               "(local_ns_per_patch_xR, remote_ns_per_op_xR: the document is R times larger then)\n"
               "and memory_bytes_xR, so that cost against document size shows.\n",
               argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  int runs = 5;
  std::vector<int> repeats;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--trace") && i + 1 < argc) path = argv[++i];
    else if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::max(1, std::atoi(argv[++i]));
    else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc) {
      for (const char* p = argv[++i]; *p;) {
        const int r = std::atoi(p);
        if (r < 1 || r > 1000) return usage(argv[0]);
        repeats.push_back(r);
        while (*p && *p != ',') ++p;
        if (*p == ',') ++p;
      }
    } else return usage(argv[0]);
  }
  if (path.empty()) return usage(argv[0]);
  auto loaded = weft::traces::load_trace(path);
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.error().to_string().c_str());
    return 1;
  }
  const weft::traces::trace& t = loaded.value();
  printer out{t.name, weft::bench::machine_description()};

  std::vector<double> local_ms, remote_ms, enc_ms, dec_ms;
  std::vector<weft::operation> ops;  // in an order a fresh replica can apply
  std::string final_text, snapshot;
  std::size_t memory = 0;
  for (int run = 0; run < runs; ++run) {
    weft::document doc(1);
    if (!t.concurrent) {
      ops.clear();
      ops.reserve(t.patch_count());
      weft::status st;
      local_ms.push_back(time_ms([&] { st = weft::traces::replay_local(t, doc, &ops); }));
      if (!st.ok()) {
        std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
        return 1;
      }
      final_text = doc.text();
    } else {
      weft::result<weft::traces::concurrent_replay> r = weft::status(weft::error_code::ok, "");
      local_ms.push_back(time_ms([&] { r = weft::traces::replay_concurrent(t); }));
      if (!r.ok()) {
        std::fprintf(stderr, "error: %s\n", r.error().to_string().c_str());
        return 1;
      }
      ops.clear();
      for (auto& txn_ops : r.value().txn_ops)
        for (auto& op : txn_ops) ops.push_back(std::move(op));
    }
    weft::document remote(2);
    bool ok = true;
    remote_ms.push_back(time_ms([&] {
      for (const auto& op : ops) ok &= remote.apply(op).ok();
    }));
    if (!ok) {
      std::fprintf(stderr, "error: remote apply failed\n");
      return 1;
    }
    if (t.concurrent) final_text = remote.text();
    if (final_text != t.end_content || remote.text() != t.end_content) {
      std::fprintf(stderr, "error: final text does not match endContent\n");
      return 1;
    }
    const weft::document& subject = t.concurrent ? remote : doc;
    memory = subject.memory_usage();
    enc_ms.push_back(time_ms([&] { snapshot = subject.encode_snapshot(); }));
    weft::result<weft::document> back = weft::status(weft::error_code::ok, "");
    dec_ms.push_back(time_ms([&] { back = weft::document::decode_snapshot(snapshot, 3); }));
    if (!back.ok() || back.value().text() != t.end_content) {
      std::fprintf(stderr, "error: snapshot round trip failed\n");
      return 1;
    }
  }
  out("local_replay_ms", median(local_ms), "ms");
  out("remote_apply_ms", median(remote_ms), "ms");
  out("snapshot_bytes", static_cast<double>(snapshot.size()), "bytes");
  out("snapshot_encode_ms", median(enc_ms), "ms");
  out("snapshot_decode_ms", median(dec_ms), "ms");
  out("memory_bytes", static_cast<double>(memory), "bytes");
  out("ops", static_cast<double>(ops.size()), "count");
  if (!repeats.empty() && t.concurrent) {
    std::fprintf(stderr, "error: --repeat replays sequential traces only\n");
    return 1;
  }
  for (int r : repeats) {
    // One run: at 100 copies a replay takes seconds.
    weft::document doc(1);
    std::vector<weft::operation> all, last;
    {
      // Warm-up into a throwaway replica, so that the timed copy does not
      // pay for first-touching the op vector's memory (the main replay
      // reuses one vector across runs for the same reason).
      weft::document warm(9);
      (void)weft::traces::replay_local(t, warm, &last);
    }
    double last_local = 0;
    for (int k = 0; k < r; ++k) {
      last.clear();
      weft::status st;
      const std::uint64_t base = doc.length();
      last_local = time_ms([&] { st = weft::traces::replay_local(t, doc, &last, base); });
      if (!st.ok()) {
        std::fprintf(stderr, "error: %s\n", st.to_string().c_str());
        return 1;
      }
      if (k + 1 < r) all.insert(all.end(), last.begin(), last.end());
    }
    weft::document remote(2);
    bool ok = true;
    for (const auto& op : all) ok &= remote.apply(op).ok();
    const double last_remote = time_ms([&] {
      for (const auto& op : last) ok &= remote.apply(op).ok();
    });
    std::string want;
    for (int k = 0; k < r; ++k) want += t.end_content;
    if (!ok || doc.text() != want || remote.text() != want) {
      std::fprintf(stderr, "error: x%d: final text does not match endContent repeated\n", r);
      return 1;
    }
    // Built step by step: GCC 12 warns falsely (-Wrestrict) on "x" + std::string.
    const auto metric = [r](const char* name) {
      std::string m = name;
      m += "_x";
      m += std::to_string(r);
      return m;
    };
    out(metric("local_ns_per_patch").c_str(), last_local * 1e6 / static_cast<double>(t.patch_count()), "ns");
    out(metric("remote_ns_per_op").c_str(), last_remote * 1e6 / static_cast<double>(last.size()), "ns");
    out(metric("memory_bytes").c_str(), static_cast<double>(doc.memory_usage()), "bytes");
  }
  return 0;
}
