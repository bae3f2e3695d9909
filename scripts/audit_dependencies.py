"""Known-vulnerability check of the project's dependencies with pip-audit; `make test` runs it before the tests.

Audits two lists, without installing anything:
- the installed versions of everything the project depends on (runtime and test extra, followed transitively
  through the installed packages' metadata; pip, setuptools and other tools in the venv are not the project's);
- the pins of requirements.lock, which is what production installs.
Exits 1 and lists the advisories when a dependency has a known vulnerability. Exits 0 with a printed
"skipped: <reason>" line when no advisory service can be reached (offline, a registry mirror that serves the package
index but not PyPI's per-release JSON API, a time-out): the tests still run, and the line says that nothing was
checked. Any other failure of pip-audit exits 2.

Usage: python scripts/audit_dependencies.py [--timeout SECONDS]
An advisory reviewed and judged not to apply can be ignored with AUDIT_IGNORE="GHSA-xxxx-xxxx-xxxx,PYSEC-2026-1"
(say why in the commit that sets it, and where it is set).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "espace-locataire"
EXTRAS = ("test",)
LOCK = ROOT / "requirements.lock"
# pip-audit's two advisory services, in the order tried; each probe asks about one real, installed release.
PYPI_PROBE = "https://pypi.org/pypi/{name}/{version}/json"
OSV_URL = "https://api.osv.dev/v1/query"
NETWORK_WORDS = ("connection", "timed out", "timeout", "name resolution", "resolve", "unreachable", "ssl",
                 "max retries", "temporarily", "network", "proxy", "404", "503", "502")


def skipped(reason: str) -> int:
    print(f"pip-audit: skipped: {reason}")
    return 0


def installed_closure() -> dict[str, str]:
    """{name: installed version} of the project's dependencies, with its extras, followed transitively."""
    found: dict[str, str] = {}
    done: set[tuple[str, str]] = set()
    todo = [(PROJECT, extra) for extra in ("", *EXTRAS)]
    while todo:
        name, extra = todo.pop()
        key = canonicalize_name(name)
        if (key, extra) in done:
            continue
        done.add((key, extra))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional dependency of another platform or Python
        if key != canonicalize_name(PROJECT):
            found[key] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
                continue
            todo += [(requirement.name, e) for e in ("", *requirement.extras)]
    return found


