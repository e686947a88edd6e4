#include "dist/local_launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "util/error.h"

namespace openba {
namespace {

volatile sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) { g_forward_signal = sig; }

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("socket(): ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw Error("could not find a free port on 127.0.0.1: " + why);
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

int launch_local_workers(const LocalLaunch& launch) {
  if (launch.nproc < 1) throw Error("--nproc " + std::to_string(launch.nproc) + ": must be at least 1");
  const std::string port = std::getenv("MASTER_PORT") ? std::getenv("MASTER_PORT") : std::to_string(free_local_port());
  std::vector<char*> argv;
  for (const auto& a : launch.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  struct sigaction forward {};
  forward.sa_handler = remember_signal;
  sigemptyset(&forward.sa_mask);
  sigaction(SIGINT, &forward, nullptr);
  sigaction(SIGTERM, &forward, nullptr);

  std::map<pid_t, int> rank_of;
  for (int rank = 0; rank < launch.nproc; ++rank) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("fork(): ") + std::strerror(errno));
    if (pid == 0) {
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      setenv("RANK", std::to_string(rank).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(launch.nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(launch.nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", port.c_str(), 1);
      unsetenv("TORCHELASTIC_USE_AGENT_STORE");
      ::execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "%s: could not start worker %d: %s\n", launch.tool.c_str(), rank, std::strerror(errno));
      ::_exit(127);
    }
    rank_of[pid] = rank;
  }

  int result = 0;
  bool failed = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  bool terminated = false;
  while (!rank_of.empty()) {
    if (g_forward_signal) {
      for (const auto& [pid, rank] : rank_of) ::kill(pid, g_forward_signal);
      if (!failed) result = 128 + g_forward_signal;
      failed = true;
      g_forward_signal = 0;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && rank_of.count(pid)) {
      const int rank = rank_of[pid];
      rank_of.erase(pid);
      if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && !failed) {
        failed = true;
        result = exit_code(status);
        std::fprintf(stderr, "%s: rank %d (pid %d) %s; waiting up to %.0f s for the other ranks to stop\n",
                     launch.tool.c_str(), rank, static_cast<int>(pid), describe(status).c_str(),
                     launch.grace_seconds);
        deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(static_cast<int64_t>(launch.grace_seconds * 1000));
      }
      continue;
    }
    if (failed && std::chrono::steady_clock::now() > deadline) {
      for (const auto& [p, rank] : rank_of) {
        std::fprintf(stderr, "%s: rank %d (pid %d) did not stop within %.0f s: %s\n", launch.tool.c_str(), rank,
                     static_cast<int>(p), launch.grace_seconds, terminated ? "killing it" : "terminating it");
        ::kill(p, terminated ? SIGKILL : SIGTERM);
        ::kill(p, SIGCONT);  // a stopped worker only acts on SIGTERM once continued
      }
      terminated = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return result;
}

}  // namespace openba
