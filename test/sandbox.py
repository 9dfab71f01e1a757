"""A throw-away ejabberd 23.01 (Debian's package) with clicktochat installed.

Used by the integration tests and by `make demo`. Runs with Debian's
/usr/bin/python3. Each sandbox has its own config, spool, logs, contrib
modules directory and Erlang node name, listens on 127.0.0.1 only, and is
never the system service. Needs root (ejabberdctl runs the node as the
`ejabberd` user, which must own the sandbox's directories).
"""

import os
import pwd
from contextlib import contextmanager
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
EJABBERDCTL = "/usr/sbin/ejabberdctl"
CLIENT_HOST = "clients.localhost"
HELPDESK_HOST = "helpdesk.localhost"


def wait_for(condition, timeout, what, interval=0.1, seen=None):
    """Polls `condition` until it returns a truthy value or `timeout` passes.
    `seen`, if given, says what there was instead (called on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            instead = f"; instead: {seen()!r}" if seen else ""
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}{instead}")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def yml_config(c2s_port, http_port, module_options, http_backlog=None, global_options=None):
    options = "".join(f"    {k}: {v}\n" for k, v in module_options.items() if v is not None)
    global_options = {"auth_password_format": "plain", **(global_options or {})}
    top_level = "".join(f"{k}: {v}\n" for k, v in global_options.items())
    # ejabberd's default listen backlog is 5: past it Linux drops new
    # connections, or resets them once SYN cookies are in play.
    backlog = f"    backlog: {http_backlog}\n" if http_backlog else ""
    return f"""\
hosts:
  - {CLIENT_HOST}
  - {HELPDESK_HOST}
