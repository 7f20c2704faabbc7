// VerifyOnline: the proof that online equals offline (`granary verify`, docs/AGGREGATIONS.md
// "Verify"). For each online view it samples entities from the view's source, reads their online
// values as a read at instant T would (the store's clock set to T), computes their offline
// point-in-time values at T through the offline engine, and compares value by value.
//
//   T = --at when given; else now for a view with aggregations (whose online values are computed
//   at read time) and the view's watermark for a plain view (what the online store promises to
//   hold: the latest value up to the watermark).
//
// Floating values match within a relative tolerance (the tiles' partial sums are added in
// another order than the kernel's running sums); every other value exactly; an online status
// other than PRESENT reads as null. Pushed rows that did not reach the offline source, or
// source rows after the watermark not materialized yet, are real differences and are reported.
// Not thread-safe (one call at a time per store).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "granary/common/clock.h"
#include "granary/common/result.h"
#include "granary/offline/offline_engine.h"
#include "granary/online/online_store.h"
#include "granary/registry/definitions.h"
#include "granary/registry/registry_store.h"

namespace granary {

struct VerifyOptions {
  std::vector<std::string> views;   // empty: every online view
  int64_t sample = 100;             // entities per view, at most
  std::optional<Timestamp> at;      // T for every view; nullopt: see above
  uint64_t seed = 1;                // of the sample
  double float64_tolerance = 1e-9;  // relative (absolute below 1)
  double float32_tolerance = 1e-6;
};

struct ViewVerification {
  std::string view;
  Timestamp at;
  std::string at_reason;  // "--at", "now" or "watermark"
  std::string skipped;    // why the view was not compared ("never materialized"); else empty
  int64_t entities = 0;   // sampled
  int64_t values = 0;     // compared
  int64_t mismatches = 0;
  // Up to five mismatches: "customer_id=7 payment_failures_30d: online 3, offline 2".
  std::vector<std::string> examples;
};

struct VerifyReport {
  std::vector<ViewVerification> views;
  bool ok() const {
    for (const ViewVerification& v : views) {
      if (v.mismatches > 0) return false;
    }
    return true;
  }
};

// `store` must have been opened with `clock` as its clock (OnlineStoreOptions::clock); the call
// sets it to each view's T. InvalidArgument for an unknown view in options.views.
Result<VerifyReport> VerifyOnline(const Definitions& defs, OfflineEngine& engine,
                                  OnlineStore& store, ManualClock& clock, RegistryStore& registry,
                                  Duration default_key_ttl, const VerifyOptions& options,
                                  Timestamp now);

}  // namespace granary
