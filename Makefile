# The README's two commands are `make demo` and `make test`.
SWIFT ?= swift

.PHONY: deps build demo test protos check-protos clean

deps:
	@.ci/install-deps

build: deps
	$(SWIFT) build

demo: build
	.build/debug/spark-mesos-executor demo

test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

protos: deps
	.ci/generate-protos

check-protos: deps
	.ci/generate-protos --check

clean:
	rm -rf .build .build-protoc
