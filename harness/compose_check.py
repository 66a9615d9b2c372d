"""Static checks of docker-compose.yml, for machines without a Docker engine (tests/compose/).

`check_compose(doc, repo, promises)` takes the parsed file (PyYAML: anchors and `<<` merges already
resolved), the repository it lives in and what the README promises about it (`Promises`), and returns
every problem found, each naming the service and the rule; an empty list means the file is sound:

- the services are exactly the promised ones, each with an image or a build;
- images are pinned: a tag other than `latest`, or a digest;
- no host networking, no host PID/IPC namespace, no privileged container, no absolute host path
  (bind mounts are relative to the repository and exist in it); named volumes are declared;
- ports are published only where promised (host side), and the promised ones are;
- the promised environment variables (and values) and command words are there;
- `depends_on` names existing services, with a known condition; `service_healthy` needs a healthcheck;
  long-running services have one (one-shot services need none);
- files the commands name exist in the repository: the build context's Dockerfile, locustfiles
  (`-f FILE`), the scenario paths of `ehrlab run`.

Hand-written: compose-spec JSON-schema validators check shapes, not these project rules (pinned tags,
what the README promises, files in the repository), and need a schema download this lab cannot do.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

DEPENDS_CONDITIONS = frozenset({"service_started", "service_healthy", "service_completed_successfully"})
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True, slots=True)
class Problem:
    service: str  # "" for the file as a whole
    rule: str  # e.g. "image-unpinned", "host-network", "missing-file"
    detail: str

    def __str__(self) -> str:
        where = f"service {self.service!r}" if self.service else "compose file"
        return f"{where}: {self.rule}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Promises:
    """What the README says about the compose file."""

    services: frozenset[str]
    ports: Mapping[str, frozenset[int]] = field(default_factory=dict)  # service -> published host ports
    environment: Mapping[str, Mapping[str, str | None]] = field(default_factory=dict)  # None: any value
    commands: Mapping[str, Sequence[str]] = field(default_factory=dict)  # words that must be in the command
    one_shot: frozenset[str] = frozenset()  # services that run and exit: no healthcheck needed


def _mapping(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def command_words(value: object) -> list[str]:
    """A compose `command`/`entrypoint` as words: the list form as is, the string form split like a shell."""
    if isinstance(value, str):
        return shlex.split(value)
    if isinstance(value, list):
        return [str(word) for word in value]
    return []


def environment(service: Mapping[str, object]) -> dict[str, str | None]:
    """`environment` in either form (mapping, or list of `NAME=value` / `NAME`)."""
    raw = service.get("environment")
    if isinstance(raw, Mapping):
        return {str(k): None if v is None else str(v) for k, v in raw.items()}
    if isinstance(raw, list):
        pairs = [str(item).partition("=") for item in raw]
        return {name: value if sep else None for name, sep, value in pairs}
    return {}


def published_ports(service: Mapping[str, object]) -> set[int]:
    """Host ports of `ports:` (short `[IP:]HOST:CONTAINER[/proto]` or long `{published: ...}` syntax)."""
    found: set[int] = set()
    raw = service.get("ports")
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, Mapping):
            published = entry.get("published")
            if published is not None:
                found.add(int(str(published)))
            continue
        text = str(entry).split("/", 1)[0]
        parts = text.rsplit(":", 2)
        if len(parts) >= 2:  # a bare "8000" publishes an ephemeral host port: counted as 0
            found.add(int(parts[-2]) if parts[-2] else 0)
        else:
            found.add(0)
    return found


def image_problem(image: str) -> str | None:
    """Why `image` is not pinned, or None: a tag other than `latest`, or a digest, is required."""
    if _DIGEST.search(image):
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"{image!r} has no tag (means latest)"
    tag = last.rsplit(":", 1)[1]
    if not tag or tag == "latest" or tag.startswith("$"):
        return f"{image!r} is not pinned to a version"
    return None


def _is_absolute(path: str) -> bool:
    return path.startswith(("/", "~", "\\")) or bool(_WINDOWS_DRIVE.match(path))


def _repo_file(repo: Path, relative: str) -> Path:
    return repo / PurePosixPath(relative.removeprefix("./"))


def _check_volumes(name: str, service: Mapping[str, object], declared: Mapping[str, object], repo: Path
                   ) -> list[Problem]:
    problems: list[Problem] = []
    raw = service.get("volumes")
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, Mapping):
            source = str(entry.get("source", ""))
            bind = entry.get("type") == "bind"
        else:
            source = str(entry).split(":", 1)[0] if ":" in str(entry) else ""
            bind = source.startswith((".", "/", "~", "\\")) or bool(_WINDOWS_DRIVE.match(source))
        if not source:
            continue  # an anonymous volume
        if _is_absolute(source):
            problems.append(Problem(name, "absolute-host-path", f"bind mount of {source!r}: works on one machine only"))
        elif bind:
            if ".." in PurePosixPath(source).parts:
                problems.append(Problem(name, "path-outside-repo", f"bind mount of {source!r} leaves the repository"))
            elif not _repo_file(repo, source).exists():
                problems.append(Problem(name, "missing-file", f"bind mount source {source!r} is not in the repository"))
        elif source not in declared:
            problems.append(Problem(name, "undeclared-volume", f"named volume {source!r} is not under `volumes:`"))
    return problems


def _check_files(name: str, service: Mapping[str, object], repo: Path) -> list[Problem]:
    problems: list[Problem] = []
    build = service.get("build")
    if build is not None:
        context = build if isinstance(build, str) else str(_mapping(build).get("context", "."))
        dockerfile = "Dockerfile" if isinstance(build, str) else str(_mapping(build).get("dockerfile", "Dockerfile"))
        if _is_absolute(context):
            problems.append(Problem(name, "absolute-host-path", f"build context {context!r}"))
        elif not (_repo_file(repo, context) / dockerfile).is_file():
            problems.append(Problem(name, "missing-file", f"{dockerfile} not found in build context {context!r}"))
    words = command_words(service.get("entrypoint")) + command_words(service.get("command"))
    referenced: list[str] = []
    for i, word in enumerate(words):
        if word in ("-f", "--locustfile") and i + 1 < len(words):
            referenced += words[i + 1].split(",")
    if "run" in words and build is not None:  # `ehrlab run PATH...`: the scenario paths
        after = words[words.index("run") + 1:]
        referenced += [w for w in after[:next((i for i, w in enumerate(after) if w.startswith("-")), len(after))]]
    for path in referenced:
        if _is_absolute(path):
            problems.append(Problem(name, "absolute-host-path", f"command names {path!r}"))
        elif not _repo_file(repo, path).exists():
            problems.append(Problem(name, "missing-file", f"command names {path!r}, not in the repository"))
    return problems


def _check_links(name: str, service: Mapping[str, object], services: Mapping[str, object]) -> list[Problem]:
    problems: list[Problem] = []
    raw = service.get("depends_on")
    targets: dict[str, str] = {}
    if isinstance(raw, list):
        targets = {str(t): "service_started" for t in raw}
    elif isinstance(raw, Mapping):
        targets = {str(t): str(_mapping(spec).get("condition", "service_started")) for t, spec in raw.items()}
    for target, condition in targets.items():
        if target not in services:
            problems.append(Problem(name, "unknown-dependency", f"depends_on {target!r}, which is no service"))
            continue
        if condition not in DEPENDS_CONDITIONS:
            problems.append(Problem(name, "bad-condition", f"depends_on {target!r} with condition {condition!r}"))
        elif condition == "service_healthy" and not _mapping(services[target]).get("healthcheck"):
            problems.append(Problem(name, "unhealthy-dependency",
                                    f"waits for {target!r} to be healthy, but {target!r} has no healthcheck"))
    mode = service.get("network_mode")
    if mode is not None:
        mode = str(mode)
        if mode == "host":
            problems.append(Problem(name, "host-network", "network_mode: host works on Linux hosts only"))
        elif mode.startswith("service:") and mode.removeprefix("service:") not in services:
            problems.append(Problem(name, "unknown-dependency", f"network_mode {mode!r} names no service"))
        elif mode.startswith("service:") and mode.removeprefix("service:") not in targets:
            problems.append(Problem(name, "unknown-dependency", f"network_mode {mode!r} without depends_on on it"))
    for key in ("pid", "ipc"):
        if service.get(key) == "host":
            problems.append(Problem(name, f"host-{key}", f"{key}: host"))
    if service.get("privileged") is True:
        problems.append(Problem(name, "privileged", "privileged: true"))
    return problems


def check_service(name: str, service: Mapping[str, object], doc: Mapping[str, object], repo: Path,
                  promises: Promises) -> list[Problem]:
    services = _mapping(doc.get("services"))
    problems: list[Problem] = []
    image, build = service.get("image"), service.get("build")
    if image is None and build is None:
        problems.append(Problem(name, "no-image", "neither image nor build"))
    if image is not None and (why := image_problem(str(image))):
        problems.append(Problem(name, "image-unpinned", why))
    if name not in promises.one_shot and not _mapping(service.get("healthcheck")).get("test"):
        problems.append(Problem(name, "no-healthcheck", "a long-running service needs a healthcheck"))
    ports = published_ports(service)
    expected_ports = promises.ports.get(name, frozenset())
    for port in sorted(ports - expected_ports):
        problems.append(Problem(name, "unpromised-port", f"publishes host port {port}, which the README does not"))
    for port in sorted(expected_ports - ports):
        problems.append(Problem(name, "missing-port", f"the README promises host port {port}"))
    env = environment(service)
    for var, value in promises.environment.get(name, {}).items():
        if var not in env:
            problems.append(Problem(name, "missing-env", f"{var} is not set"))
        elif value is not None and env[var] != value:
            problems.append(Problem(name, "wrong-env", f"{var}={env[var]!r}, the README says {value!r}"))
    words = command_words(service.get("entrypoint")) + command_words(service.get("command"))
    for word in promises.commands.get(name, ()):
        if word not in words:
            problems.append(Problem(name, "missing-command-word", f"{word!r} not in the command {words}"))
    problems += _check_links(name, service, services)
    problems += _check_volumes(name, service, _mapping(doc.get("volumes")), repo)
    problems += _check_files(name, service, repo)
    return problems


def check_compose(doc: object, repo: Path, promises: Promises) -> list[Problem]:
    """Every problem of the parsed compose file `doc` (see the module docstring)."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("services"), Mapping):
        return [Problem("", "no-services", "the file has no `services:` mapping")]
    services = _mapping(doc["services"])
    missing = sorted(promises.services - set(services))
    problems = [Problem(s, "missing-service", "the README promises it") for s in missing]
    problems += [Problem(str(s), "unpromised-service", "not in the README") for s in services
                 if s not in promises.services]
    for name, service in services.items():
        if not isinstance(service, Mapping):
            problems.append(Problem(str(name), "bad-service", "not a mapping"))
            continue
        problems += check_service(str(name), service, doc, repo, promises)
    return problems
