# scoredb — one entry point: deps, all, test, test-asan, bench, run, fuzz, clean.
#
# Every setting is on this first screen.
CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Werror
DEFS     := -D_GNU_SOURCE
PKGS     := lmdb libxxhash jansson libcjson libzstd
SRV_PKGS := libmicrohttpd libsodium
TEST_PKGS:= criterion
# Debian packages `make deps` installs when missing (pkg-config names above).
DEB_PKGS := pkg-config python3 liblmdb-dev libxxhash-dev libjansson-dev libcjson-dev libcriterion-dev libmicrohttpd-dev libsodium-dev libzstd-dev
# Node and npm for the SDK tests (tests/sdk), installed when `npm` is missing
# (a NodeSource nodejs bundles npm, so dpkg alone cannot tell).
NODE_DEB := nodejs npm
# ISA flags are per file, never global (STYLE.md).
AVX2_FLAGS   := -mavx2 -mfma
AVX512_FLAGS := -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma
# `make run` settings.
DATA     ?= data
LISTEN   ?= 127.0.0.1:8080
DELAY    ?= 10m
# `make bench QUICK=1` runs at 1M rows.
QUICK    ?=
# `make fuzz`: seconds per target, and the compiler with libFuzzer.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(SRV_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
SRV_LIBS   := $(shell pkg-config --libs $(SRV_PKGS) 2>/dev/null)
TEST_LIBS  := $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)

ALL_CFLAGS := $(WARN) $(DEFS) $(CFLAGS) -Iinclude -Iengine -Iserver $(PKG_CFLAGS) $(EXTRA_CFLAGS)