loglevel: info
auth_method: internal
{top_level}# Loopback only: plain-text logins are fine here, never on a public port.
listen:
  - port: {c2s_port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
    max_stanza_size: 262144
  - port: {http_port}
    ip: "127.0.0.1"
    module: ejabberd_http
{backlog}    request_handlers:
      /clicktochat: mod_http_clicktochat
acl:
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: all
  c2s:
    allow: all
  clicktochat_nobody:
    deny: all
modules:
  mod_ping: {{}}
  mod_clicktochat:
{options}"""


# Debian's own configuration, as the ejabberd package installs it.
STOCK_CONFIG = Path("/etc/ejabberd/ejabberd.yml")


def stock_yml_config(c2s_port, http_port, module_options, http_backlog=128, modules=None,
                     global_options=None, stock=STOCK_CONFIG):
    """Debian's stock ejabberd.yml, read now, as an operator would run it with
    clicktochat: its global options, ACLs, shapers and every module with its
    options are kept (roster, offline, stream_mgmt, carbons, privacy,
    blocking, bosh, fail2ban...; SCRAM passwords; STARTTLS required on c2s
    with the package's certificate). What changes:

    - hosts: our two vhosts instead of `localhost`;
    - listen: the STARTTLS c2s listener on 127.0.0.1:c2s_port, and one plain
      HTTP listener on 127.0.0.1:http_port carrying every request handler of
      the stock HTTP listeners (/bosh, /ws, /api, /admin, ACME's) plus
      /clicktochat, with `backlog` (ejabberd's default is 5). The other stock
      listeners bind fixed ports on every interface and cannot run beside
      the other sandboxes (or the system service): s2s (5269: no federation
      from a sandbox), direct-TLS c2s (5223: the same c2s behind TLS), the
      TLS HTTP listeners (5443, 5280: their handlers moved to ours, in plain
      HTTP on loopback as behind a TLS-terminating proxy), STUN/TURN (3478)
      and MQTT (1883). s2s_access `none` so that no stanza ever opens an
      outgoing s2s connection either. ACME stays as stock: ejabberd never
      requests certificates for *.localhost names;
    - modules: mod_clicktochat with `module_options`; `modules` adds or
      overrides modules ({name: options}, None removes one);
    - `global_options` ({name: value}) override top-level options (e.g.
      auth_password_format).

    Kept although tests run from 127.0.0.1: mod_fail2ban (bans an address
    after 20 failed logins: no test fails a login), the c2s shaper (3000 B/s,
    bursts of 20000, for `all`: far above what the tests send) and
    mod_stream_mgmt's resume_timeout (300 s: a client asks for less with
    <enable max='N'/>, which ejabberd grants up to max_resume_timeout)."""
    config = yaml.safe_load(stock.read_text())
    config["hosts"] = [CLIENT_HOST, HELPDESK_HOST]
    stock_listeners = config["listen"]
    c2s = [dict(listener) for listener in stock_listeners
           if listener["module"] == "ejabberd_c2s" and listener.get("starttls_required")]
    if len(c2s) != 1:
        raise RuntimeError(f"{stock}: expected one c2s listener with starttls_required")
    handlers = {}
    for listener in stock_listeners:
        if listener["module"] == "ejabberd_http":
            handlers.update(listener.get("request_handlers", {}))
    handlers["/clicktochat"] = "mod_http_clicktochat"
    if not {"/bosh", "/ws"} <= set(handlers):
        raise RuntimeError(f"{stock}: expected /bosh and /ws request handlers")
    http = {"port": http_port, "ip": "127.0.0.1", "module": "ejabberd_http",
            "request_handlers": handlers}
    if http_backlog:
        http["backlog"] = http_backlog
    config["listen"] = [{**c2s[0], "port": c2s_port, "ip": "127.0.0.1"}, http]
    config["s2s_access"] = "none"
    config.update(global_options or {})
    config["modules"]["mod_clicktochat"] = {k: v for k, v in module_options.items()
                                            if v is not None}
    for name, options in (modules or {}).items():
        if options is None:
            config["modules"].pop(name, None)
        else:
            config["modules"][name] = options
    return (f"# Generated by test/sandbox.py from {stock}: see stock_yml_config().\n"
            + yaml.safe_dump(config, sort_keys=False, default_flow_style=False))


def readable_by_ejabberd(path):
    return subprocess.run(["runuser", "-u", "ejabberd", "--", "test", "-r", str(path)]
                          ).returncode == 0


def legacy_cfg_config(c2s_port, http_port, module_options):
    """The seed era's Erlang-terms ejabberd.cfg, as its README configured it."""
    opts = ", ".join(f"{{{k}, {erlang_term(v)}}}" for k, v in module_options.items()
                     if v is not None)
    return f"""\
{{hosts, ["{CLIENT_HOST}", "{HELPDESK_HOST}"]}}.
{{loglevel, 4}}.
{{auth_method, internal}}.
{{listen,
 [
  {{{{{c2s_port}, {{127,0,0,1}}}}, ejabberd_c2s, [{{max_stanza_size, 65536}}]}},
  {{{{{http_port}, {{127,0,0,1}}}}, ejabberd_http, [
      {{request_handlers, [{{["clicktochat"], mod_http_clicktochat}}]}}
  ]}}
 ]}}.
{{modules,
 [
  {{mod_clicktochat, [{opts}]}}
 ]}}.
"""


def erlang_term(value):
    if isinstance(value, int):
        return str(value)
    return f'"{value}"'


class Sandbox:
    """One throw-away ejabberd node. `start()` installs the module built in the
    tree into the sandbox's own contrib directory with `make install`."""

    def __init__(self, name, c2s_port, http_port, module_options=None,
                 legacy_cfg=False, root=None, files=None, http_backlog=None,
                 stock_config=False, stock_modules=None, global_options=None):
        """module_options: mod_clicktochat's options (a None value leaves the
        option out); files: {path relative to the sandbox: text} written
        before the start, readable by ejabberd; http_backlog: the HTTP
        listener's `backlog` (ejabberd's default, 5, when None; 128 with
        stock_config); stock_config: Debian's stock ejabberd.yml made a
        sandbox (stock_yml_config) instead of the minimal configuration;
        stock_modules: its module additions or overrides; global_options:
        {name: YAML value} at the top level of ejabberd.yml (over the stock
        configuration's own, with stock_config)."""
        self.name = name
        self.node = f"clicktochat_{name}@localhost"
        self.c2s_port = c2s_port
        self.http_port = http_port
        self.module_options = {
            "client_host": CLIENT_HOST,
            "helpdesk_host": HELPDESK_HOST,
            **(module_options or {}),
        }
        self.legacy_cfg = legacy_cfg
        self.stock_config = stock_config
        self.stock_modules = dict(stock_modules or {})
        self.http_backlog = http_backlog or (128 if stock_config else None)
        self.global_options = global_options
        self.files = files or {}
        self.dir = Path(root or tempfile.mkdtemp(prefix=f"clicktochat-{name}-"))
        self.config_dir = self.dir / "etc"
        self.spool = self.dir / "spool"
        self.logs = self.dir / "logs"
        self.contrib = self.dir / "modules"
        self.config_file = self.config_dir / ("ejabberd.cfg" if legacy_cfg else "ejabberd.yml")

    # --- lifecycle -------------------------------------------------------
    def prepare(self):
        if self.dir.exists():
            shutil.rmtree(self.dir)
        for d in (self.config_dir, self.spool, self.logs, self.contrib):
            d.mkdir(parents=True)
        subprocess.run(["make", "-s", "-C", str(REPO), "install", "DESTDIR=",
                        f"PREFIX={self.contrib}"], check=True)
        (self.config_dir / "ejabberdctl.cfg").write_text(
            f'ERLANG_NODE={self.node}\n'
            f'CONTRIB_MODULES_PATH={self.contrib}\n'
            f'CONTRIB_MODULES_CONF_DIR={self.dir / "modules.d"}\n'
            'INET_DIST_INTERFACE=127.0.0.1\n'
            'ERL_EPMD_ADDRESS=127.0.0.1\n'
            # SANDBOX_ERL_OPTIONS: extra VM flags, e.g. "+JPperf true" to
            # profile a bench's server with perf.
            f'ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0 {os.environ.get("SANDBOX_ERL_OPTIONS", "")}"\n')
        self.write_config()
        for relative, text in self.files.items():
            (self.dir / relative).parent.mkdir(parents=True, exist_ok=True)
            (self.dir / relative).write_text(text)
        # ejabberdctl points the VM at an inetrc beside the config; resolve
        # names from /etc/hosts first, as Debian's own inetrc does.
        (self.config_dir / "inetrc").write_text("{lookup, [file, native]}.\n")
        user = pwd.getpwnam("ejabberd")
        os.chmod(self.dir, 0o755)
        for path in [self.dir, *self.dir.rglob("*")]:
            os.chown(path, user.pw_uid, user.pw_gid)

    def write_config(self, **module_options):
        self.module_options.update(module_options)
        if self.legacy_cfg:
            text = legacy_cfg_config(self.c2s_port, self.http_port, self.module_options)
        elif self.stock_config:
            text = stock_yml_config(self.c2s_port, self.http_port, self.module_options,
                                    self.http_backlog, self.stock_modules,
                                    self.global_options)
            for certfile in yaml.safe_load(text).get("certfiles", []):
                if not readable_by_ejabberd(certfile):
                    raise RuntimeError(f"the ejabberd user cannot read {certfile}")
        else:
            text = yml_config(self.c2s_port, self.http_port, self.module_options,
                              self.http_backlog, self.global_options)
        self.config_file.write_text(text)

    def ctl_command(self, *args):
        return [EJABBERDCTL, "--config-dir", str(self.config_dir),
                "--config", str(self.config_file), "--spool", str(self.spool),
                "--logs", str(self.logs), "--node", self.node, *args]

    def ctl(self, *args, check=True):
        result = subprocess.run(self.ctl_command(*args), capture_output=True, text=True,
                                cwd="/", timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(f"ejabberdctl {' '.join(args)} failed "
                               f"({result.returncode}): {result.stdout}{result.stderr}")
        return result.stdout

    def start(self, timeout=90, fresh=True):
        """Starts the node; `fresh` wipes and re-creates the sandbox first,
        otherwise it restarts on the spool (accounts, Mnesia, archive) it has."""
        for port in (self.c2s_port, self.http_port):
            if port_open(port):
                raise RuntimeError(f"port {port} on 127.0.0.1 is already in use")
        if fresh:
            self.prepare()
        self.ctl("start")
        self.wait_started(timeout)
        return self

    @contextmanager
    def serving(self, accounts=()):
        """Started, with `accounts` [(user, host, password)] registered;
        stopped when the block ends."""
        self.start()
        try:
            for user, host, password in accounts:
                self.register(user, host, password)
            yield self
        finally:
            self.stop()

    @contextmanager
    def serving_with_control(self, accounts=()):
        """serving(), with a control node (control()) open for fast queries:
        yields (sandbox, control)."""
        with self.serving(accounts):
            control = self.control()
            try:
                yield self, control
            finally:
                control.close()

    def reload(self, **module_options):
        """Rewrites mod_clicktochat's options and has ejabberd reload its
        configuration; returns once the module has restarted with them."""
        marker = "mod_clicktochat: visitors on"
        started = self.count_in_log(marker)
        self.write_config(**module_options)
        self.ctl("reload_config")
        wait_for(lambda: self.count_in_log(marker) > started, 30,
                 f"mod_clicktochat to restart with {module_options}")

    def wait_started(self, timeout=90):
        def ready():
            if self.ctl("status", check=False).find("is running in that node") < 0:
                if self.crashed():
                    raise RuntimeError(f"ejabberd did not start:\n{self.log_tail()}")
                return False
            return port_open(self.c2s_port) and port_open(self.http_port)
        wait_for(ready, timeout, f"ejabberd node {self.node} to serve", interval=0.5)

    def crashed(self):
        log = self.log_text()
        return "ejabberd initialization was aborted" in log or "Failed to start" in log

    def stop(self, timeout=60):
        if self.pid() is None:
            return
        self.ctl("stop", check=False)
        try:
            wait_for(lambda: self.pid() is None, timeout, f"{self.node} to stop", 0.3)
        except TimeoutError:
            self.kill()
        self.wait_ports_closed()

    def kill(self):
        pid = self.pid()
        if pid is not None:
            os.kill(pid, 9)
            wait_for(lambda: self.pid() is None, 30, f"{self.node} to die", 0.1)
            self.wait_ports_closed()

    def wait_ports_closed(self):
        """The VM's helper processes (erl_child_setup) may hold its listening
        sockets for a moment after it is gone."""
        wait_for(lambda: not (port_open(self.c2s_port) or port_open(self.http_port)),
                 30, f"{self.node}'s ports to close", 0.1)

    def pid(self):
        found = subprocess.run(["pgrep", "-f", f"beam.smp.*-sname {self.node} "],
                               capture_output=True, text=True).stdout.split()
        return int(found[0]) if found else None

    # --- inspection ------------------------------------------------------
    def log_text(self):
        log = self.logs / "ejabberd.log"
        return log.read_text(errors="replace") if log.exists() else ""

    def log_tail(self, lines=60):
        return "\n".join(self.log_text().splitlines()[-lines:])

    def register(self, user, host, password):
        self.ctl("register", user, host, password)

    def registered_users(self, host=CLIENT_HOST):
        return set(self.ctl("registered_users", host).split())

    def connected_users(self):
        """Full JIDs of every session on the node."""
        return set(self.ctl("connected_users").split())

    def rpc(self, module, function, *args):
        """rpc:call on the node, from a hidden one-shot node run as the
        ejabberd user (its cookie): `args` are Erlang literals, `node()` in
        them is the sandbox's node; the answer printed with ~0p."""
        call = (f"rpc:call('{self.node}', {module}, {function}, "
                f"[{', '.join(args)}], 30000)").replace("node()", f"'{self.node}'")
        name = f"rpc{os.getpid()}-{self.name}"
        result = subprocess.run(
            ["su", "-s", "/bin/sh", "-c", '"$0" "$@"', "ejabberd", "--",
             "erl", "-sname", f"{name}@localhost", "-hidden", "-noinput", "-noshell",
             "-eval", f'io:format("~0p", [{call}]), halt().'],
            capture_output=True, text=True, cwd=str(self.spool), timeout=60,
            env={**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"})
        if result.returncode != 0:
            raise RuntimeError(f"rpc {module}:{function} failed: {result.stdout}{result.stderr}")
        return result.stdout

    def control(self):
        """A ControlNode for fast repeated queries (ejabberdctl starts a VM
        for every command: most of a second each)."""
        return ControlNode(self)

    def sasl_logins(self, jid=None, host=CLIENT_HOST):
        """{SASL mechanism: how many c2s logins}, from ejabberd's log: of the
        bare `jid`, or of every user of `host`."""
        found = {}
        for line in self.log_text().splitlines():
            # "Accepted c2s <mechanism> authentication for <user>@<host> by ..."
            words = line.split("Accepted c2s ", 1)[-1].split()
            if "Accepted c2s " not in line or words[1:3] != ["authentication", "for"]:
                continue
            if words[3] == jid or (jid is None and words[3].endswith(f"@{host}")):
                found[words[0]] = found.get(words[0], 0) + 1
        return found

    def count_in_log(self, text):
        return self.log_text().count(text)

    def url(self, path):
        return f"http://127.0.0.1:{self.http_port}{path}"


class ControlNode:
    """A hidden Erlang node kept open beside a sandbox, run as the ejabberd
    user exactly as ejabberdctl runs its own control nodes (so with the same
    cookie), answering one query per line on stdin. Close it with close()."""

    # Reads "registered_users <host>", "connected_users", "password <user> <host>" or
    # "memory" lines; answers one line of hex-encoded words (so that any name fits on a
    # line), or "error <term>".
    LOOP = r"""
        Node = list_to_atom(hd(init:get_plain_arguments())),
        Hex = fun(B) -> binary_to_list(binary:encode_hex(B)) end,
        Reply = fun(["registered_users", Host]) ->
                        case rpc:call(Node, ejabberd_auth, get_users,
                                      [list_to_binary(Host)], 10000) of
                            Users when is_list(Users) -> [Hex(U) || {U, _} <- Users];
                            Other -> {error, Other}
                        end;
                   (["connected_users"]) ->
                        case rpc:call(Node, ejabberd_sm, connected_users, [], 10000) of
                            Jids when is_list(Jids) -> [Hex(J) || J <- Jids];
                            Other -> {error, Other}
                        end;
                   (["password", User, Host]) ->
                        %% What ejabberd stores of the account's password.
                        case rpc:call(Node, ejabberd_auth, get_password,
                                      [list_to_binary(User), list_to_binary(Host)], 10000) of
                            {scram, StoredKey, ServerKey, Salt, Hash, Iterations} ->
                                [Hex(F) || F <- [<<"scram">>, StoredKey, ServerKey, Salt,
                                                 atom_to_binary(Hash),
                                                 integer_to_binary(Iterations)]];
                            Plain when is_binary(Plain) -> [Hex(<<"plain">>), Hex(Plain)];
                            false -> [Hex(<<"none">>)];
                            Other -> {error, Other}
                        end;
                   (["memory"]) ->
                        %% Bytes: the whole VM, after a full GC of every process.
                        Processes = rpc:call(Node, erlang, processes, [], 10000),
                        _ = rpc:call(Node, lists, foreach,
                                     [fun erlang:garbage_collect/1, Processes], 60000),
                        case rpc:call(Node, erlang, memory, [total], 10000) of
                            Bytes when is_integer(Bytes) -> [Hex(integer_to_binary(Bytes))];
                            Other -> {error, Other}
                        end
                end,
        Loop = fun Loop() ->
                       case io:get_line("") of
                           eof -> halt(0);
                           Line ->
                               case catch Reply(string:lexemes(Line, " \n")) of
                                   Names when is_list(Names) ->
                                       io:put_chars([lists:join(" ", Names), "\n"]);
                                   Error -> io:format("error ~0p~n", [Error])
                               end,
                               Loop()
                       end
               end,
        Loop().
    """

    def __init__(self, sandbox):
        self.sandbox = sandbox
        name = f"ctl{os.getpid()}-{sandbox.node}".split("@")[0]
        self.process = subprocess.Popen(
            ["su", "-s", "/bin/sh", "-c", '"$0" "$@"', "ejabberd", "--",
             "erl", "-sname", f"{name}@localhost", "-hidden", "-noinput", "-noshell",
             "-eval", self.LOOP, "-extra", sandbox.node],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, encoding="utf-8",
            cwd=str(sandbox.spool),
            env={**os.environ, "ERL_EPMD_ADDRESS": "127.0.0.1"})

    def query(self, *words):
        """The answer's words, in order."""
        self.process.stdin.write(" ".join(words) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line or line.startswith("error"):
            raise RuntimeError(f"control node: {' '.join(words)}: {line or 'exited'}")
        return [bytes.fromhex(h).decode() for h in line.split()]

    def registered_users(self, host=CLIENT_HOST):
        return set(self.query("registered_users", host))

    def connected_users(self):
        return set(self.query("connected_users"))

    def stored_password(self, user, host=CLIENT_HOST):
        """What ejabberd stores of an account's password: ("scram", stored
        key, server key, salt (base64 each), hash, iterations), ("plain",
        password) or ("none",)."""
        return tuple(self.query("password", user, host))

    def memory(self):
        """The node's total memory in bytes, after garbage-collecting every
        process."""
        return int(self.query("memory")[0])

    def close(self):
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
