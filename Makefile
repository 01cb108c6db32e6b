# mod_rtboard: build with apxs, run a private httpd, test.
#   make run    install missing packages, build, start on SQLite, print the URL
#   make stop   stop it
#   make cluster        PostgreSQL, two nodes and the front on one machine
#   make cluster-stop   stop them
#   make test   every test: unit (ASan+UBSan), fuzz smoke, integration, browser
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

.PHONY: all build deps test-deps run stop restart cluster cluster-stop install unit fuzz fuzz-smoke integration \
        integration-pgsql browser test clean format lint

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
	@echo "  status: http://127.0.0.1:$(PORT)/rtboard-status"
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

install: build
	$(APXS) -i -n rtboard $(MODULE)
	install -m 644 conf/rtboard.load conf/rtboard.conf /etc/apache2/mods-available/

build/unit/%: tests/unit/%.c $(SRC) $(HDR)
	@mkdir -p build/unit
	$(CC) $(UNIT_CFLAGS) $< -o $@ -lcmocka -ljansson

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; ./$$t; done

build/fuzz/%: tests/fuzz/%.c $(SRC) $(HDR)
	@mkdir -p build/fuzz
	clang -g -O1 -fsanitize=fuzzer,address,undefined -Isrc $< -o $@

# A short run of every fuzz target over its seed corpus (inside make test).
fuzz-smoke: $(FUZZ_BIN)
	@set -e; for f in $(FUZZ_BIN); do n=$${f#build/fuzz/fuzz_}; \
	    rm -rf build/fuzz/corpus-$$n; mkdir -p build/fuzz/corpus-$$n; \
	    cp tests/fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null || true; \
	    echo "== $$f (15 s)"; ./$$f -max_total_time=15 -print_final_stats=1 build/fuzz/corpus-$$n 2>&1 | tail -n 3; done

# Longer fuzzing: make fuzz FUZZ_SECONDS=600
FUZZ_SECONDS ?= 300
fuzz: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$${f#build/fuzz/fuzz_}; mkdir -p build/fuzz/corpus-$$n; \
	    cp -n tests/fuzz/corpus/$$n/* build/fuzz/corpus-$$n/ 2>/dev/null || true; \
	    ./$$f -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus-$$n; done

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

test: test-deps lint build unit fuzz-smoke integration integration-pgsql browser
	@echo "ALL TESTS PASSED"

format:
	clang-format -i $(LINT_FILES)

clean:
	rm -rf build build.log .libs src/.libs src/*.lo src/*.slo src/*.la *.la *.lo *.slo
