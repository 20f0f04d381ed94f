# scoredb — one entry point: deps, all, test, test-asan, bench, run, fuzz, clean.
#
# Every setting is on this first screen.
CC       ?= cc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
WARN     := -std=c11 -Wall -Wextra -Wpedantic -Werror
DEFS     := -D_GNU_SOURCE
PKGS     := lmdb libxxhash jansson libcjson
SRV_PKGS := libmicrohttpd libsodium
TEST_PKGS:= criterion
# Debian packages `make deps` installs when missing (pkg-config names above).
DEB_PKGS := pkg-config liblmdb-dev libxxhash-dev libjansson-dev libcjson-dev libcriterion-dev libmicrohttpd-dev libsodium-dev
# ISA flags are per file, never global (STYLE.md).
AVX2_FLAGS   := -mavx2 -mfma
AVX512_FLAGS := -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma
# `make run` settings.
DATA     ?= data
LISTEN   ?= 127.0.0.1:8080
DELAY    ?= 10m
# `make bench QUICK=1` runs at 1M rows.
QUICK    ?=
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

.PHONY: all deps test test-unit test-asan bench run fuzz clean
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

test: deps
	@$(MAKE) --no-print-directory test-unit

test-unit: $(BUILD)/scoredb $(BUILD)/test_scoredb
	$(TEST_ENV) SCOREDB_BIN=$(abspath $(BUILD)/scoredb) $(BUILD)/test_scoredb --jobs 2
	$(TEST_ENV) SCOREDB_BIN=$(abspath $(BUILD)/scoredb) bash tests/cli_test.sh

# LeakSanitizer stays on for our code; Criterion's runner keeps a few
# allocations of its own until exit, which tests/lsan.supp names.
test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 EXTRA_CFLAGS="$(SAN)" \
	  TEST_ENV="LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp)" test-unit

run: all
	@bash server/run.sh $(BUILD)/scoredb $(DATA) $(LISTEN) $(DELAY)

bench: all
	@$(MAKE) --no-print-directory -C bench QUICK=$(QUICK) SCOREDB=$(abspath $(BUILD)/scoredb)

fuzz: all
	@echo "fuzz: no targets yet"

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
