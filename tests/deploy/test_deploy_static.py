"""Static checks of the deployment files (no Docker needed).

docker-compose.yml, deploy/nginx.conf and deploy/Dockerfile are parsed and
checked for the things that would otherwise only show up at `docker compose up`:
missing services or Dockerfiles, a ZooKeeper-based Kafka, wrong start-up order,
and (above all) public URL prefixes the gateway does not route, or routes to the
wrong service.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
NGINX_CONF = ROOT / "deploy" / "nginx.conf"

SERVICES = ("posts", "messaging", "notifications", "analytics")

# Public URL prefix -> service that must serve it (through the gateway).
ROUTES = {
    "/auth/": "posts",
    "/.well-known/jwks.json": "posts",
    "/scim/v2/": "posts",
    "/api/v1/people": "posts",
    "/api/v1/groups": "posts",
    "/api/v1/posts": "posts",
    "/api/v1/feeds": "posts",
    "/api/v1/search": "posts",
    "/api/v1/admin": "posts",
    "/api/v1/conversations": "messaging",
    "/api/v1/messaging/": "messaging",
    "/api/v1/messaging/ws": "messaging",
    "/api/v1/notifications": "notifications",
    "/api/v1/notifications/ws": "notifications",
    "/api/v1/analytics": "analytics",
    "/analytics/": "analytics",  # the dashboard page (DESIGN §5b) and its chart library
}

WEBSOCKET_PATHS = ("/api/v1/messaging/ws", "/api/v1/notifications/ws")

# Exact resources (no sub-paths to probe below them).
EXACT_PATHS = {"/.well-known/jwks.json", *WEBSOCKET_PATHS}


# --------------------------------------------------------------------------
# A small nginx configuration parser
# --------------------------------------------------------------------------

class Directive:
    def __init__(self, name: str, args: list[str], block: list[Directive] | None):
        self.name = name
        self.args = args
        self.block = block  # None for simple directives, list for blocks

    def children(self, name: str) -> list[Directive]:
        return [d for d in (self.block or []) if d.name == name]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Directive({self.name!r}, {self.args!r}, block={self.block is not None})"


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<dq>"(?:\\.|[^"\\])*")
  | (?P<sq>'(?:\\.|[^'\\])*')
  | (?P<punct>[{};])
  | (?P<word>(?:\\.|[^\s{};"'\\])+)
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if m is None:
            raise ValueError(f"nginx.conf: cannot tokenize at offset {pos}: {text[pos:pos + 30]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        value = m.group()
        if kind in ("dq", "sq"):
            value = value[1:-1]
            # Keep punctuation produced by quoting distinguishable from syntax.
            tokens.append("\0" + value)
        else:
            tokens.append(value)
    return tokens


def parse_nginx(text: str) -> list[Directive]:
    tokens = _tokenize(text)
    pos = 0

    def parse_block(closing: bool) -> list[Directive]:
        nonlocal pos
        out: list[Directive] = []
        words: list[str] = []
        while pos < len(tokens):
            tok = tokens[pos]
            pos += 1
            if tok == ";":
                if not words:
                    raise ValueError("nginx.conf: empty directive")
                out.append(Directive(words[0], words[1:], None))
                words = []
            elif tok == "{":
                if not words:
                    raise ValueError("nginx.conf: block without a name")
                out.append(Directive(words[0], words[1:], parse_block(closing=True)))
                words = []
            elif tok == "}":
                if not closing or words:
                    raise ValueError("nginx.conf: unbalanced '}' or unterminated directive")
                return out
            else:
                words.append(tok.lstrip("\0"))
        if closing or words:
            raise ValueError("nginx.conf: unexpected end of file (missing '}' or ';')")
        return out

    return parse_block(closing=False)


def _inherited(chain: list[Directive], name: str) -> list[Directive]:
    """nginx array-directive inheritance (proxy_set_header, add_header, ...):
    the innermost level that defines `name` wins; outer levels are ignored."""
    for level in reversed(chain):
        found = level.children(name)
        if found:
            return found
    return []


def _effective_headers(chain: list[Directive]) -> dict[str, str]:
    return {d.args[0].lower(): " ".join(d.args[1:]) for d in _inherited(chain, "proxy_set_header")}


class Gateway:
    def __init__(self, text: str):
        self.tree = parse_nginx(text)
        https = [d for d in self.tree if d.name == "http"]
        assert len(https) == 1, "nginx.conf must have exactly one http block"
        self.http = https[0]
        self.upstreams = {
            d.args[0]: [s.args[0] for s in d.children("server")] for d in self.http.children("upstream")
        }
        self.maps = {d.args[1]: d for d in self.http.children("map")}
        servers = self.http.children("server")
        assert servers, "nginx.conf has no server block"
        self.server = servers[0]
        self.locations = self.server.children("location")

    def match(self, path: str) -> Directive | None:
        """Select the location nginx would use for `path` (exact, then longest
        prefix; regex locations are not supported by this gateway)."""
        prefix_best: Directive | None = None
        for loc in self.locations:
            args = loc.args
            if args[0] == "=":
                if args[1] == path:
                    return loc
            elif args[0] in ("~", "~*"):
                raise AssertionError(f"regex location {args!r}: keep the gateway to prefix/exact matches")
            else:
                prefix = args[1] if args[0] == "^~" else args[0]
                if path.startswith(prefix) and (
                    prefix_best is None or len(prefix) > len(prefix_best.args[-1])
                ):
                    prefix_best = loc
        return prefix_best

    def service_of(self, loc: Directive) -> str | None:
        """Compose service a location proxies to (via its upstream block)."""
        passes = loc.children("proxy_pass")
        if not passes:
            return None
        assert len(passes) == 1, f"location {loc.args!r} has several proxy_pass"
        target = passes[0].args[0]
        m = re.fullmatch(r"https?://([^/:]+)(?::(\d+))?(/.*)?", target)
        assert m, f"location {loc.args!r}: unparseable proxy_pass {target!r}"
        host, port, uri = m.groups()
        # proxy_pass with a URI part would rewrite the path; services expect it unchanged.
        assert uri is None, f"location {loc.args!r}: proxy_pass {target!r} must not rewrite the URI"
        if host in self.upstreams:
            servers = self.upstreams[host]
            assert len(servers) >= 1, f"upstream {host} has no server"
            hosts = {s.split(":")[0] for s in servers}
            assert all(s.endswith(":8000") for s in servers), f"upstream {host}: services listen on 8000"
            assert len(hosts) == 1, f"upstream {host} mixes services: {servers}"
            return hosts.pop()
        assert port == "8000", f"location {loc.args!r}: services listen on port 8000"
        return host


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def gateway() -> Gateway:
    return Gateway(NGINX_CONF.read_text())


def _probe_paths(prefix: str) -> list[str]:
    if prefix in EXACT_PATHS:
        return [prefix]
    paths = [prefix, prefix.rstrip("/") + "/some-id/sub"]
    return paths


def _depends(service: dict) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {k: (v or {}).get("condition", "service_started") for k, v in deps.items()}


# --------------------------------------------------------------------------
# nginx parser self-test (so a broken parser cannot make the checks vacuous)
# --------------------------------------------------------------------------

def test_parser_understands_nginx_syntax():
    conf = Gateway(
        """
        events {}
        http {
            upstream a { server svc-a:8000; }  # comment with ; and {
            server {
                location = /x { proxy_pass http://a; }
                location /y/ { return 200 'ok; {}'; }
                location /y/z { proxy_pass http://svc-b:8000; }
            }
        }
        """
    )
    assert conf.service_of(conf.match("/x")) == "svc-a"
    assert conf.service_of(conf.match("/y/zz")) == "svc-b"
    assert conf.service_of(conf.match("/y/q")) is None
    assert conf.match("/nowhere") is None
    with pytest.raises(ValueError):
        parse_nginx("http { server { }")


# --------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------

def test_compose_has_required_services(compose):
    required = {"postgres", "kafka", "migrate", "gateway", *SERVICES}
    missing = required - set(compose.get("services", {}))
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


def test_compose_build_dockerfiles_exist(compose):
    builds = 0
    for name, svc in compose["services"].items():
        build = svc.get("build")
        if build is None:
            continue
        builds += 1
        if isinstance(build, str):
            context, dockerfile = build, "Dockerfile"
        else:
            context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
        path = (ROOT / context / dockerfile).resolve()
        assert path.is_file(), f"service {name}: Dockerfile {path} does not exist"
    assert builds >= len(SERVICES) + 1  # four services + migrate


DOCKERFILE = ROOT / "deploy" / "Dockerfile"


def test_every_service_builds_the_one_dockerfile_with_its_name(compose):
    for name in (*SERVICES, "migrate"):
        build = compose["services"][name]["build"]
        assert build["context"] in (".", "./")
        assert Path(build["dockerfile"]) == Path("deploy/Dockerfile"), name
        expected = "posts" if name == "migrate" else name
        assert build.get("args", {}).get("SERVICE") == expected, f"{name}: build arg SERVICE must be {expected}"
    leftovers = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("services/*/Dockerfile"))
    assert not leftovers, f"one Dockerfile (deploy/Dockerfile) builds every service; remove {leftovers}"


def test_postgres_service(compose):
    pg = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)*(-[\w.]+)?", pg["image"]), pg["image"]
    assert "pg_isready" in json.dumps(pg["healthcheck"]["test"])
    assert any("/var/lib/postgresql/data" in v for v in pg.get("volumes", [])), "postgres needs a data volume"


def test_kafka_is_single_node_kraft(compose):
    services = compose["services"]
    assert not any("zookeeper" in n.lower() for n in services), "no ZooKeeper: Kafka runs in KRaft mode"
    kafka = services["kafka"]
    assert kafka["image"] == "apache/kafka:3.9.0"
    env = kafka["environment"]
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    env = {k: str(v) for k, v in env.items()}
    assert not any("ZOOKEEPER" in k for k in env)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{node_id}@kafka:")
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "CONTROLLER://" in env["KAFKA_LISTENERS"]
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert "healthcheck" in kafka


def test_migrate_job(compose):
    migrate = compose["services"]["migrate"]
    assert migrate.get("restart") in ("no", False)
    assert _depends(migrate).get("postgres") == "service_healthy"
    command = migrate["command"]
    command = " ".join(command) if isinstance(command, list) else command
    assert "shared.devstack createdb" in command
    for name in SERVICES:
        assert f"alembic -c services/{name}/alembic.ini upgrade head" in command, name
    # The migrate image must contain every service's migrations.
    dockerfile = Path(migrate["build"]["dockerfile"])
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^COPY\s+services/?\s", text, re.MULTILINE), "migrate image must contain all services/"
    for name in SERVICES:
        assert (ROOT / "services" / name / "alembic.ini").is_file(), name


def test_service_dependencies_and_env(compose):
    for name in SERVICES:
        svc = compose["services"][name]
        deps = _depends(svc)
        assert deps.get("migrate") == "service_completed_successfully", name
        assert deps.get("kafka") == "service_healthy", name
        env = svc["environment"]
        for var in ("HEARTH_ENV", "HEARTH_DATABASE_URL", "HEARTH_KAFKA_BOOTSTRAP", "HEARTH_KAFKA_IDEMPOTENCE"):
            assert var in env, f"{name}: {var} not set"
        assert env["HEARTH_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert "@postgres:5432/" in env["HEARTH_DATABASE_URL"]
        if name != "posts":
            assert env["HEARTH_JWKS_URL"] == "http://posts:8000/.well-known/jwks.json", name
        assert "/healthz" in json.dumps(svc["healthcheck"]["test"]), name
        assert "ports" not in svc, f"{name} must only be reachable through the gateway"
    posts_env = compose["services"]["posts"]["environment"]
    for var in ("HEARTH_JWT_PRIVATE_KEY_FILE", "HEARTH_ADMIN_EMAIL", "HEARTH_ADMIN_PASSWORD", "HEARTH_SCIM_TOKEN"):
        assert var in posts_env, f"posts: {var} not set"


def test_gateway_service(compose):
    gw = compose["services"]["gateway"]
    assert gw["image"].startswith("nginx:")
    assert any(str(p).split(":")[-2:] == ["8000", "80"] for p in gw["ports"]), gw["ports"]
    mounts = [str(v).split(":") for v in gw["volumes"]]
    assert any(
        Path(m[0]) == Path("./deploy/nginx.conf") and m[1] == "/etc/nginx/nginx.conf" and m[2:] == ["ro"]
        for m in mounts
    ), gw["volumes"]
    for name in SERVICES:
        assert name in _depends(gw), f"gateway should start after {name}"


# --------------------------------------------------------------------------
# deploy/nginx.conf
# --------------------------------------------------------------------------

def test_nginx_has_events_and_upstreams(gateway):
    assert any(d.name == "events" for d in gateway.tree)
    served = {s.split(":")[0] for servers in gateway.upstreams.values() for s in servers}
    assert set(SERVICES) <= served


@pytest.mark.parametrize("prefix,service", sorted(ROUTES.items()))
def test_prefix_is_routed_to_its_service(gateway, prefix, service):
    for path in _probe_paths(prefix):
        loc = gateway.match(path)
        assert loc is not None, f"{path}: no location matches"
        routed = gateway.service_of(loc)
        assert routed == service, f"{path}: matched location {loc.args!r} -> {routed!r}, expected {service!r}"


def test_every_proxied_location_is_expected(gateway):
    """No location proxies something outside the public prefix table."""
    for loc in gateway.locations:
        if gateway.service_of(loc) is None:
            continue
        path = loc.args[-1]
        owners = [p for p in ROUTES if path.startswith(p) or p.startswith(path)]
        assert owners, f"location {loc.args!r} routes a path that is not a public prefix"


def test_unknown_paths_are_not_proxied(gateway):
    loc = gateway.match("/internal/secret")
    assert loc is None or gateway.service_of(loc) is None


@pytest.mark.parametrize("path", WEBSOCKET_PATHS)
def test_websocket_locations_upgrade(gateway, path):
    loc = gateway.match(path)
    chain = [gateway.http, gateway.server, loc]
    versions = _inherited(chain, "proxy_http_version")
    assert versions and versions[-1].args == ["1.1"], f"{path}: proxy_http_version 1.1 required"
    headers = _effective_headers(chain)
    assert headers.get("upgrade") == "$http_upgrade", f"{path}: Upgrade header not forwarded"
    connection = headers.get("connection", "")
    if connection.startswith("$"):
        mapping = gateway.maps.get(connection)
        assert mapping is not None, f"{path}: {connection} is not defined by a map"
        assert mapping.args[0] == "$http_upgrade"
        assert any(d.name == "default" and d.args == ["upgrade"] for d in mapping.block)
    else:
        assert connection.lower() == "upgrade", f"{path}: Connection header must be upgrade"


def test_proxied_locations_forward_client_headers(gateway):
    for loc in gateway.locations:
        if gateway.service_of(loc) is None:
            continue
        headers = _effective_headers([gateway.http, gateway.server, loc])
        assert headers.get("x-forwarded-for") == "$proxy_add_x_forwarded_for", loc.args
        assert headers.get("x-forwarded-proto") == "$scheme", loc.args
        assert "x-request-id" in headers, loc.args
        assert "host" in headers, loc.args


def test_body_size_and_gateway_healthz(gateway):
    sizes = _inherited([gateway.http, gateway.server], "client_max_body_size")
    assert sizes and sizes[-1].args == ["1m"]
    loc = gateway.match("/healthz")
    assert loc is not None and loc.args == ["=", "/healthz"]
    returns = loc.children("return")
    assert returns and returns[0].args[0] == "200"


# --------------------------------------------------------------------------
# Dockerfiles
# --------------------------------------------------------------------------

def _instructions(text: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", text)  # line continuations
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def _cmd_argv(value: str) -> list[str]:
    if value.startswith("["):
        return json.loads(value)
    return shlex.split(value)


def test_dockerfile_builds_any_service_from_the_service_arg():
    instr = _instructions(DOCKERFILE.read_text())
    values = lambda kw: [v for k, v in instr if k == kw]

    froms = values("FROM")
    assert froms and froms[-1].split()[0].startswith("python:3.11"), froms
    assert "SERVICE" in [a.split("=")[0] for a in values("ARG")], "the service is chosen by ARG SERVICE"
    env = " ".join(values("ENV"))
    assert "PYTHONDONTWRITEBYTECODE" in env and "PYTHONUNBUFFERED" in env
    assert "HEARTH_SERVICE=${SERVICE}" in env, "the build arg must reach the container's runtime"

    users = values("USER")
    assert users, "Dockerfile must switch to a non-root USER"
    assert users[-1].split(":")[0] not in ("root", "0"), users[-1]
    kinds = [k for k, _ in instr]  # USER after the install steps, before CMD
    assert max(i for i, k in enumerate(kinds) if k == "USER") < kinds.index("CMD")
    assert any("8000" in v.split() for v in values("EXPOSE"))
    assert values("HEALTHCHECK"), "Dockerfile needs a HEALTHCHECK"
    assert any("pip install --no-cache-dir ." in v for v in values("RUN"))
    assert any(re.fullmatch(r"services/?\s+services/?", v) for v in values("COPY")), "every image holds services/"

    cmds = values("CMD")
    assert cmds, "Dockerfile needs a CMD"
    argv = _cmd_argv(cmds[-1])
    assert argv[:2] == ["sh", "-c"] and argv[2].startswith("exec uvicorn "), argv
    command = shlex.split(argv[2])
    for name in SERVICES:  # what the shell runs once HEARTH_SERVICE is set
        expanded = [a.replace("${HEARTH_SERVICE}", name) for a in command]
        assert f"services.{name}.main:app" in expanded, expanded
    assert "--no-access-log" in command
    assert command[command.index("--port") + 1] == "8000"


def test_uvicorn_does_not_trust_forwarded_headers_from_any_peer():
    """Client-address trust is the app's HEARTH_TRUSTED_PROXIES setting; uvicorn must not trust '*'."""
    text = DOCKERFILE.read_text()
    cmd = _cmd_argv([v for k, v in _instructions(text) if k == "CMD"][-1])
    assert "--forwarded-allow-ips" not in " ".join(cmd)
    assert "FORWARDED_ALLOW_IPS" not in text


def test_dockerignore():
    entries = {
        line.strip().strip("/").removeprefix("**/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".venv", ".hearth", ".git", "__pycache__", "tests", "bench"):
        assert entry in entries, f".dockerignore should exclude {entry}"


def test_services_trust_forwarded_addresses_from_the_gateway_only(compose):
    """Per-address login throttling must see clients: the gateway, and nobody else, is a trusted proxy."""
    from ipaddress import ip_address, ip_network

    gateway = compose["services"]["gateway"]["networks"]["default"]["ipv4_address"]
    subnets = [ip_network(c["subnet"]) for c in compose["networks"]["default"]["ipam"]["config"]]
    assert any(ip_address(gateway) in subnet for subnet in subnets), "the gateway's address must be on the network"
    for name in SERVICES:
        env = compose["services"][name]["environment"]
        assert env["HEARTH_TRUSTED_PROXIES"] == gateway, f"{name} must trust exactly the gateway"
        assert "networks" not in compose["services"][name] or "default" in compose["services"][name]["networks"]
