// Deterministic pseudo-random numbers for the data generator.
//
// Every generated entity (a customer, a bay, a zone's event calendar) draws from its own stream,
// seeded from (the run's seed, a domain, the entity id) through SplitMix64. Streams never depend
// on the order in which entities are generated, so any number of threads produce the same bytes.
//
// The generator is xoshiro256** 1.0 (Blackman and Vigna, 2018; public-domain reference algorithm)
// and every distribution below is written out here rather than taken from <random>, whose
// distributions are implementation-defined: the output must not change with the C++ library.
// One Rng per thread; not thread-safe.
#pragma once

#include <cmath>
#include <cstdint>
#include <span>

namespace granary::datagen {

// SplitMix64 (Steele, Lea and Flood, 2014): one step; used to expand seeds.
constexpr uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Independent streams: one per (domain, id) under a run seed.
enum class Stream : uint64_t {
  kZoneLayout = 1,
  kZoneEvents = 2,
  kBayAttributes = 3,
  kBayTelemetry = 4,
  kCustomer = 5,
  kFileIds = 6,
  kLabels = 7,
};

class Rng {
 public:
  Rng(uint64_t seed, Stream stream, uint64_t id) {
    uint64_t sm = seed ^ (static_cast<uint64_t>(stream) * 0xd1b54a32d192ed03ULL);
    sm ^= SplitMix64(sm) + id * 0x9e3779b97f4a7c15ULL;
    for (uint64_t& word : s_) word = SplitMix64(sm);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1), 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; the bias is below 2^-40 here).
  uint64_t Below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }
  bool Bernoulli(double p) { return Uniform() < p; }
  // Exponential with the given mean.
  double Exponential(double mean) { return -mean * std::log1p(-Uniform()); }
  // Standard normal by the Box-Muller transform (one value per call; the twin is discarded so
  // that each call consumes exactly two uniforms).
  double Normal() {
    const double u1 = 1.0 - Uniform();  // (0, 1]
    const double u2 = Uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }
  double Normal(double mean, double sd) { return mean + sd * Normal(); }
  // Log-normal with the given median and log-space standard deviation.
  double LogNormal(double median, double sigma) { return median * std::exp(sigma * Normal()); }
  // Poisson by inversion (sequential search); large means are split so that exp(-mean) does not
  // underflow. Cost is proportional to the mean, as is the work done per drawn event anyway.
  int64_t Poisson(double mean) {
    int64_t total = 0;
    while (mean > 30.0) {
      total += Poisson(30.0);
      mean -= 30.0;
    }
    if (mean <= 0.0) return total;
    double p = std::exp(-mean);
    double cdf = p;
    const double u = Uniform();
    int64_t k = 0;
    while (u > cdf && k < 1000) {
      ++k;
      p *= mean / static_cast<double>(k);
      cdf += p;
    }
    return total + k;
  }
  // An index drawn with probability proportional to weights[i] (weights sum to > 0).
  size_t Choose(std::span<const double> weights) {
    double sum = 0;
    for (double w : weights) sum += w;
    double u = Uniform() * sum;
    for (size_t i = 0; i < weights.size(); ++i) {
      if (u < weights[i]) return i;
      u -= weights[i];
    }
    return weights.size() - 1;
  }

 private:
  static constexpr uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace granary::datagen
