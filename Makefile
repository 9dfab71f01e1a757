# clicktochat: build, install into ejabberd's contrib modules directory, test, demo.
# See README.md. Targets that install Debian packages (deps, test, demo) need root.

# Debian's ejabberd keeps its beams and headers in /usr/lib/<arch>/ejabberd-<vsn>,
# and the xmpp library's headers in p1_xmpp-<vsn>.
EJABBERD_DIR ?= $(patsubst %/ebin/gen_mod.beam,%,$(firstword $(wildcard /usr/lib/*/ejabberd-*/ebin/gen_mod.beam)))
XMPP_DIR ?= $(patsubst %/include/xmpp.hrl,%,$(firstword $(wildcard /usr/lib/erlang/lib/*xmpp-*/include/xmpp.hrl)))
ERLC_FLAGS = -Werror +debug_info +warn_unused_vars \
	-I $(EJABBERD_DIR)/include -I $(XMPP_DIR)/include -pa $(EJABBERD_DIR)/ebin
# ejabberd adds $CONTRIB_MODULES_PATH/<module>/ebin to its code path; the
# default is ~ejabberd/.ejabberd-modules.
EJABBERD_HOME ?= $(shell getent passwd ejabberd | cut -d: -f6)
PREFIX ?= $(EJABBERD_HOME)/.ejabberd-modules
DESTDIR ?=
MODULE_DIR = $(DESTDIR)$(PREFIX)/mod_clicktochat

# What `make bench` needs on top (not `make test`): wrk drives the HTTP benches,
# matplotlib draws docs/perf_*.png.
BENCH_PACKAGES = wrk python3-matplotlib
DEBIAN_PACKAGES = erlang-nox erlang-dev erlang-eunit rebar3 ejabberd python3-slixmpp python3-pytest python3-yaml python3-websockets curl iproute2 procps chromium
ERL_SOURCES = $(wildcard erlang_src/*.erl)
BEAMS = $(patsubst erlang_src/%.erl,ebin/%.beam,$(ERL_SOURCES))
NIF = priv/clicktochat_nif.so
# The widget (priv/widget/src, bundled with esbuild from a pinned lockfile);
# the bundle is built, never committed.
WIDGET = priv/widget.js
WIDGET_SOURCES = $(wildcard priv/widget/src/*.js)
# npm ci writes node_modules/.package-lock.json: newer than the lockfile
# means the installed packages are the locked ones.
WIDGET_MODULES = priv/widget/node_modules/.package-lock.json
BROWSER_TEST_MODULES = test/browser/node_modules/.package-lock.json
NPM_CI = npm ci --no-audit --no-fund --loglevel=error
# Debian's python, which has python3-slixmpp and python3-pytest (not pyenv's).
PYTHON = /usr/bin/python3

.PHONY: all nif beams widget npm-deps deps bench-deps install uninstall test test-rust test-erlang test-rebar3 test-fuzz test-integration test-widget lint demo demo-stop bench bench-rotation bench-scale bench-report fuzz clean

all: nif beams widget

nif: $(NIF)

# A file target, so that `sudo make install` after `make` needs no cargo in
# root's PATH.
$(NIF): Cargo.toml Cargo.lock $(wildcard native/*/Cargo.toml) $(shell find native/clicktochat_core/src native/clicktochat_nif/src -name "*.rs")
	cargo build --release --locked -p clicktochat_nif
	mkdir -p priv
	cp target/release/libclicktochat_nif.so $(NIF)

beams: $(BEAMS)

widget: $(WIDGET)

$(WIDGET_MODULES): priv/widget/package-lock.json
	cd priv/widget && $(NPM_CI)
	@touch $@

$(BROWSER_TEST_MODULES): test/browser/package-lock.json
	cd test/browser && $(NPM_CI)
	@touch $@

# The npm packages of the widget and of the browser test (what CI fetches).
npm-deps: $(WIDGET_MODULES) $(BROWSER_TEST_MODULES)

$(WIDGET): $(WIDGET_MODULES) $(WIDGET_SOURCES) priv/widget/package.json
	cd priv/widget && npm run -s build

