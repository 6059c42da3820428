# Quick start:  make run     (install deps if missing, release build, serve demo on :8080)
#               make test    (ASan+UBSan build, every test through ctest)
# Production:   make release (only the build packages, release build of the server alone;
#                             then `sudo cmake --install build/release`, README "Run in production")
JOBS ?= $(shell nproc)
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
ifeq ($(CI),true)
  CMAKE_FLAGS += -DWERROR=ON
endif

.PHONY: deps deps-build release build run run-split test test-stress soak soak-faults soak-split soak-load tsan fuzz bench bench-bus bench-write bench-patch bench-lag bench-auth bench-revenue bench-parks bench-scale bench-split docs format clean

# Everything make test, make fuzz and the benchmarks need (Debian and npm packages).
deps:
	@bash scripts/install-deps.sh

# Only what building the server needs: no test tools, browser, Node.js or Clang.
deps-build:
	@bash scripts/install-deps.sh --build

# The server alone, for installation: Release, no test suite (so no GoogleTest needed).
release: deps-build
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build/release -j $(JOBS) --target townhall

build: deps
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS)
	cmake --build build/release -j $(JOBS) --target townhall

run: build
	./build/release/app/townhall serve --demo --port 8080 --data-dir ./data

# The split deployment on this machine: a broker, `--modules auth`, `--modules
# permits,revenue,parks,notify` and nginx in front, on loopback ports (data in ./data-split).
run-split: build
	bash scripts/run-split.sh

test: deps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON $(CMAKE_FLAGS)
	cmake --build build/asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(JOBS) --timeout 300

# The suite on an overloaded machine: 8 tests at once on 2 cores, each repeated until it
# fails (at most 5 runs). Catches tests that pass only on an idle machine.
# The suite under load: STRESS_JOBS tests at once (twice the cores by default), each run
# STRESS_RUNS times unless it fails first. Finds what depends on timing, not behaviour.
STRESS_JOBS ?= 4
STRESS_RUNS ?= 2
test-stress: deps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON $(CMAKE_FLAGS)
	cmake --build build/asan -j $(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j $(STRESS_JOBS) --repeat until-fail:$(STRESS_RUNS) --timeout 900

# The crash soak, long: kill -9 of the server under load KILLS times (make test runs 30).
KILLS ?= 1000
soak: deps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON $(CMAKE_FLAGS)
	cmake --build build/asan -j $(JOBS) --target soak townhall
	./build/asan/tests/soak --binary build/asan/app/townhall --registry config/townhall.json --kills $(KILLS)

# The crash soak with the server's storage failing under the load (make test runs 10 kills).
soak-faults: deps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON $(CMAKE_FLAGS)
	cmake --build build/asan -j $(JOBS) --target soak townhall_faulty
	./build/asan/tests/soak --binary build/asan/tests/townhall_faulty --registry config/townhall.json \
	  --kills $(KILLS) --faults $(or $(FAULT_SEED),7)

# The crash soak of the split deployment (issue 23): a broker and two processes, kill -9 of
# either, both, or the broker under load, KILLS times (200 unless given; make test runs 20).
soak-split: deps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DSANITIZE=ON $(CMAKE_FLAGS)
	cmake --build build/asan -j $(JOBS) --target soak townhall
	./build/asan/tests/soak --binary build/asan/app/townhall --registry config/townhall.json \
	  --kills $(if $(filter file,$(origin KILLS)),200,$(KILLS)) --split

# The unit tests under ThreadSanitizer (the bus's threads, writers, caches); not in CI's
# time budget, run it after touching concurrency.
tsan: deps
	cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug -DTSAN=ON $(CMAKE_FLAGS)
	cmake --build build/tsan -j $(JOBS) --target unit_tests auth_tests permits_tests revenue_tests parks_tests
	cd build/tsan && TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp" ctest -L unit -j $(JOBS) --output-on-failure --timeout 600

# libFuzzer (Clang): the HTTP gateway, request bodies, event envelopes through a consumer,
# the registry. Each target replays its regressions and seeds, then fuzzes for
# FUZZ_SECONDS; a crash leaves its input in build/fuzz/artifacts/ and fails the run.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = fuzz_http fuzz_json_body fuzz_event fuzz_registry
fuzz: deps
	CXX=clang++ cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DTOWNHALL_FUZZ=ON -DTOWNHALL_TESTS=OFF $(CMAKE_FLAGS)
	cmake --build build/fuzz -j $(JOBS) --target $(FUZZ_TARGETS)
	@set -e; mkdir -p build/fuzz/artifacts; for t in $(FUZZ_TARGETS); do \
	  work=build/fuzz/corpus/$$t; mkdir -p $$work tests/fuzz/regressions/$$t; \
	  echo "== $$t: regressions, then $(FUZZ_SECONDS) s"; \
	  ./build/fuzz/tests/fuzz/$$t -runs=0 tests/fuzz/regressions/$$t tests/fuzz/corpus/$$t; \
	  if ! ./build/fuzz/tests/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
	      -artifact_prefix=build/fuzz/artifacts/$$t- $$work tests/fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1; then \
	    tail -60 build/fuzz/$$t.log; echo "$$t FAILED: its input is in build/fuzz/artifacts/"; exit 1; fi; \
	  grep -E "^(#[0-9]+ *DONE|stat::number_of_executed_units|stat::peak_rss_mb)" build/fuzz/$$t.log; \
	done

bench: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target townhall bare_beast
	bash bench/http/run.sh build/bench

# Soak under load (issues 14, 24): a release server, the mixed read/write load held at RATE
# (default 1000/s) for DURATION (default 10m), then wrk's most for MAX_DURATION (default
# 2m); RSS flat within ±10 % after warm-up, no error answers, p99 at the held rate reported.
soak-load: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target townhall rate_load
	bash bench/soak/run.sh build/bench

bench-bus: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target bus_bench
	./build/bench/bench/bus_bench

# The write path (group commit) against raw SQLite single-row commits (issue 24).
bench-write: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target write_bench
	./build/bench/bench/write_bench

# Citizen PATCH rate with every cache subscribed (issue 24 §3); PROFILE=1 records perf.
bench-patch: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target townhall
	bash bench/patch/run.sh build/bench

# Issue 24's lag goal: PATCHes at a fixed rate, each cache's lag, the VM's steal (bench/README.md).
bench-lag: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target townhall rate_load
	bash bench/patch/lag.sh build/bench

bench-auth: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target auth_bench
	./build/bench/bench/auth_bench

bench-revenue: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target revenue_bench
	./build/bench/bench/revenue_bench

bench-parks: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target parks_bench
	./build/bench/bench/parks_bench

# The split deployment against one process (issue 23): PATCH lag at RATE/s and the most
# PATCHes per second, in the same run (bench/README.md).
bench-split: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target townhall rate_load
	bash bench/split/run.sh build/bench

# SCALE_ARGS, e.g. "--scale 0.05 --reuse" (bench/README.md, data scale).
bench-scale: deps
	cmake -S . -B build/bench -DCMAKE_BUILD_TYPE=Release -DTOWNHALL_BENCH=ON $(CMAKE_FLAGS)
	cmake --build build/bench -j $(JOBS) --target scale_bench
	./build/bench/bench/scale_bench $(SCALE_ARGS)

# Regenerates what docs/ embeds from the registry (make test checks it is current).
docs: build
	bash scripts/registry-graph.sh build/release/app/townhall docs/modules.md --write

format:
	find app platform bus modules migrations tests bench -name '*.cpp' -o -name '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
