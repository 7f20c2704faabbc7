// Thread-safety annotations checked by clang's -Wthread-safety (the fuzz and ThreadSanitizer
// builds compile with clang and turn its findings into errors; see CMakeLists.txt). Other
// compilers see no-ops.
//
// A member that a mutex protects is declared GUARDED_BY(mu_); a function that must be called with
// the mutex held is REQUIRES(mu_), one that takes it itself EXCLUDES(mu_). The mutex type is
// granary::Mutex (common/mutex.h): std::mutex carries no annotations in libstdc++, so the
// analysis cannot see std::lock_guard take it. The attributes are clang's capability
// attributes (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html), named as in LevelDB's
// port/thread_annotations.h and abseil.
//
// Debian's abseil (reached through gRPC in the Spark Connect client and the gRPC server) defines
// GUARDED_BY, PT_GUARDED_BY, ACQUIRED_AFTER, ACQUIRED_BEFORE and NO_THREAD_SAFETY_ANALYSIS too,
// in absl/base/internal/thread_annotations.h, with the same clang attributes. Those five are
// undefined before they are defined here, so that whichever header comes first, Granary's code sees
// these definitions and clang has no redefinition to warn about (a redefinition by abseil's header
// after this one is in a system header, where clang does not warn). Every clang build turns
// -Wmacro-redefined into an error (CMakeLists.txt).
#pragma once

#if defined(__clang__)
#define GRANARY_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define GRANARY_THREAD_ANNOTATION(x)
#endif

// On a type: objects of it are locks ("mutex").
#define CAPABILITY(x) GRANARY_THREAD_ANNOTATION(capability(x))
// On an RAII type whose constructor takes a lock and whose destructor releases it.
#define SCOPED_CAPABILITY GRANARY_THREAD_ANNOTATION(scoped_lockable)
// On a data member: reading or writing it needs the lock.
#undef GUARDED_BY
#define GUARDED_BY(x) GRANARY_THREAD_ANNOTATION(guarded_by(x))
// On a pointer member: the object it points to needs the lock (the pointer itself does not).
#undef PT_GUARDED_BY
#define PT_GUARDED_BY(x) GRANARY_THREAD_ANNOTATION(pt_guarded_by(x))
// On a lock member: this lock is always taken after (before) the named ones.
#undef ACQUIRED_AFTER
#define ACQUIRED_AFTER(...) GRANARY_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#undef ACQUIRED_BEFORE
#define ACQUIRED_BEFORE(...) GRANARY_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
// On a function: the caller must hold (must not hold) the locks.
#define REQUIRES(...) GRANARY_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) GRANARY_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
// On a function: it takes (releases) the locks and returns with them held (released).
#define ACQUIRE(...) GRANARY_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) GRANARY_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) GRANARY_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
// On a function: it checks at run time that the lock is held; the analysis trusts it.
#define ASSERT_CAPABILITY(x) GRANARY_THREAD_ANNOTATION(assert_capability(x))
// On a function that returns a reference to a lock.
#define RETURN_CAPABILITY(x) GRANARY_THREAD_ANNOTATION(lock_returned(x))
// On a function whose locking the analysis cannot follow; say why beside each use.
#undef NO_THREAD_SAFETY_ANALYSIS
#define NO_THREAD_SAFETY_ANALYSIS GRANARY_THREAD_ANNOTATION(no_thread_safety_analysis)