ebin/%.beam: erlang_src/%.erl erlang_src/clicktochat.hrl
	@test -n "$(EJABBERD_DIR)" -a -n "$(XMPP_DIR)" || { echo "ejabberd is not installed: run 'make deps' (as root)"; exit 1; }
	@mkdir -p ebin
	erlc $(ERLC_FLAGS) -o ebin $<

# Installs the Debian packages the build, the tests and the demo need, if
# missing. A freshly installed ejabberd would start Debian's system service on
# ports 5222/5280 (the demo's); it is installed without starting it (a
# temporary policy-rc.d, honoured by invoke-rc.d and deb-systemd-invoke).
deps:
	@dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1 || { \
	  set -e; apt-get update -q; \
	  if [ ! -e /usr/sbin/policy-rc.d ]; then \
	    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; \
	    trap 'rm -f /usr/sbin/policy-rc.d' EXIT; fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBIAN_PACKAGES); }

bench-deps:
	@dpkg -s $(BENCH_PACKAGES) >/dev/null 2>&1 || { \
	  set -e; apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(BENCH_PACKAGES); }

install: all
	@test -n "$(PREFIX)" -a "$(PREFIX)" != "/.ejabberd-modules" || { \
	  echo "no ejabberd user to install for: install ejabberd, or give PREFIX=<contrib modules dir>"; exit 1; }
	install -d $(MODULE_DIR)/ebin $(MODULE_DIR)/priv $(MODULE_DIR)/conf
	install -m 644 $(BEAMS) $(MODULE_DIR)/ebin/
	install -m 755 $(NIF) $(MODULE_DIR)/priv/
	install -m 644 $(WIDGET) priv/demo.html $(MODULE_DIR)/priv/
	install -m 644 docs/mod_clicktochat.spec $(MODULE_DIR)/
	install -m 644 docs/mod_clicktochat.yml $(MODULE_DIR)/conf/

uninstall:
	rm -rf $(MODULE_DIR)

test: deps lint all test-rust test-widget test-erlang test-rebar3 test-fuzz test-integration

test-rust:
	cargo test --workspace --locked

# The widget's SASL (SCRAM on WebCrypto, the mechanism chosen, the exchange)
# under node's test runner; the widget as a whole runs in chromium
# (test_widget.py).
test-widget: $(WIDGET_MODULES)
	node --test test/widget/

