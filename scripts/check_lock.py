"""Check that requirements.lock still satisfies pyproject.toml, so that the two cannot drift apart.

requirements.lock pins, with hashes, every package a production install needs (`make lock` writes it). This check
runs offline in `make test` and fails, naming each problem, when:
- a pin has no --hash line (pip's --require-hashes would refuse the whole file);
- a runtime requirement of pyproject.toml is missing from the lock, or pinned to a version it does not allow;
- a package that an extra brings (psycopg[binary] -> psycopg-binary) is missing or pinned outside its range;
- a pinned package needs another package that the lock lacks, or pins outside its range (checked from the metadata
  of the installed copy, when the installed version is the pinned one).
Usage: python scripts/check_lock.py [path/to/requirements.lock]
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>[^\\]+))?")


def read_lock(path: Path) -> dict[str, list[dict]]:
    """Pins by canonical name (a name may be pinned twice under exclusive markers), each with its hashes."""
    pins: dict[str, list[dict]] = {}
    current = None
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = PIN.match(stripped)
        if match:
            marker = match.group("marker")
            current = {"version": Version(match.group("version")), "hashes": [],
                       "marker": Marker(marker.strip()) if marker and marker.strip() else None,
                       "text": stripped.rstrip(" \\")}
            pins.setdefault(canonicalize_name(match.group("name")), []).append(current)
        elif stripped.startswith("--hash=") and current is not None:
            current["hashes"].append(stripped.split("=", 1)[1].rstrip(" \\"))
        elif stripped.startswith("-"):
            continue  # options such as --index-url
        else:
            raise SystemExit(f"{path.name}: cannot read line {line!r}")
    return pins


def applies(marker: Marker | None, extra: str = "") -> bool:
    return marker is None or marker.evaluate({"extra": extra})


def check_requirement(requirement: Requirement, pins: dict, why: str, problems: list[str], extra: str = "") -> None:
    if requirement.marker is not None and not requirement.marker.evaluate({"extra": extra}):
        return
    name = canonicalize_name(requirement.name)
    candidates = [p for p in pins.get(name, []) if applies(p["marker"])]
    if not candidates:
        problems.append(f"{requirement} ({why}) is not pinned")
        return
    for pin in candidates:
        if not requirement.specifier.contains(pin["version"], prereleases=True):
            problems.append(f"{requirement} ({why}) is pinned as {pin['text']}")


def needs(name: str, version: Version, extras: set[str]) -> list[tuple[Requirement, str]] | None:
    """What the installed copy of `name` asks for (with `extras`: only what those extras add), each with the extra
    that brings it; None when the installed version is not the pinned one."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return None
    if Version(dist.version) != version:
        return None
    wanted = []
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            if not extras:
                wanted.append((requirement, ""))
            continue
        for extra in sorted(extras):
            if requirement.marker.evaluate({"extra": extra}):
                wanted.append((requirement, extra))
                break
    return wanted


def main(lock_path: Path) -> int:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    if not lock_path.exists():
        print(f"{lock_path.name} is missing: run `make lock`", file=sys.stderr)
        return 1
    pins = read_lock(lock_path)
    problems = [f"{pin['text']} has no --hash" for entries in pins.values() for pin in entries if not pin["hashes"]]
    unchecked = set()
    for text in project["dependencies"]:
        requirement = Requirement(text)
        check_requirement(requirement, pins, "pyproject.toml", problems)
        for pin in pins.get(canonicalize_name(requirement.name), []):
            if requirement.extras:
                wanted = needs(requirement.name, pin["version"], set(requirement.extras))
                if wanted is None:
                    unchecked.add(pin["text"])
                for needed, extra in wanted or []:
                    check_requirement(needed, pins, f"{requirement.name}[{extra}]", problems, extra)
    for name, entries in sorted(pins.items()):
        for pin in entries:
            if not applies(pin["marker"]):
                continue
            wanted = needs(name, pin["version"], set())
            if wanted is None:
                unchecked.add(pin["text"])
                continue
            for needed, _ in wanted:
                check_requirement(needed, pins, f"needed by {name} {pin['version']}", problems)
    if problems:
        print(f"{lock_path.name} no longer matches pyproject.toml: run `make lock`", file=sys.stderr)
        for problem in dict.fromkeys(problems):
            print(f"  - {problem}", file=sys.stderr)
        return 1
    count = sum(len(entries) for entries in pins.values())
    note = f"; {len(unchecked)} pins differ from the installed versions, their own needs unchecked" if unchecked else ""
    print(f"{lock_path.name}: {count} pins, all hashed, satisfy pyproject.toml's "
          f"{len(project['dependencies'])} runtime requirements{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "requirements.lock"))
