# The README's two commands are `make demo` and `make test`.
SWIFT ?= swift

.PHONY: deps build-deps build strict demo test test-busy soak tsan asan lint fuzz protos check-protos deb check-deb clean

deps:
	@.ci/install-deps test

build-deps:
	@.ci/install-deps build

build: build-deps
	$(SWIFT) build

# Warnings are errors in every build of ours (Package.swift: treatAllWarnings), and a target may
# import only what Package.swift declares it depends on. The same build directory and flags as the
# tests', so CI builds once.
IMPORT_CHECK = --explicit-target-dependency-import-check error

strict: deps
	$(SWIFT) build --build-tests $(IMPORT_CHECK)

# The harness with no job runs the built-in demo (coarse mode, then fine mode) and ends with the
# summary table; `build` builds every product, the demo worker included once it exists.
demo: build
	.build/debug/spark-mesos-executor harness --html .build/demo-timeline.html

# The Python worker's tests run with Debian's python3; their end-to-end part drives the
# executor just built.
PYTHON_TESTS = /usr/bin/python3 -m unittest discover -s Tests/PythonWorkerTests -t Tests/PythonWorkerTests

test: deps
	$(SWIFT) build --build-tests $(IMPORT_CHECK)
	$(SWIFT) test --skip-build
	$(PYTHON_TESTS)

# The whole suite once more with every core kept busy by CPU hogs (CI runs both).
test-busy: deps
	$(SWIFT) build --build-tests $(IMPORT_CHECK)
	.ci/with-cpu-hog $(SWIFT) test --skip-build
	.ci/with-cpu-hog $(PYTHON_TESTS)

# The soak (Tests/ExecutorEndToEndTests/SoakTests.swift): 10,000 mixed tasks in both modes and
# 100,000 mini-tasks through the real executor binary and the local agent, with agent restarts;
# exactly-once delivery and bounded executor memory. Not in `make test`: it takes minutes.
soak: deps
	$(SWIFT) build --build-tests $(IMPORT_CHECK)
	SME_SOAK=1 $(SWIFT) test --skip-build --filter SoakTests

# The Swift suite under ThreadSanitizer / AddressSanitizer, each in a build directory of its own
# (everything rebuilt with the sanitizer: a long first build). Not in CI. SAN_FILTER narrows it,
# e.g. `make tsan SAN_FILTER=ExecutorCoreTests`. SANITIZE_THREAD has LockedValue tell TSan about
# its lock (Sources/SystemSupport/LockedValue.swift); .ci/tsan-suppressions covers what Swift's
# runtime hides from TSan (README, Development → Sanitizers).
SAN_FILTER ?=
SAN_TEST = $(if $(SAN_FILTER),--filter $(SAN_FILTER),)
TSAN_BUILD = --sanitize=thread -Xswiftc -DSANITIZE_THREAD --scratch-path .build-tsan

tsan: deps
	$(SWIFT) build --build-tests $(TSAN_BUILD)
	TSAN_OPTIONS="halt_on_error=0 die_after_fork=0 suppressions=$(CURDIR)/.ci/tsan-suppressions" $(SWIFT) test --skip-build $(TSAN_BUILD) $(SAN_TEST)

asan: deps
	$(SWIFT) build --build-tests --sanitize=address --scratch-path .build-asan
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --skip-build --sanitize=address --scratch-path .build-asan $(SAN_TEST)

# Every fuzz target, FUZZ_RUNS executions each (Tests/Fuzz/README.md).
fuzz: deps
	.ci/fuzz

# swift-format with .swift-format (generated code excluded); CI fails on any finding.
lint:
	$(SWIFT) format lint --strict $$(git ls-files '*.swift' | grep -v /Generated/)

protos: deps
	.ci/generate-protos

check-protos: deps
	.ci/generate-protos --check

# A .deb for agents (release build, Swift runtime linked statically), and its install test.
deb: deps
	Packaging/build-deb

check-deb: deps
	Packaging/test-deb

clean:
	rm -rf .build .build-release .build-protoc .build-deb .build-fuzz .build-tsan .build-asan