# eunit: the pure Erlang parts (legacy config, option resolution, content
# negotiation, address rules), the desk NIF's hand-overs and the SCRAM NIF's
# keys (so the NIF is built first). They call jid/econf, so the xmpp application (Debian's
# erlang-p1-xmpp, ejabberd's dependency) is started first.
EUNIT_RUN = {ok, _} = application:ensure_all_started(xmpp), Modules = [list_to_atom(filename:basename(F, ".beam")) || F <- filelib:wildcard("_build/eunit/*_tests.beam")], case eunit:test(Modules, [verbose]) of ok -> halt(0); _ -> halt(1) end.
test-erlang: beams nif
	@mkdir -p _build/eunit
	erlc -o _build/eunit test/eunit/*.erl
	erl -noshell -pa ebin -pa _build/eunit -pa $(EJABBERD_DIR)/ebin -eval '$(EUNIT_RUN)'

# The same beams built by rebar3 (rebar.config), in its own _build.
test-rebar3:
	rebar3 compile

# cargo-fuzz targets (native/fuzz): a short run in `make test`, longer with
# `make fuzz FUZZ_SECONDS=600`.
FUZZ_SECONDS ?= 60
test-fuzz:
	bash test/fuzz.sh 5

fuzz:
	bash test/fuzz.sh $(FUZZ_SECONDS)

test-integration: all $(BROWSER_TEST_MODULES)
	$(PYTHON) -m pytest -v -p no:cacheprovider test/integration

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

# A fresh throw-away ejabberd with the module on 127.0.0.1, in the foreground.
DEMO_HTTP_PORT ?= 5280
DEMO_C2S_PORT ?= 5222
demo: deps all
	DEMO_HTTP_PORT=$(DEMO_HTTP_PORT) DEMO_C2S_PORT=$(DEMO_C2S_PORT) $(PYTHON) test/demo.py

demo-stop:
	DEMO_HTTP_PORT=$(DEMO_HTTP_PORT) DEMO_C2S_PORT=$(DEMO_C2S_PORT) $(PYTHON) test/demo.py --stop

# The VM's headers, for the NIF floor (test/bench/floor_nif.c).
ERL_INCLUDE = $(shell erl -noshell -eval 'io:format("~s/erts-~s/include", [code:root_dir(), erlang:system_info(version)]), halt().')
# Where rotation_bench writes its figures (JSON).
ROTATION_BENCH_JSON ?= _build/bench/rotation.json
# The desk's hot path alone (about half a minute): enter + release against the
# NIF floor and a gen_server, at 10 to 100 000 agents; figures also as JSON.
bench-rotation: nif beams
	@mkdir -p _build/bench
	gcc -O2 -fPIC -shared -Wall -Werror -I $(ERL_INCLUDE) -o _build/bench/floor_nif.so test/bench/floor_nif.c
	erlc -o _build/bench test/bench/floor_nif.erl
	erlc -I erlang_src -o _build/bench test/bench/rotation_bench.erl
	erl -noshell -pa ebin -pa _build/bench -run rotation_bench main $(ROTATION_BENCH_JSON)

# The figures of docs/performance.md, each against an alternative in the
# same run, as JSON in _build/bench/: the rotation's hot path
# (bench-rotation, above); the archive writer's cost per message against
# conversation length (and the previous layouts), Riak round trips per
# message; then the server-level figures: POST /register against
# mod_http_api's register (SCRAM and plain), the visitors' assignments on
# disk (Mnesia's disc_copies against the kept rows, in a plain VM),
# registration against live visitors and the memory of one, server CPU per chat message with the
# archive on and off, a widget visitor's login; and docs/performance.md
# (+ docs/perf_*.png) from every _build/bench/*.json.
# seconds per wrk (and open-loop) run, rounds (A B B A...)
BENCH_REGISTER ?= 5 6
# seconds per wrk run, live visitor levels
BENCH_VISITORS ?= 3 0 10000 50000 100000
# pairs, seconds per phase, rounds
BENCH_CHAT ?= 40 5 6
bench: all npm-deps bench-deps bench-rotation
	cargo bench -p clicktochat_core --bench archive_writer -- $(CURDIR)/_build/bench/archive.json
	cargo bench -p clicktochat_core --bench riak_pushes -- $(CURDIR)/_build/bench/riak.json
	$(PYTHON) test/bench/register_bench.py $(BENCH_REGISTER)
	erlc -o _build/bench test/bench/assignments_disk_bench.erl
	rm -rf _build/bench/assignments_disk && mkdir -p _build/bench/assignments_disk
	erl -noshell -pa ebin -pa _build/bench -run assignments_disk_bench main \
	  $(CURDIR)/_build/bench/assignments_disk $(CURDIR)/_build/bench/assignments_disk.json
	$(PYTHON) test/bench/visitors_bench.py $(BENCH_VISITORS)
	$(PYTHON) test/bench/chat_bench.py $(BENCH_CHAT)
	$(PYTHON) test/bench/widget_login_bench.py
	$(PYTHON) test/bench/report.py

# The figures docs/scale.md plans with (printed, not written to
# docs/performance.md): the assignment read path (Mnesia dirty_read against
# ETS and a transaction), a pick + release from a node that does not own
# the rotation (erpc), what a session and a visitor cost on the stock
# configuration. About 5 minutes.
bench-scale: deps nif beams
	@mkdir -p _build/bench
	erlc -o _build/bench test/bench/assignment_bench.erl
	erl -noshell -pa _build/bench -run assignment_bench main 100000 1000000
	erlc -o _build/bench test/bench/cluster_bench.erl
	erl -sname clicktochat_bench -noshell -pa ebin -pa _build/bench -run cluster_bench main 20000
	$(PYTHON) test/bench/session_cost.py 100

# docs/performance.md again from the _build/bench/*.json there are.
bench-report:
	$(PYTHON) test/bench/report.py

clean:
	rm -rf _build
	cargo clean
	rm -rf ebin $(NIF) $(WIDGET) priv/widget/node_modules test/browser/node_modules
