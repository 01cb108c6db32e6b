# mod_rtboard: build with apxs, run a private httpd, test.
#   make run    install missing packages, build, start on SQLite, print the URL
#   make stop   stop it
#   make cluster        PostgreSQL, two nodes and the front on one machine
#   make cluster-stop   stop them
#   make test   every test: unit (ASan+UBSan), fuzz smoke, integration (SQLite and PostgreSQL), system, browser
APXS     ?= apxs
CC       ?= cc
PORT     ?= 8080
VAR      ?= $(CURDIR)/var
PGINC    := $(shell pg_config --includedir 2>/dev/null || echo /usr/include/postgresql)
SRC      := $(wildcard src/*.c)
HDR      := $(wildcard src/*.h)
MODULE   := src/.libs/mod_rtboard.so
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,build/unit/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRC))
UNIT_CFLAGS := -std=gnu11 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined \
               -fno-omit-frame-pointer -fno-sanitize-recover=all -Isrc

.PHONY: all build deps test-deps run stop restart cluster cluster-stop install uninstall unit fuzz \
        fuzz-smoke integration integration-pgsql system-test browser test clean format lint asan

all: build

build: $(MODULE)

$(MODULE): $(SRC) $(HDR)
	$(APXS) -c -n rtboard -Wc,-std=gnu11 -Wc,-Wall -Wc,-Wextra -Wc,-Wno-unused-parameter \
	    -Wc,-Wno-missing-field-initializers -Wc,-Wno-sign-compare -Wc,-Werror -Isrc -I$(PGINC) -ljansson -lpq \
	    -o mod_rtboard.la src/mod_rtboard.c $(filter-out src/mod_rtboard.c,$(SRC)) >build.log 2>&1 \
	    || { cat build.log; exit 1; }
	@# a new inode (cp + mv), never an in-place rewrite: running servers map the old file
	@mkdir -p src/.libs && cp .libs/mod_rtboard.so $(MODULE).tmp && mv -f $(MODULE).tmp $(MODULE)

deps:
	@scripts/deps.sh run

test-deps:
	@scripts/deps.sh test
	@for d in tests/browser tests/js; do \
	    if [ -f $$d/package.json ] && [ ! -d $$d/node_modules ]; then \
	        (cd $$d && npm install --no-audit --no-fund --silent) || exit 1; fi; done

run: deps build
	@VAR=$(VAR) PORT=$(PORT) scripts/server.sh start
	@echo ""
	@echo "mod_rtboard is running: http://127.0.0.1:$(PORT)/?board=demo"
	@echo "  demo users: alice, bob, carol (password: the user's name)"
	@echo "  alice's private board: http://127.0.0.1:$(PORT)/?board=private"
	@echo "  status (user admin, password admin): http://127.0.0.1:$(PORT)/rtboard-status"
	@echo "  stop it with: make stop"

stop:
	@VAR=$(VAR) PORT=$(PORT) scripts/server.sh stop

restart: stop run

cluster:
	@scripts/deps.sh cluster
	@$(MAKE) --no-print-directory build
	@VAR=$(VAR) PORT=$(PORT) scripts/cluster.sh start

cluster-stop:
	@VAR=$(VAR) PORT=$(PORT) scripts/cluster.sh stop

# Every path of the installed Apache comes from apxs (Debian: modules in
# /usr/lib/apache2/modules, configuration in /etc/apache2; Fedora/RHEL:
# /usr/lib64/httpd/modules, /etc/httpd/conf). Debian's mods-available files
# (conf/rtboard.load, conf/rtboard.conf) are installed only where that
# directory exists; an rtboard.conf edited since is kept (the shipped one goes
# beside it as rtboard.conf.new). tests/system/install.sh runs this path.
LIBEXECDIR = $(shell $(APXS) -q LIBEXECDIR)
SYSCONFDIR = $(shell $(APXS) -q SYSCONFDIR)
MODS_AVAILABLE = $(SYSCONFDIR)/mods-available

install: build
	$(APXS) -i -n rtboard $(MODULE)
	@if [ -d "$(MODS_AVAILABLE)" ]; then \
	    sed 's|/usr/lib/apache2/modules|$(LIBEXECDIR)|' conf/rtboard.load >"$(MODS_AVAILABLE)/rtboard.load.tmp" \
	        && chmod 644 "$(MODS_AVAILABLE)/rtboard.load.tmp" \
	        && mv -f "$(MODS_AVAILABLE)/rtboard.load.tmp" "$(MODS_AVAILABLE)/rtboard.load" || exit 1; \
	    if [ -f "$(MODS_AVAILABLE)/rtboard.conf" ] && ! cmp -s conf/rtboard.conf "$(MODS_AVAILABLE)/rtboard.conf"; then \
	        install -m 644 conf/rtboard.conf "$(MODS_AVAILABLE)/rtboard.conf.new" || exit 1; \
	        echo "kept your $(MODS_AVAILABLE)/rtboard.conf; the shipped one is rtboard.conf.new"; \
	    else install -m 644 conf/rtboard.conf "$(MODS_AVAILABLE)/rtboard.conf" || exit 1; fi; \
	    echo "installed $(LIBEXECDIR)/mod_rtboard.so and $(MODS_AVAILABLE)/rtboard.{load,conf}; next: a2enmod dbd rtboard"; \
	else \
	    echo "installed $(LIBEXECDIR)/mod_rtboard.so; load it with mod_dbd in your configuration:"; \
	    echo "  LoadModule rtboard_module $(LIBEXECDIR)/mod_rtboard.so   (see conf/rtboard.conf)"; \
	fi

# Removes what install added; refuses while Debian's a2enmod has it enabled
# (Apache would not start again with the module gone). An rtboard.conf that
# differs from the shipped one is kept.
uninstall:
	@if [ -e "$(SYSCONFDIR)/mods-enabled/rtboard.load" ]; then \
	    echo "rtboard is enabled: a2dismod rtboard first" >&2; exit 1; fi
	rm -f "$(LIBEXECDIR)/mod_rtboard.so"
	@if [ -d "$(MODS_AVAILABLE)" ]; then \
	    rm -f "$(MODS_AVAILABLE)/rtboard.load" "$(MODS_AVAILABLE)/rtboard.conf.new"; \
	    if cmp -s conf/rtboard.conf "$(MODS_AVAILABLE)/rtboard.conf"; then rm -f "$(MODS_AVAILABLE)/rtboard.conf"; \
	    elif [ -f "$(MODS_AVAILABLE)/rtboard.conf" ]; then echo "kept your edited $(MODS_AVAILABLE)/rtboard.conf"; fi; \
	fi

build/unit/%: tests/unit/%.c $(SRC) $(HDR)
	@mkdir -p build/unit
	$(CC) $(UNIT_CFLAGS) $< -o $@ -lcmocka -ljansson

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ./$$t; done

build/fuzz/%: tests/fuzz/%.c tests/fuzz/fuzz.h $(SRC) $(HDR)
	@mkdir -p build/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc $< -o $@ -ljansson

# A short run of every fuzz target over its seed corpus (inside make test):
# FUZZ_SMOKE_SECONDS each. A driver's output goes to build/fuzz/NAME.log and
# only its summary is shown; a crash, leak or broken invariant shows the error
# and the frames in src/ and tests/, leaves the input as build/fuzz/crash-*
# (or leak-*, timeout-*, oom-*) and fails.
FUZZ_SMOKE_SECONDS ?= 10
fuzz-smoke: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$${f#build/fuzz/fuzz_}; \
	    rm -rf build/fuzz/corpus-$$n; mkdir -p build/fuzz/corpus-$$n; \
	    cp tests/fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null || true; \
	    echo "== $$f ($(FUZZ_SMOKE_SECONDS) s)"; \
	    if ./$$f -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=build/fuzz/ build/fuzz/corpus-$$n >build/fuzz/$$n.log 2>&1; then \
	        grep -E '^(Done |stat::(new_units_added|peak_rss_mb))' build/fuzz/$$n.log; \
	    else \
	        grep -E 'invariant broken|runtime error|ERROR:|SUMMARY:|written to|/(src|tests)/' \
	            build/fuzz/$$n.log | head -n 25; \
	        echo "FAILED: $$f (log: build/fuzz/$$n.log)"; exit 1; \
	    fi; done

# Longer fuzzing, stopping at the first failure: FUZZ_SECONDS per driver
# (make fuzz FUZZ_SECONDS=600), or, when FUZZ_RUNS is set, that many inputs
# per driver whatever the time (make fuzz FUZZ_RUNS=10000000). The corpus
# grows in build/fuzz/corpus-NAME from one run to the next.
FUZZ_SECONDS ?= 300
FUZZ_RUNS ?=
FUZZ_LIMIT = $(if $(FUZZ_RUNS),-runs=$(FUZZ_RUNS),-max_total_time=$(FUZZ_SECONDS))
fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$${f#build/fuzz/fuzz_}; mkdir -p build/fuzz/corpus-$$n; \
	    cp -n tests/fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null || true; \
	    echo "== $$f ($(FUZZ_LIMIT))"; \
	    ./$$f $(FUZZ_LIMIT) -print_final_stats=1 -artifact_prefix=build/fuzz/ \
	        build/fuzz/corpus-$$n || { echo "FAILED: $$f"; exit 1; }; done

# The module built with AddressSanitizer and UBSan, and the integration suite
# run against it (httpd started with the sanitizer runtime preloaded); any
# report in build/asan/reports fails it. Not part of make test (slower):
#   make asan
ASAN_FLAGS := -shared -fPIC -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -std=gnu11 \
              -DLINUX -D_REENTRANT -D_GNU_SOURCE -I$(shell $(APXS) -q INCLUDEDIR 2>/dev/null) \
              $(shell $(APXS) -q EXTRA_INCLUDES 2>/dev/null) -Isrc -I$(PGINC)
build/asan/mod_rtboard.so: $(SRC) $(HDR)
	@mkdir -p build/asan
	$(CC) $(ASAN_FLAGS) $(SRC) -o $@ -ljansson -lpq

asan: build/asan/mod_rtboard.so
	@rm -rf build/asan/reports && mkdir -p build/asan/reports && chmod 777 build/asan/reports
	cd tests/integration && ASAN_LIB=$$($(CC) -print-file-name=libasan.so) \
	    ASAN_REPORTS=$(CURDIR)/build/asan/reports MODULE=$(CURDIR)/build/asan/mod_rtboard.so \
	    /usr/bin/python3 -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)
	@if ls build/asan/reports/* >/dev/null 2>&1; then \
	    echo "sanitizer reports:"; head -n 40 build/asan/reports/*; exit 1; fi
	@echo "asan: no sanitizer report"

integration: build
	cd tests/integration && /usr/bin/python3 -m pytest -x -q -p no:cacheprovider $(PYTEST_ARGS)

# The REST and stream suites again, every server on PostgreSQL (a private
# cluster the tests start) with its bus on.
PGSQL_SUITES := test_rest.py test_events.py test_sse.py test_longpoll.py test_ws.py test_replay.py
integration-pgsql: build
	cd tests/integration && RTB_DB=pgsql /usr/bin/python3 -m pytest -x -q -p no:cacheprovider \
	    $(PGSQL_SUITES) $(PYTEST_ARGS)

browser: build
	/usr/bin/python3 tests/browser/run.py

# The real install path on the system's Apache (root, Debian; says SKIPPED
# otherwise): make install, a2enmod, apache2ctl, every transport, then all undone.
system-test:
	tests/system/install.sh

# The tree follows .clang-format, and cppcheck finds nothing. Its suppressions
# (.cppcheck-suppressions): variableScope, as variables are declared at the top
# of a block the way Apache's own modules do; missingIncludeSystem, as system
# and APR headers are not analysed. One inline suppression, in rtb_blocking.c,
# where a delivery closes the connection through a function pointer cppcheck
# cannot follow.
LINT_FILES := $(SRC) $(HDR) $(UNIT_SRC) $(FUZZ_SRC)
lint:
	@clang-format --dry-run --Werror $(LINT_FILES)
	@cppcheck --quiet --enable=warning,style,performance,portability --std=c11 -DLINUX \
	    -D_GNU_SOURCE -Isrc --inline-suppr --suppressions-list=.cppcheck-suppressions \
	    --error-exitcode=1 src/
	@echo "lint: clang-format and cppcheck clean ($(words $(LINT_FILES)) files)"

test: test-deps lint build unit fuzz-smoke integration integration-pgsql system-test browser
	@echo "ALL TESTS PASSED"

format:
	clang-format -i $(LINT_FILES)

clean:
	rm -rf build build.log .libs src/.libs src/*.lo src/*.slo src/*.la *.la *.lo *.slo
