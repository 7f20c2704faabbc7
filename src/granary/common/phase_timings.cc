#include "granary/common/phase_timings.h"

#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <tuple>
#include <utility>

namespace granary {

namespace {

double Seconds(const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; }

// The process's user and system time so far, from one reading.
std::pair<double, double> UserAndSystem() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return {0, 0};
  return {Seconds(usage.ru_utime), Seconds(usage.ru_stime)};
}

}  // namespace

double PhaseTimings::ProcessCpuSeconds() {
  auto [user, system] = UserAndSystem();
  return user + system;
}

double PhaseTimings::ProcessSystemSeconds() { return UserAndSystem().second; }

PhaseTimings::Scope::Scope(PhaseTimings* owner, std::string name)
    : owner_(owner),
      name_(std::move(name)),
      wall_start_(std::chrono::steady_clock::now()),
      user_start_(0),
      system_start_(0) {
  if (owner != nullptr) std::tie(user_start_, system_start_) = UserAndSystem();
}

PhaseTimings::Scope::Scope(Scope&& other) noexcept
    : owner_(other.owner_),
      name_(std::move(other.name_)),
      wall_start_(other.wall_start_),
      user_start_(other.user_start_),
      system_start_(other.system_start_) {
  other.owner_ = nullptr;
}

void PhaseTimings::Scope::End() {
  if (owner_ == nullptr) return;
  Phase phase;
  phase.name = std::move(name_);
  phase.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
  const auto [user, system] = UserAndSystem();
  phase.system_seconds = std::max(0.0, system - system_start_);
  phase.cpu_seconds = std::max(0.0, user - user_start_) + phase.system_seconds;
  owner_->Add(std::move(phase));
  owner_ = nullptr;
}

PhaseTimings::Scope PhaseTimings::Start(PhaseTimings* timings, std::string name) {
  return Scope(timings, std::move(name));
}

void PhaseTimings::Add(Phase phase) {
  MutexLock lock(&mu_);
  phases_.push_back(std::move(phase));
}

std::vector<PhaseTimings::Phase> PhaseTimings::phases() const {
  MutexLock lock(&mu_);
  return phases_;
}

std::string PhaseTimings::Report() const {
  const std::vector<Phase> all = phases();
  size_t width = 0;
  for (const Phase& p : all) width = std::max(width, p.name.size());
  std::string out;
  for (const Phase& p : all) {
    const std::string cores =
        p.wall_seconds > 0 ? fmt::format("{:.2f}", p.cpu_seconds / p.wall_seconds) : "-";
    out += fmt::format("  {:<{}}  wall {:7.3f} s  CPU {:7.3f} s (system {:6.3f} s)  cores {}\n",
                       p.name, width, p.wall_seconds, p.cpu_seconds, p.system_seconds, cores);
  }
  return out;
}

}  // namespace granary
