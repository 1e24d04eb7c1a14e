"""Who is calling: peer credentials of the connection, the caller's cgroups, and the matching instance.

The kernel fills SO_PEERCRED when the client connects, so nothing the client
sends can change it. Lookups go through indexes keyed by uid, gid, pid and
cgroup path, so the cost per request does not grow with the number of
registered instances; candidates are then checked against all their matchers.
"""

from __future__ import annotations

import socket
import struct
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ostor.guestapi.model import Instance, Matchers

_UCRED = struct.Struct("3i")


@dataclass(frozen=True)
class PeerCredentials:
    """The calling process as the kernel saw it at connect time."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCredentials:
    """SO_PEERCRED of a connected Unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCredentials(pid, uid, gid)


def read_cgroup_lines(pid: int) -> list[str]:
    """The lines of /proc/PID/cgroup ([] when the process is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as handle:
            return [line.rstrip("\n") for line in handle if line.strip()]
    except OSError:
        return []


def _ancestors(path: str) -> Iterable[str]:
    # "/a/b/c" -> "/a/b/c", "/a/b", "/a", "/": every prefix a matcher may name, on component bounds.
    while True:
        yield path
        if path in ("/", ""):
            return
        parent = path.rsplit("/", 1)[0]
        path = parent or "/"


def cgroup_keys(lines: Iterable[str]) -> frozenset[str]:
    """Every cgroup matcher value the process with these /proc/PID/cgroup lines satisfies."""
    keys = set()
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if not path.startswith("/"):
            continue
        for prefix in _ancestors(path):
            keys.add(prefix)
            keys.add(f"{hierarchy}:{controllers}:{prefix}")
    return frozenset(keys)


class MatcherIndex:
    """Instance names by each matcher value, and the rule that picks the caller's instance."""

    def __init__(self) -> None:
        self._by: dict[str, dict[object, set[str]]] = {k: defaultdict(set) for k in ("uid", "gid", "pid", "cgroup")}

    def _entries(self, matchers: Matchers) -> Iterable[tuple[str, object]]:
        for kind, value in matchers.as_doc().items():
            yield kind, value

    def add(self, instance: Instance) -> None:
        """Index an instance under each of its matchers."""
        for kind, value in self._entries(instance.matchers):
            self._by[kind][value].add(instance.name)

    def remove(self, instance: Instance) -> None:
        """Drop an instance from the index."""
        for kind, value in self._entries(instance.matchers):
            names = self._by[kind].get(value)
            if names is not None:
                names.discard(instance.name)
                if not names:
                    del self._by[kind][value]

    def sharing(self, matchers: Matchers) -> set[str]:
        """Names of instances indexed under one of ``matchers``' values (their twins are among them)."""
        kind, value = next(iter(self._entries(matchers)))
        return set(self._by[kind].get(value, set()))

    @property
    def uses_cgroups(self) -> bool:
        """Whether any instance has a cgroup matcher (else /proc is not read at all)."""
        return bool(self._by["cgroup"])

    def candidates(self, creds: PeerCredentials, cgroups: frozenset[str]) -> set[str]:
        """Names of instances sharing at least one matcher value with the caller."""
        found: set[str] = set()
        for kind, value in (("uid", creds.uid), ("gid", creds.gid), ("pid", creds.pid)):
            found |= self._by[kind].get(value, set())
        if cgroups:
            by_cgroup = self._by["cgroup"]
            for key in cgroups:
                names = by_cgroup.get(key)
                if names:
                    found |= names
        return found

    def resolve(self, creds: PeerCredentials, lookup: Callable[[str], Instance | None],
                cgroup_lines: Callable[[int], list[str]] = read_cgroup_lines) -> Instance | None:
        """The caller's instance: all of its matchers hold and no other matching one is as specific.

        None when no instance matches or two equally specific ones do (an
        ambiguous caller gets nothing rather than a guess).
        """
        cgroups = cgroup_keys(cgroup_lines(creds.pid)) if self.uses_cgroups else frozenset()
        best: list[Instance] = []
        for name in self.candidates(creds, cgroups):
            instance = lookup(name)
            if instance is None or not instance.matchers.matches(creds.pid, creds.uid, creds.gid, cgroups):
                continue
            if not best or instance.matchers.specificity > best[0].matchers.specificity:
                best = [instance]
            elif instance.matchers.specificity == best[0].matchers.specificity:
                best.append(instance)
        return best[0] if len(best) == 1 else None
