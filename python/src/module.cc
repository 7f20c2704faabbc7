// granary._granary: the native module under the granary package (python/granary/).

#include "bindings.h"
#include "feature_store_core.h"

NB_MODULE(_granary, m) {
  using namespace granary::python;
  m.doc() = "Granary's C++ core; use it through the granary package (granary.FeatureStore).";
  BindErrors(m);
  BindArrowStream(m);
  nb::class_<FeatureStoreCore> cls(m, "FeatureStoreCore",
                                   "The native side of granary.FeatureStore; thread-safe.");
  BindRegistry(cls);
  BindOffline(cls);
  BindOnline(cls);
  BindOperations(m, cls);
}
