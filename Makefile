# Granary: the two commands a new user needs are `make demo` and `make test`.
# Every target runs scripts/setup first (idempotent: a no-op when everything is installed).

BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
TSAN_BUILD ?= build-tsan
FUZZ_SECONDS ?= 20
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

.PHONY: all setup build wheel demo test test-cpp test-python test-asan test-tsan fuzz fuzz-long fuzz-build bench format clean

all: build

setup:
	@scripts/setup

$(BUILD)/build.ninja: | setup
	cmake -S . -B $(BUILD) -G Ninja $(CMAKE_ARGS)

build: setup $(BUILD)/build.ninja
	ninja -C $(BUILD) -j $(JOBS)

# The Python SDK as a wheel, packed from what `make build` built (nothing is compiled again):
# dist/granary-<version>-<python>-<platform>.whl (docs/PYTHON.md).
wheel: build
	.venv/bin/python scripts/wheel $(BUILD) dist

# UI=1 leaves the web console running at the end (on UI_PORT, default 8888) until Ctrl-C.
UI      ?= 0
UI_PORT ?= 8888

demo: build
	GRANARY_BIN=$(CURDIR)/$(BUILD)/granary DEMO_DIR=$(CURDIR)/$(BUILD)/demo/parking UI=$(UI) \
	  UI_PORT=$(UI_PORT) scripts/demo

# Both suites run even when the first fails (one failure should not hide the other's); make
# still exits non-zero when either failed.
# One local Spark cluster (scripts/spark-cluster) serves the Spark tests of both suites
# ($GRANARY_SPARK_REMOTE); it is stopped afterwards whatever the outcome. Run alone, those tests
# start their own.
test: build
	@scripts/with-spark-cluster $(CURDIR)/$(BUILD)/spark-cluster-test sh -c 'rc=0; \
	  $(MAKE) --no-print-directory test-cpp || rc=1; \
	  $(MAKE) --no-print-directory test-python || rc=1; \
	  if [ $$rc -ne 0 ]; then echo "make test: some tests failed (see above)" >&2; fi; exit $$rc'

test-cpp:
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-python:
	GRANARY_BIN=$(CURDIR)/$(BUILD)/granary GRANARY_PYTHONPATH=$(CURDIR)/$(BUILD)/python \
	  .venv/bin/python -m pytest -q --durations=15 tests

# The C++ tests under AddressSanitizer and UndefinedBehaviorSanitizer (part of CI). The tests
# against a Spark cluster (names with "spark") run in `make test` only: each needs the JVM cluster
# (a minute to start on 2 cores) and their C++ side is the gRPC client, which the other suites'
# gRPC server tests already exercise under the sanitizers. LeakSanitizer ignores the globals that
# gRPC, protobuf and abseil keep for the process's life (scripts/lsan.supp).
# ARROW_DEFAULT_MEMORY_POOL=system: Arrow's buffers come from malloc, which ASan poisons when freed,
# instead of the wheel's mimalloc, which keeps freed buffers as its own memory: a read of an Arrow
# buffer after its last owner let it go is then a heap-use-after-free report, not a silent read.
test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGRANARY_SANITIZE=ON \
	  -DGRANARY_BUILD_BENCH=OFF $(CMAKE_ARGS)
	ninja -C $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ARROW_DEFAULT_MEMORY_POOL=system \
	  ASAN_OPTIONS=detect_leaks=1:detect_container_overflow=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 900 -E spark

# The tests of code that runs threads, under ThreadSanitizer (part of CI), built with clang (which
# also checks the GUARDED_BY annotations: -Wthread-safety). Only these binaries are built: the
# metrics and progress counters (common), the offline scan's row-group readers (offline) and the
# point-in-time join's threads (offline_join: the entity side sorted in hash ranges, Offer's
# workers, the sort-and-sweep buckets), the RocksDB bulk load's sort and writer threads (online),
# the online stores' concurrent readers and writers and
# the store opener's retry thread (online_store), materialization's writer threads and the
# scheduler (materialize_store), the registry watcher, push log and metrics history (serving),
# and the servers' worker threads (http, feature_server, materialize_endpoint). A report fails
# the run; scripts/tsan.supp lists what is let pass in libraries built without TSan (the pyarrow
# wheel's Arrow and Parquet, RocksDB), and why. Each binary runs whole: the slowest take under a
# minute (docs/PERFORMANCE.md, "Build and test times").
# ARROW_DEFAULT_MEMORY_POOL=system: Arrow's buffers come from malloc, which TSan follows, instead
# of the wheel's mimalloc, whose reuse across threads TSan cannot see (scripts/tsan.supp).
# detect_deadlocks=0: TSan's lock-order checker holds at most 64 locks per thread, and a RocksDB
# write batch takes one stripe lock per key stripe it touches (up to 4096, always in increasing
# order, rocksdb_store.h), which aborts the checker itself ("sanitizer_deadlock_detector.h:67").
TSAN_TESTS ?= src/granary/common/granary_common_test \
  src/granary/offline/granary_offline_test \
  src/granary/offline/granary_offline_join_test \
  src/granary/online/granary_online_test \
  src/granary/online/granary_online_store_test \
  src/granary/materialize/granary_materialize_store_test \
  src/granary/serving/granary_serving_test \
  src/granary/serving/http/granary_http_test \
  src/granary/serving/granary_feature_server_test \
  src/granary/serving/granary_materialize_endpoint_test

test-tsan: setup
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(TSAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DGRANARY_TSAN=ON -DGRANARY_BUILD_BENCH=OFF $(CMAKE_ARGS)
	ninja -C $(TSAN_BUILD) -j $(JOBS) $(notdir $(TSAN_TESTS))
	@rc=0; for t in $(TSAN_TESTS); do \
	  echo "== tsan $$(basename $$t)"; start=$$(date +%s); \
	  ARROW_DEFAULT_MEMORY_POOL=system \
	  TSAN_OPTIONS="halt_on_error=1 detect_deadlocks=0 suppressions=$(CURDIR)/scripts/tsan.supp" \
	    $(TSAN_BUILD)/$$t --gtest_brief=1 >$(TSAN_BUILD)/$$(basename $$t).log 2>&1 \
	    || { rc=1; echo "FAILED: the log is $(TSAN_BUILD)/$$(basename $$t).log"; tail -n 60 $(TSAN_BUILD)/$$(basename $$t).log; }; \
	  echo "   $$(( $$(date +%s) - start ))s"; \
	done; exit $$rc

# Every libFuzzer target under fuzz/ for FUZZ_SECONDS each (part of CI, briefly). Built with clang.
fuzz: fuzz-build
	scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The same for 10 minutes per target (not in CI): run it after changing a parser.
fuzz-long: fuzz-build
	scripts/fuzz $(FUZZ_BUILD) 600

fuzz-build: setup
	CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DGRANARY_FUZZ=ON -DGRANARY_BUILD_BENCH=OFF $(CMAKE_ARGS)
	ninja -C $(FUZZ_BUILD) -j $(JOBS) granary_fuzzers

bench: build
	scripts/bench

format:
	find src bench -name '*.cc' -o -name '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) $(TSAN_BUILD) dist
