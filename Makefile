# jielong — plain make.  `make` builds build/jielong; `make test`, `make bench`, `make demo` as in the README.
PKGS     := openblas libpcre2-8 json-c libmicrohttpd libedit
PKGS += icu-uc   # issue 14: Unicode normalisation and lowercasing for tokenizer.json normalizers
PKGS     += sqlite3   # issue 17: the retrieval index (FTS5 BM25) of jielong index / chat --rag
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CC       ?= cc
OPT      ?= -O3 -march=native
WARN     := -Wall -Wextra -Werror
CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE $(WARN) -fopenmp -Iinclude -Isrc $(PKG_CFLAGS) -MMD -MP
LDLIBS_COMMON = $(PKG_LIBS) -fopenmp -lm -lpthread
CFLAGS_COMMON += $(shell pkg-config --cflags ompi-c 2>/dev/null)   # issue 18: mpi.h only; libmpi is dlopen'd under mpirun
LDLIBS_COMMON += -ldnnl   # issue 20: oneDNN matmul (fp32 and bf16, JIT-dispatched on CPU features)

LIB_SRC   := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRC   := $(wildcard src/cli/*.c)
TEST_SRC  := $(wildcard tests/test_*.c)
BENCH_SRC := $(wildcard bench/bench_*.c)

# Two build flavours share the rules below: release (build/) and sanitizers (build/asan/).
REL  := build
ASAN := build/asan
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.SECONDARY:
.PHONY: all test test-rel test-asan bench demo deps clean
all: $(REL)/jielong

# `make V=1` shows the full commands.
Q := $(if $(V),,@)
define flavour
$(1)/obj/%.o: %.c
	@mkdir -p $$(dir $$@)
	@$(if $(V),,echo "  CC    $$@")
	$$(Q)$$(CC) $$(CFLAGS_COMMON) $(2) -c $$< -o $$@
$(1)/libjielong.a: $$(patsubst %.c,$(1)/obj/%.o,$$(LIB_SRC))
	@rm -f $$@
	@$(if $(V),,echo "  AR    $$@")
	$$(Q)ar rcs $$@ $$^
$(1)/jielong: $$(patsubst %.c,$(1)/obj/%.o,$$(CLI_SRC)) $(1)/libjielong.a
	@$(if $(V),,echo "  LINK  $$@")
	$$(Q)$$(CC) $(2) $$^ -o $$@ $$(LDLIBS_COMMON)
$(1)/tests/%: $(1)/obj/tests/%.o $(1)/libjielong.a
	@mkdir -p $$(dir $$@)
	@$(if $(V),,echo "  LINK  $$@")
	$$(Q)$$(CC) $(2) $$^ -o $$@ $$(LDLIBS_COMMON) -lcmocka
$(1)/bench/%: $(1)/obj/bench/%.o $(1)/libjielong.a
	@mkdir -p $$(dir $$@)
	@$(if $(V),,echo "  LINK  $$@")
	$$(Q)$$(CC) $(2) $$^ -o $$@ $$(LDLIBS_COMMON)
endef
$(eval $(call flavour,$(REL),$(OPT) -g))
$(eval $(call flavour,$(ASAN),$(SAN_FLAGS)))

REL_TESTS  := $(patsubst tests/%.c,$(REL)/tests/%,$(TEST_SRC))
ASAN_TESTS := $(patsubst tests/%.c,$(ASAN)/tests/%,$(TEST_SRC))
BENCHES    := $(patsubst bench/%.c,$(REL)/bench/%,$(BENCH_SRC))

JOBS ?= $(shell nproc 2>/dev/null || echo 2)

deps:
	@bash scripts/deps.sh

# Release tests, then the same tests under AddressSanitizer + UBSan; one summary line at the end.
test: deps
	@$(MAKE) -j$(JOBS) --no-print-directory $(REL)/jielong $(REL_TESTS) $(ASAN)/jielong $(ASAN_TESTS)
	@bash tests/run.sh $(REL) $(ASAN)

test-rel: deps
	@$(MAKE) -j$(JOBS) --no-print-directory $(REL)/jielong $(REL_TESTS)
	@bash tests/run.sh $(REL)

test-asan: deps
	@$(MAKE) -j$(JOBS) --no-print-directory $(ASAN)/jielong $(ASAN_TESTS)
	@bash tests/run.sh $(ASAN)

bench: deps
	@$(MAKE) -j$(JOBS) --no-print-directory $(REL)/jielong $(BENCHES)
	@bash bench/run.sh $(REL)

demo: deps
	@$(MAKE) -j$(JOBS) --no-print-directory $(REL)/jielong
	@bash scripts/demo.sh $(REL)/jielong

clean:
	rm -rf build

# issue 16: libFuzzer harnesses fuzz/fuzz_*.c (clang: fuzzer + ASan + UBSan), the library built again for them in
# build/fuzz. `make fuzz` builds them, makes the seed corpora (fuzz/seeds.sh) and runs each for FUZZ_SECONDS.
FUZZ         := build/fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_FLAGS   := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
# (clang 14 lacks some of gcc's __builtin_cpu_supports names: the fuzz build takes the portable kernels)
# (and warns where gcc does not: warnings stay visible but do not stop the fuzz build; gcc's -Werror guards the code)
FUZZ_CFLAGS   = $(subst -fopenmp,-fopenmp=libgomp,$(CFLAGS_COMMON)) $(FUZZ_FLAGS) '-D__builtin_cpu_supports(x)=0' \
                -Wno-error
FUZZ_BINS    := $(patsubst fuzz/%.c,$(FUZZ)/%,$(wildcard fuzz/fuzz_*.c))
.PHONY: fuzz fuzz-build
$(FUZZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC    $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@
$(FUZZ)/libjielong.a: $(patsubst %.c,$(FUZZ)/obj/%.o,$(LIB_SRC))
	@rm -f $@
	$(Q)ar rcs $@ $^
$(FUZZ)/fuzz_%: $(FUZZ)/obj/fuzz/fuzz_%.o $(FUZZ)/libjielong.a
	@$(if $(V),,echo "  LINK  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer $^ -o $@ $(subst -fopenmp,-fopenmp=libgomp,$(LDLIBS_COMMON))
fuzz-build: deps
	@$(MAKE) -j$(JOBS) --no-print-directory $(FUZZ_BINS) $(REL)/jielong $(REL)/tests/test_badinput
fuzz: fuzz-build
	@bash fuzz/seeds.sh $(REL) $(FUZZ)
	@bash fuzz/run.sh $(FUZZ) $(FUZZ_SECONDS)

-include $(shell find build -name '*.d' 2>/dev/null)
# issue 13: the chat page is compiled into the server (src/serve/page.c includes it with .incbin)
$(REL)/obj/src/serve/page.o $(ASAN)/obj/src/serve/page.o: src/serve/page.html