def probe(service: str, name: str, version: str, timeout: float, osv_url: str) -> str | None:
    """None when the service answers about this release, else why not."""
    try:
        if service == "pypi":
            request = urllib.request.Request(PYPI_PROBE.format(name=name, version=version),
                                             headers={"Accept": "application/json"})
        else:
            body = json.dumps({"package": {"name": name, "ecosystem": "PyPI"}, "version": version}).encode()
            request = urllib.request.Request(osv_url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            json.load(response)
        return None
    except urllib.error.HTTPError as error:
        return f"{request.full_url} answered HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"{request.full_url} cannot be reached ({reason})"


def run_audit(service: str, requirement_files: list[Path], timeout: float, workdir: Path,
              osv_url: str) -> tuple[int, dict, str]:
    """pip-audit on exact pins, without resolving or installing anything: (exit code, JSON report, stderr)."""
    output = workdir / "report.json"
    command = [sys.executable, "-m", "pip_audit", "--vulnerability-service", service, "--progress-spinner", "off",
               "--format", "json", "--output", str(output), "--timeout", str(int(timeout)), "--no-deps",
               "--disable-pip"]
    if service == "osv":
        command += ["--osv-url", osv_url]
    for path in requirement_files:
        command += ["--requirement", str(path)]
    for advisory in filter(None, (a.strip() for a in os.environ.get("AUDIT_IGNORE", "").split(","))):
        command += ["--ignore-vuln", advisory]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout * 8, check=False)
    report = json.loads(output.read_text()) if output.exists() and output.stat().st_size else {}
    return completed.returncode, report, completed.stderr.strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=15, help="seconds per request (the whole run: 8 times)")
    parser.add_argument("--osv-url", default=os.environ.get("AUDIT_OSV_URL", OSV_URL),
                        help="the OSV query API, tried when PyPI's JSON API cannot be reached (env AUDIT_OSV_URL)")
    arguments = parser.parse_args()
    timeout, osv_url = arguments.timeout, arguments.osv_url

    try:
        import pip_audit  # noqa: F401
    except ImportError:
        return skipped("pip-audit is not installed in this environment (pip install -e '.[test]')")
    installed = installed_closure()
    if not installed:
        return skipped(f"{PROJECT} is not installed in this environment (pip install -e .)")
    name = "flask" if "flask" in installed else min(installed)  # a release surely known to the services
    version = installed[name]
    reasons = {}
    for service in ("pypi", "osv"):
        reasons[service] = probe(service, name, version, min(timeout, 10), osv_url)
        if reasons[service] is None:
            break
    else:
        return skipped("no advisory service can be reached: " + "; ".join(f"{s}: {r}" for s, r in reasons.items()))

    versions = {name: {version} for name, version in installed.items()}
    if LOCK.exists():
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from check_lock import read_lock

        for name, pins in read_lock(LOCK).items():
            versions.setdefault(name, set()).update(str(pin["version"]) for pin in pins)
    # pip-audit takes one version of a package per file, and hashes on every line or none: plain pins, in as many
    # files as a package has versions (usually two: what is installed here and what the lock pins differ a little).
    layers = [{} for _ in range(max(len(v) for v in versions.values()))]
    for name, found in versions.items():
        for layer, version in zip(layers, sorted(found)):
            layer[name] = version
    report, code, errors = {"dependencies": []}, 0, ""
    with tempfile.TemporaryDirectory(prefix="audit-") as tmp:
        for index, layer in enumerate(layers):
            workdir = Path(tmp) / str(index)
            workdir.mkdir()
            pinned = workdir / "requirements.txt"
            pinned.write_text("".join(f"{n}=={v}\n" for n, v in sorted(layer.items())))
            try:
                code, part, errors = run_audit(service, [pinned], timeout, workdir, osv_url)
            except subprocess.TimeoutExpired:
                return skipped(f"pip-audit ({service}) did not finish within {timeout * 8:.0f} s")
            if not part:
                report = {}
                break
            report["dependencies"] += part.get("dependencies", [])

    dependencies = report.get("dependencies", [])
    audited = [d for d in dependencies if "skip_reason" not in d]
    vulnerable = [d for d in audited if d.get("vulns")]
    if not report:
        if any(word in errors.lower() for word in NETWORK_WORDS):
            return skipped(f"the advisory service ({service}) failed: {errors.splitlines()[-1][:300]}")
        print(f"pip-audit failed (exit {code}):\n{errors[-2000:]}", file=sys.stderr)
        return 2
    if not audited:
        return skipped(f"the advisory service ({service}) had no data for any of {len(dependencies)} "
                       f"dependencies: {dependencies[0].get('skip_reason', '?') if dependencies else 'none listed'}")
    if vulnerable:
        print(f"pip-audit: known vulnerabilities (service: {service}):", file=sys.stderr)
        for dependency in vulnerable:
            for vuln in dependency["vulns"]:
                fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
                aliases = ", ".join(vuln.get("aliases") or [])
                print(f"  {dependency['name']} {dependency['version']}: {vuln['id']}"
                      f"{f' ({aliases})' if aliases else ''}, fixed in {fixed}", file=sys.stderr)
        print("Upgrade (pyproject.toml bounds, then `make lock`), or ignore a reviewed advisory with AUDIT_IGNORE.",
              file=sys.stderr)
        return 1
    not_audited = len(dependencies) - len(audited)
    print(f"pip-audit: no known vulnerability in {len(audited)} package versions "
          f"({len(installed)} installed{', and the pins of requirements.lock' if LOCK.exists() else ''}; "
          f"service: {service}{f'; {not_audited} not known to the service' if not_audited else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
