// Real PostgreSQL and Redis servers for the scale-out tests, started from
// Debian's packages in a temporary directory on free loopback ports (never a
// mock). PostgreSQL refuses to run as root: then initdb and postgres run as
// the `postgres` user the package creates.
#pragma once

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace weft::test {

/// A free TCP port on 127.0.0.1 (bound and released: good enough for tests).
inline std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// Runs `args` (argv[0] a path), output to `log`; returns the pid.
inline pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& log) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&fa);
  return pid;
}

/// The same as user `uid`/`gid` (fork, drop privileges, exec): the pid is
/// the program's own, so signals reach it (runuser would not pass them on).
inline pid_t spawn_as(const std::vector<std::string>& args, const std::filesystem::path& log, uid_t uid, gid_t gid) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log_path = log.string();
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      (void)::fchown(fd, uid, gid);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    if (::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

inline int run_and_wait(const std::vector<std::string>& args, const std::filesystem::path& log) {
  pid_t pid = spawn(args, log);
  if (pid <= 0) return -1;
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

inline std::filesystem::path temp_path(const std::string& what) {
  return std::filesystem::temp_directory_path() /
         ("weft-" + what + "-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}()));
}

/// A PostgreSQL server of its own: initdb, then postgres on a free port.
class postgres_server {
 public:
  postgres_server() : dir_(temp_path("pg")), port_(free_port()) {
    namespace fs = std::filesystem;
    for (const auto& e : fs::directory_iterator("/usr/lib/postgresql"))
      if (fs::exists(e.path() / "bin" / "postgres") && e.path().string() > bin_.parent_path().string())
        bin_ = e.path() / "bin" / "postgres";
    if (bin_.empty()) throw std::runtime_error("PostgreSQL is not installed (apt-get install postgresql)");
    fs::create_directories(dir_);
    as_root_ = ::geteuid() == 0;
    if (as_root_) {
      passwd* pw = ::getpwnam("postgres");
      if (!pw) throw std::runtime_error("no postgres user to run PostgreSQL as");
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      if (::chown(dir_.c_str(), uid_, gid_) != 0) throw std::runtime_error("cannot chown " + dir_.string());
    }
    const std::vector<std::string> initdb = {(bin_.parent_path() / "initdb").string(), "-D", (dir_ / "data").string(),
                                             "-A", "trust", "-U", "weft", "--no-sync", "-E", "UTF8"};
    pid_t init = as_root_ ? spawn_as(initdb, dir_ / "initdb.log", uid_, gid_) : spawn(initdb, dir_ / "initdb.log");
    int st = 0;
    if (init <= 0 || ::waitpid(init, &st, 0) != init || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
      throw std::runtime_error("initdb failed; see " + (dir_ / "initdb.log").string());
    start();
  }
  ~postgres_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  /// Starts the server (again) on the same port and data; waits until it answers.
  void start() {
    const std::vector<std::string> args = {bin_.string(), "-D", (dir_ / "data").string(), "-p", std::to_string(port_),
                                           "-k", dir_.string(), "-c", "listen_addresses=127.0.0.1",
                                           "-c", "max_connections=200", "-c", "shared_buffers=32MB"};
    pid_ = as_root_ ? spawn_as(args, dir_ / "postgres.log", uid_, gid_) : spawn(args, dir_ / "postgres.log");
    for (int i = 0; i < 300; ++i) {
      if (PQping(uri().c_str()) == PQPING_OK) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("PostgreSQL did not start; see " + (dir_ / "postgres.log").string());
  }
  /// Fast shutdown (SIGINT): connections are dropped, committed data stays.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGINT);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  std::uint16_t port() const { return port_; }
  /// The URI of database `db`, reached on `port` (default: the server's own;
  /// another for a proxy in front of it).
  std::string uri(const std::string& db = "postgres", std::uint16_t port = 0) const {
    return "postgres://weft@127.0.0.1:" + std::to_string(port ? port : port_) + "/" + db;
  }
  /// Runs one SQL statement; returns its first value ("" when none); throws on error.
  std::string sql(const std::string& statement, const std::string& db = "postgres") const {
    PGconn* c = PQconnectdb(uri(db).c_str());
    PGresult* r = PQexec(c, statement.c_str());
    const auto st = PQresultStatus(r);
    std::string out = st == PGRES_TUPLES_OK && PQntuples(r) > 0 ? PQgetvalue(r, 0, 0) : "";
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(c);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) throw std::runtime_error(statement + ": " + err);
    return out;
  }
  /// A new, empty database for one test; its name.
  std::string fresh_database() {
    std::string name = "t" + std::to_string(next_db_++);
    sql("CREATE DATABASE " + name);
    return name;
  }

 private:
  std::filesystem::path dir_;
  std::filesystem::path bin_;
  std::uint16_t port_;
  bool as_root_ = false;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t pid_ = -1;
  int next_db_ = 1;
};

/// A Redis server of its own, without persistence (a restart loses
/// everything, which is what the resync tests want).
class redis_server {
 public:
  redis_server() : dir_(temp_path("redis")), port_(free_port()) {
    std::filesystem::create_directories(dir_);
    start();
  }
  ~redis_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void start() {
    const char* bin = std::filesystem::exists("/usr/bin/redis-server") ? "/usr/bin/redis-server" : "redis-server";
    pid_ = spawn({bin, "--bind", "127.0.0.1", "--port", std::to_string(port_), "--save", "", "--appendonly", "no",
                  "--dir", dir_.string()},
                 dir_ / "redis.log");
    for (int i = 0; i < 300; ++i) {
      if (command("PING") == "PONG") return;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("Redis did not start; see " + (dir_ / "redis.log").string());
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    ::waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  /// Runs a command (arguments split on spaces); its reply as text: a
  /// string, a status, an integer, or "" (nil, error, unreachable).
  std::string command(const std::string& line) const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (!c || c->err) {
      if (c) redisFree(c);
      return "";
    }
    auto* r = static_cast<redisReply*>(redisCommand(c, line.c_str()));
    std::string out;
    if (r) {
      if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) out.assign(r->str, r->len);
      else if (r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
      freeReplyObject(r);
    }
    redisFree(c);
    return out;
  }

 private:
  std::filesystem::path dir_;
  std::uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace weft::test
