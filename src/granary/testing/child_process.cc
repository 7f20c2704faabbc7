#include "granary/testing/child_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

namespace granary::testing {

Result<ChildProcess> ChildProcess::Spawn(std::vector<std::string> args,
                                         const ChildProcessOptions& options) {
  if (args.empty()) return Status::InvalidArgument("ChildProcess::Spawn: no command");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::IOError("fork() failed");
  if (pid == 0) {
    // Only async-signal-safe calls from here to exec.
    if (options.uid != 0) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(options.gid) != 0 ||
          ::setuid(options.uid) != 0) {
        ::_exit(126);
      }
    }
    // A process group of its own: when the test's group becomes orphaned (the shell that
    // started the test exits first) the kernel sends SIGHUP and SIGCONT to every process of that
    // group holding a stopped one, which resumed a server a test had paused (SIGSTOP) in the
    // middle of the test (StoreOpener's never-policy open was then answered). Signals meant for
    // the test's group (a terminal's Ctrl-C) no longer reach the server either; it still dies
    // with the test process (below).
    ::setpgid(0, 0);
    // The child dies with the test process, even when that one crashes (and it may have died
    // before the prctl). After the change of user: a change of credentials clears the setting.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    if (!options.log.empty()) {
      const int out = ::open(options.log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (out >= 0) {
        ::dup2(out, STDOUT_FILENO);
        ::dup2(out, STDERR_FILENO);
      }
    }
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ChildProcess child;
  child.pid_ = pid;
  return child;
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept : pid_(other.pid_) { other.pid_ = -1; }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = other.pid_;
    other.pid_ = -1;
  }
  return *this;
}

ChildProcess::~ChildProcess() { Kill(); }

bool ChildProcess::Exited() {
  if (pid_ <= 0) return true;
  if (::waitpid(pid_, nullptr, WNOHANG) != pid_) return false;
  pid_ = -1;
  return true;
}

int ChildProcess::Wait() {
  if (pid_ <= 0) return -1;
  int wstatus = 0;
  ::waitpid(pid_, &wstatus, 0);
  pid_ = -1;
  return wstatus;
}

void ChildProcess::Stop(int signal, std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  ::kill(pid_, signal);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Exited()) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  Kill();
}

void ChildProcess::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

void ChildProcess::Signal(int signal) {
  if (pid_ > 0) ::kill(pid_, signal);
}

Result<int> FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::IOError("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Status::IOError("cannot bind a free port on 127.0.0.1");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

std::string FileTail(const std::filesystem::path& file, size_t bytes) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace granary::testing
