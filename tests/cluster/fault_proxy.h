// A TCP proxy on 127.0.0.1 for replication tests and benchmarks: sits on a
// link between two nodes and adds latency with jitter, cuts the link
// (closes every connection and refuses new ones), or black-holes it (keeps
// connections open and silently drops what they carry, as a partition does).
// One thread of its own. Thread-safety: the setters may be called from any
// thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <array>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <thread>

namespace weft::test {

class fault_proxy {
 public:
  /// Listens on a free port and forwards to 127.0.0.1:`target_port`.
  explicit fault_proxy(std::uint16_t target_port)
      : target_(boost::asio::ip::make_address("127.0.0.1"), target_port),
        acceptor_(io_, {boost::asio::ip::make_address("127.0.0.1"), 0}),
        work_(io_.get_executor()) {
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~fault_proxy() {
    work_.reset();
    boost::asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      close_all();
    });
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  /// Each chunk is held `delay` ± `jitter` (uniform), in order per direction.
  void set_latency(std::chrono::milliseconds delay, std::chrono::milliseconds jitter = {}) {
    delay_us_ = delay.count() * 1000;
    jitter_us_ = jitter.count() * 1000;
  }
  /// Cut: every connection is closed and new ones are refused, until heal().
  void cut() {
    cut_ = true;
    boost::asio::post(io_, [this] { close_all(); });
  }
  /// Black hole: connections stay open but nothing gets through until
  /// heal(); what was sent meanwhile then arrives (TCP retransmits), unless
  /// the ends gave up on the connection first.
  void black_hole() { holed_ = true; }
  void heal() {
    cut_ = false;
    holed_ = false;
  }
  /// Bytes forwarded so far (both directions).
  std::uint64_t bytes() const { return bytes_; }

 private:
  using tcp = boost::asio::ip::tcp;
  struct pipe : std::enable_shared_from_this<pipe> {
    // One direction: chunks waiting for their release time, written in order.
    struct lane {
      tcp::socket* to;
      std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> queue;
      std::unique_ptr<boost::asio::steady_timer> timer;
      bool busy = false;
    };
    fault_proxy& p;
    tcp::socket a, b;
    lane ab, ba;
    pipe(fault_proxy& proxy, tcp::socket s) : p(proxy), a(std::move(s)), b(proxy.io_) {
      ab.to = &b;
      ba.to = &a;
      ab.timer = std::make_unique<boost::asio::steady_timer>(p.io_);
      ba.timer = std::make_unique<boost::asio::steady_timer>(p.io_);
    }
    void start() {
      b.async_connect(p.target_, [self = shared_from_this()](boost::system::error_code ec) {
        if (ec) return self->close();
        self->b.set_option(tcp::no_delay(true), ec);
        self->a.set_option(tcp::no_delay(true), ec);
        self->read(self->a, self->ab);
        self->read(self->b, self->ba);
      });
    }
    void read(tcp::socket& from, lane& l) {
      auto buf = std::make_shared<std::array<char, 16384>>();
      from.async_read_some(boost::asio::buffer(*buf), [self = shared_from_this(), &from, &l, buf](
                                                           boost::system::error_code ec, std::size_t n) {
        if (ec) return self->close();
        auto now = std::chrono::steady_clock::now();
        std::int64_t d = self->p.delay_us_, j = self->p.jitter_us_;
        if (j > 0) d += std::uniform_int_distribution<std::int64_t>(-j, j)(self->p.rng_);
        auto at = now + std::chrono::microseconds(std::max<std::int64_t>(0, d));
        // Never before the chunk ahead of it: a direction stays in order.
        if (!l.queue.empty()) at = std::max(at, l.queue.back().first);
        l.queue.emplace_back(at, std::string(buf->data(), n));
        self->drain(l);
        self->read(from, l);
      });
    }
    // Writes the front chunk once its time has come and the link is not
    // black-holed (then it waits, as TCP retransmits through a partition).
    void drain(lane& l) {
      if (l.busy || l.queue.empty()) return;
      l.busy = true;
      auto now = std::chrono::steady_clock::now();
      if (p.holed_ || l.queue.front().first > now) {
        l.timer->expires_at(p.holed_ ? now + std::chrono::milliseconds(20) : l.queue.front().first);
        l.timer->async_wait([self = shared_from_this(), &l](boost::system::error_code ec) {
          l.busy = false;
          if (!ec) self->drain(l);
        });
        return;
      }
      auto data = std::make_shared<std::string>(std::move(l.queue.front().second));
      l.queue.pop_front();
      p.bytes_ += data->size();
      boost::asio::async_write(*l.to, boost::asio::buffer(*data),
                               [self = shared_from_this(), data, &l](boost::system::error_code ec, std::size_t) {
                                 l.busy = false;
                                 if (ec) return self->close();
                                 self->drain(l);
                               });
    }
    void close() {
      boost::system::error_code ec;
      a.close(ec);
      b.close(ec);
      ab.timer->cancel();
      ba.timer->cancel();
      p.pipes_.erase(shared_from_this());
    }
  };
  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      if (cut_) {
        s.close(ec);
      } else {
        auto p = std::make_shared<pipe>(*this, std::move(s));
        pipes_.insert(p);
        p->start();
      }
      accept();
    });
  }
  void close_all() {
    auto all = pipes_;
    for (auto& p : all) p->close();
  }

  boost::asio::io_context io_;
  tcp::endpoint target_;
  tcp::acceptor acceptor_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::set<std::shared_ptr<pipe>> pipes_;  // io_ thread only
  std::atomic<bool> cut_{false}, holed_{false};
  std::atomic<std::int64_t> delay_us_{0}, jitter_us_{0};
  std::atomic<std::uint64_t> bytes_{0};
  std::minstd_rand rng_{42};
  std::thread thread_;
};

}  // namespace weft::test