ENGINE_SRC := $(wildcard engine/*.c engine/kernels/*.c)
SERVER_SRC := $(filter-out server/main.c server/commands.c,$(wildcard server/*.c))
TEST_SRC   := $(wildcard tests/test_*.c)
ENGINE_OBJ := $(ENGINE_SRC:%.c=$(BUILD)/%.o)
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
TEST_OBJ   := $(TEST_SRC:%.c=$(BUILD)/%.o)

.PHONY: all deps test test-unit test-asan test-long bench run fuzz fuzz-replay clean
all: deps
	@$(MAKE) --no-print-directory $(BUILD)/scoredb $(BUILD)/libscoredb.a

# Installs only what is missing, non-interactively. Checked with dpkg so it
# also works before pkg-config itself is installed.
deps:
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v npm >/dev/null 2>&1 || { echo "make deps: installing $(NODE_DEB)"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $(NODE_DEB) >/dev/null; }

# The official SDKs from tests/sdk/package-lock.json (npm ci), into the
# git-ignored tests/sdk/node_modules, again only when the lock file changes.
tests/sdk/node_modules/.installed: tests/sdk/package-lock.json tests/sdk/package.json
	cd tests/sdk && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/engine/kernels/avx2.o: engine/kernels/avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/engine/kernels/avx512.o: engine/kernels/avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libscoredb.a: $(ENGINE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/scoredb: $(BUILD)/server/main.o $(BUILD)/server/commands.o $(SERVER_OBJ) $(BUILD)/libscoredb.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(SRV_LIBS) $(PKG_LIBS)

$(BUILD)/test_scoredb: $(TEST_OBJ) $(SERVER_OBJ) $(BUILD)/libscoredb.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(TEST_LIBS) $(SRV_LIBS) $(PKG_LIBS)

# The fault-injection shim (tests/fault/fault.c): an LD_PRELOAD library,
# built without sanitizers whatever the build.
$(BUILD)/fault.so: tests/fault/fault.c
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(DEFS) -O2 -g -shared -fPIC -o $@ $< -ldl

FAULT_ENV = SCOREDB=$(abspath $(BUILD)/scoredb) SCOREDB_FAULT_SO=$(abspath $(BUILD)/fault.so)

test: deps
	@$(MAKE) --no-print-directory test-unit

test-unit: $(BUILD)/scoredb $(BUILD)/test_scoredb $(BUILD)/fault.so tests/sdk/node_modules/.installed
	$(TEST_ENV) SCOREDB_BIN=$(abspath $(BUILD)/scoredb) $(BUILD)/test_scoredb --jobs 2
	$(TEST_ENV) node tests/sdk/run.mjs $(abspath $(BUILD)/scoredb)
	$(TEST_ENV) SCOREDB_BIN=$(abspath $(BUILD)/scoredb) bash tests/cli_test.sh
	$(TEST_ENV) SCOREDB=$(abspath $(BUILD)/scoredb) python3 tests/reference/check.py --scale 0.5 --queries 200
	$(TEST_ENV) SCOREDB=$(abspath $(BUILD)/scoredb) python3 tests/crash_test.py
	$(TEST_ENV) $(FAULT_ENV) python3 tests/fault_test.py
	@$(MAKE) --no-print-directory fuzz-replay

# Not in `make test`: the kill loop 200 times and the whole fault matrix
# (docs/reliability.md); about LONG_MIN minutes here.
test-long: deps
	@$(MAKE) --no-print-directory $(BUILD)/scoredb $(BUILD)/fault.so
	$(FAULT_ENV) python3 tests/crash_test.py --long
	$(FAULT_ENV) python3 tests/fault_test.py --long

# LeakSanitizer stays on for our code; Criterion's runner keeps a few
# allocations of its own until exit, which tests/lsan.supp names.
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 EXTRA_CFLAGS="$(SAN)" \
	  TEST_ENV="LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)" test-unit

run: all
	@bash server/run.sh $(BUILD)/scoredb $(DATA) $(LISTEN) $(DELAY)

bench: all
	@$(MAKE) --no-print-directory -C bench QUICK=$(QUICK) SCOREDB=$(abspath $(BUILD)/scoredb)

# Fuzz targets, one per kind of untrusted input: tests/fuzz/fuzz_<input>.c.
# test-unit replays each saved corpus (tests/fuzz/corpus/<input>/) through
# tests/fuzz/replay.c, built like everything else in $(BUILD). `make fuzz`
# builds the targets and the engine with clang and libFuzzer into
# build-fuzz/ and runs each for FUZZ_SECONDS; what it finds goes to
# build/fuzz-corpus/<input>/ and crashes to build/fuzz-crash-<input>-*,
# never into the committed corpus (copy in a small input by hand).
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_DEB    := clang libclang-rt-14-dev
FZ          := build-fuzz
FZ_CFLAGS    = $(WARN) $(DEFS) -g -O1 -fno-omit-frame-pointer -Iinclude -Iengine $(PKG_CFLAGS) \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all

.SECONDARY: $(FUZZ_NAMES:%=$(BUILD)/tests/fuzz/fuzz_%.o) $(BUILD)/tests/fuzz/replay.o \
            $(FUZZ_NAMES:%=$(FZ)/tests/fuzz/fuzz_%.o) $(ENGINE_SRC:%.c=$(FZ)/%.o)
$(BUILD)/fuzz/replay_%: $(BUILD)/tests/fuzz/fuzz_%.o $(BUILD)/tests/fuzz/replay.o $(BUILD)/libscoredb.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(PKG_LIBS)

fuzz-replay: $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
	@p=0; f=0; for t in $(FUZZ_NAMES); do \
	  r=$$($(TEST_ENV) $(BUILD)/fuzz/replay_$$t tests/fuzz/corpus/$$t); set -- $$r; \
	  case "$$2:$$4" in [0-9]*:[0-9]*) p=$$((p + $$2)); f=$$((f + $$4));; *) f=$$((f + 1));; esac; \
	done; echo "fuzz-replay: $$p passed, $$f failed"; [ $$f = 0 ]

$(FZ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FZ_CFLAGS) -MMD -MP -c $< -o $@
$(FZ)/engine/kernels/avx2.o: engine/kernels/avx2.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FZ_CFLAGS) $(AVX2_FLAGS) -MMD -MP -c $< -o $@
$(FZ)/engine/kernels/avx512.o: engine/kernels/avx512.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FZ_CFLAGS) $(AVX512_FLAGS) -MMD -MP -c $< -o $@
$(FZ)/fuzz_%: $(FZ)/tests/fuzz/fuzz_%.o $(ENGINE_SRC:%.c=$(FZ)/%.o)
	$(FUZZ_CC) $(FZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

fuzz: deps
	@missing=""; for p in $(FUZZ_DEB); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "make fuzz: installing$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@$(MAKE) --no-print-directory $(FUZZ_NAMES:%=$(FZ)/fuzz_%)
	@for t in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz-corpus/$$t; echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  $(FZ)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=build/fuzz-crash-$$t- build/fuzz-corpus/$$t tests/fuzz/corpus/$$t \
	    2>build/fuzz-$$t.log || { tail -n 60 build/fuzz-$$t.log; exit 1; }; \
	  grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' build/fuzz-$$t.log; \
	done

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) $(FZ) -name '*.d' 2>/dev/null)
