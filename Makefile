# nodeagent: a Kubernetes CRI runtime. `make help` lists the targets.

SHELL        := /bin/bash
export PATH  := /usr/local/go/bin:$(PATH)
GO           ?= go
# Semantic version of this build; the git commit is added as build metadata.
VERSION      ?= 0.1.0
GIT_COMMIT   := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS      := -s -w -X github.com/nodeagent/nodeagent/internal/version.Version=$(VERSION)$(if $(GIT_COMMIT),+$(GIT_COMMIT))
BIN          := $(CURDIR)/bin
PKGS         := ./...
# make install: DESTDIR stages into a tree; PREFIX is where the binaries go.
# The configuration stays at /etc/nodeagent/config.toml (the daemon's default
# --config) and the unit in /etc/systemd/system, whatever PREFIX is.
PREFIX       ?= /usr/local
BINDIR       ?= $(PREFIX)/bin
DOCDIR       ?= $(PREFIX)/share/doc/nodeagent
UNITDIR      ?= /etc/systemd/system
DESTDIR      ?=

.PHONY: help build run test unit test-reliability lint critest critest-gate bench bench-compare install-deps install-cri-tools clean \
	install uninstall deploy-config kubelet-smoke

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## Build bin/nodeagent and bin/crictl-lite (static, CGO_ENABLED=0)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/nodeagent ./cmd/nodeagent
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/crictl-lite ./cmd/crictl-lite

run: install-deps build ## Install what is needed, build, and run the daemon in the foreground (as root)
	hack/run.sh $(BIN)/nodeagent

install-deps: ## Install machine packages, CNI plugins and runc >= 1.2 (idempotent)
	hack/install-deps.sh

install-cri-tools: ## Build crictl, critest and ginkgo from cri-tools v1.36.0 (cached)
	hack/install-cri-tools.sh

lint: ## gofmt, go vet, go.mod tidy and shellcheck
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) mod tidy -diff
	@if command -v shellcheck >/dev/null; then shellcheck -x hack/*.sh .ci/run; else echo "lint: shellcheck not installed, skipped"; fi
	hack/test-install.sh

unit: ## Unit and root integration tests (go test ./...)
	NODEAGENT_BIN=$(BIN)/nodeagent $(GO) test -count=1 -timeout 20m $(PKGS)

# The load, churn, log and fault tests of test/e2e (also part of `unit`).
RELIABILITY_TESTS := TestLoad|TestChurn|TestLog|TestFaults|TestShimKilled|TestCNIPlugin

test-reliability: build ## Only the load, churn (1000 pods), log rotation/disk-full and fault e2e tests (as root)
	NODEAGENT_BIN=$(BIN)/nodeagent $(GO) test -count=1 -timeout 20m -v -run '$(RELIABILITY_TESTS)' ./test/e2e/

test: install-deps install-cri-tools lint build unit critest-gate ## Everything CI runs: deps, lint, unit, root integration tests, conformance gate

critest: install-deps install-cri-tools build ## Run upstream critest against nodeagent and the offline test registry
	hack/critest.sh

# The one spec no offline registry can serve (a pinned upstream digest).
CRITEST_OFFLINE_SKIP := public image with digest should be pulled and removed

critest-gate: install-deps install-cri-tools build ## critest; fails if a spec of test/conformance/expected-pass.txt fails
	CRITEST_GATE=test/conformance/expected-pass.txt hack/critest.sh '--ginkgo.skip=$(CRITEST_OFFLINE_SKIP)'

bench-compare: install-deps build ## Benchmark nodeagent and containerd 2.4 side by side on this machine
	hack/bench-compare.sh

bench: build ## Benchmarks (go test -bench) of pulls, unpack and RPC latencies
	NODEAGENT_BIN=$(BIN)/nodeagent $(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean: ## Remove build output
	rm -rf $(BIN) _output

install: ## Install binaries and unit; config.toml and crictl.yaml only if absent (PREFIX, DESTDIR; `make build` first)
	@for b in nodeagent crictl-lite; do \
		test -x $(BIN)/$$b || { echo "install: $(BIN)/$$b is missing: run 'make build' first"; exit 1; }; done
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)/etc/nodeagent
	install -m 0755 $(BIN)/nodeagent $(BIN)/crictl-lite $(DESTDIR)$(BINDIR)/
	sed -e 's|/usr/local/bin/nodeagent|$(BINDIR)/nodeagent|' -e 's|/usr/local/share/doc/nodeagent|$(DOCDIR)|' \
		deploy/systemd/nodeagent.service >$(DESTDIR)$(UNITDIR)/nodeagent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/nodeagent.service
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	@for f in deploy/config.toml:/etc/nodeagent/config.toml deploy/crictl.yaml:/etc/crictl.yaml; do \
		src=$${f%%:*}; dst=$(DESTDIR)$${f#*:}; \
		if [ -e "$$dst" ]; then echo "install: kept existing $$dst"; \
		else echo "install -m 0644 $$src $$dst"; install -m 0644 "$$src" "$$dst"; fi; done
	@echo "install: now run: systemctl daemon-reload && systemctl enable --now nodeagent"

uninstall: ## Remove what `make install` put; keeps an edited config and never touches /var/lib/nodeagent
	rm -f $(DESTDIR)$(BINDIR)/nodeagent $(DESTDIR)$(BINDIR)/crictl-lite \
		$(DESTDIR)$(UNITDIR)/nodeagent.service $(DESTDIR)$(DOCDIR)/README.md
	rmdir $(DESTDIR)$(DOCDIR) 2>/dev/null || true
	@for f in deploy/config.toml:/etc/nodeagent/config.toml deploy/crictl.yaml:/etc/crictl.yaml; do \
		src=$${f%%:*}; dst=$(DESTDIR)$${f#*:}; \
		if [ ! -e "$$dst" ]; then :; \
		elif cmp -s "$$src" "$$dst"; then echo "rm -f $$dst"; rm -f "$$dst"; \
		else echo "uninstall: kept $$dst (differs from $$src)"; fi; done
	rmdir $(DESTDIR)/etc/nodeagent 2>/dev/null || true
	@echo "uninstall: stop the daemon first (systemctl disable --now nodeagent); running pods, /var/lib/nodeagent and /run/nodeagent are left alone"

deploy-config: ## Regenerate deploy/config.toml from `nodeagent config default`
	$(GO) run ./cmd/nodeagent config default >deploy/config.toml.tmp
	mv deploy/config.toml.tmp deploy/config.toml

kubelet-smoke: install-deps install-cri-tools build ## Build kubelet v1.36 from the module proxy; run a static pod through nodeagent to Ready
	hack/kubelet-smoke.sh
