#include "server/redis_connection.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <boost/asio/post.hpp>

namespace weft::server {

namespace net = boost::asio;

redis_connection::redis_connection(net::io_context& io) : io_(io), socket_(io) {}

redis_connection::~redis_connection() = default;

std::shared_ptr<redis_connection> redis_connection::connect(net::io_context& io, const std::string& host, int port,
                                                            std::function<void()> on_up, closed_fn on_closed) {
  std::shared_ptr<redis_connection> c(new redis_connection(io));
  c->on_up_ = std::move(on_up);
  c->on_closed_ = std::move(on_closed);
  redisAsyncContext* ac = redisAsyncConnect(host.c_str(), port);
  if (!ac || ac->err) {
    std::string why = ac ? ac->errstr : "out of memory";
    if (ac) redisAsyncFree(ac);
    net::post(io, [c, why] {
      if (c->on_closed_) c->on_closed_("cannot connect to Redis: " + why);
    });
    return c;
  }
  c->ac_ = ac;
  c->self_ = c;
  ac->data = c.get();
  ac->ev.data = c.get();
  ac->ev.addRead = add_read;
  ac->ev.delRead = del_read;
  ac->ev.addWrite = add_write;
  ac->ev.delWrite = del_write;
  ac->ev.cleanup = cleanup;
  boost::system::error_code ec;
  c->socket_.assign(ac->c.fd, ec);
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  // hiredis waits for writability to learn that the connect finished.
  add_write(c.get());
  return c;
}

void redis_connection::ended(const std::string& why) {
  up_ = false;
  if (closing_) return;
  auto f = std::move(on_closed_);
  on_closed_ = nullptr;
  if (f) net::post(io_, [f = std::move(f), why] { f(why); });
}

void redis_connection::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_connection*>(ac->data);
  if (status != REDIS_OK) {
    self->ended(std::string("cannot connect to Redis: ") + (ac->errstr ? ac->errstr : "error"));
    return;
  }
  self->up_ = true;
  if (self->on_up_) {
    auto f = std::move(self->on_up_);
    self->on_up_ = nullptr;
    f();
  }
}

void redis_connection::on_disconnect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_connection*>(ac->data);
  self->ended(status == REDIS_OK ? std::string("disconnected")
                                 : std::string("Redis connection lost: ") + (ac->errstr ? ac->errstr : "error"));
}

void redis_connection::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* cb = static_cast<reply_fn*>(privdata);
  (*cb)(static_cast<redisReply*>(reply));
  delete cb;
}

bool redis_connection::command(const std::vector<std::string_view>& args, reply_fn cb) {
  if (!ac_ || !up_ || closing_) return false;
  std::vector<const char*> argv(args.size());
  std::vector<std::size_t> lens(args.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  auto* holder = new reply_fn(std::move(cb));
  if (redisAsyncCommandArgv(ac_, on_reply, holder, static_cast<int>(args.size()), argv.data(), lens.data()) !=
      REDIS_OK) {
    delete holder;
    return false;
  }
  return true;
}

void redis_connection::close() {
  if (closing_) return;
  closing_ = true;
  up_ = false;
  // Frees the context now: pending replies get null, cleanup() runs.
  if (ac_) redisAsyncFree(ac_);
}

void redis_connection::add_read(void* p) {
  auto* self = static_cast<redis_connection*>(p);
  self->read_.wanted = true;
  self->arm(self->read_, net::posix::stream_descriptor::wait_read, redisAsyncHandleRead);
}
void redis_connection::del_read(void* p) { static_cast<redis_connection*>(p)->read_.wanted = false; }
void redis_connection::add_write(void* p) {
  auto* self = static_cast<redis_connection*>(p);
  self->write_.wanted = true;
  self->arm(self->write_, net::posix::stream_descriptor::wait_write, redisAsyncHandleWrite);
}
void redis_connection::del_write(void* p) { static_cast<redis_connection*>(p)->write_.wanted = false; }

void redis_connection::cleanup(void* p) {
  auto* self = static_cast<redis_connection*>(p);
  // hiredis closes the descriptor itself: give it up without closing.
  self->ac_ = nullptr;
  self->read_.wanted = self->write_.wanted = false;
  if (self->socket_.is_open()) (void)self->socket_.release();
  // Let go of ourselves later: hiredis is still on the stack.
  net::post(self->io_, [s = std::move(self->self_)] {});
}

void redis_connection::arm(direction& d, net::posix::stream_descriptor::wait_type wait,
                           void (*handle)(redisAsyncContext*)) {
  if (d.armed || !ac_) return;
  d.armed = true;
  socket_.async_wait(wait, [self = shared_from_this(), &d, wait, handle](boost::system::error_code ec) {
    d.armed = false;
    if (ec || !self->ac_ || !d.wanted) return;
    handle(self->ac_);
    if (self->ac_ && d.wanted) self->arm(d, wait, handle);
  });
}

}  // namespace weft::server
