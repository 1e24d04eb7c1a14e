"""Checking a volume: every name's link against live blocks, and blocks no name owns.

A name (or an upload's part) must point at an object that its object server
holds with the recorded size and intact blocks (header IDs, lengths,
checksums). An object no name, part, guard or GC entry refers to is leaked
space.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ostor.common.ids import format_id
from ostor.engine.services import NO_DATA_OS_ID, LocalServices


@dataclass
class CheckReport:
    """What a check found; ``clean`` when nothing is damaged or leaked."""

    names: int = 0
    parts: int = 0
    objects: int = 0
    pending: int = 0  # guards and GC-queue entries still to be processed
    damaged: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    leaked_bytes: int = 0
    pools: dict[str, list] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """True when every link resolves to intact data and no data is orphaned."""
        return not self.damaged and not self.leaked

    def lines(self) -> list[str]:
        """A readable report, one finding per line."""
        out = [f"names: {self.names}, upload parts: {self.parts}, objects on object servers: {self.objects}, "
               f"pending GC/guards: {self.pending}"]
        for service, pools in self.pools.items():
            used = sum(p.used for p in pools)
            dirty = sum(p.dirty for p in pools)
            size = sum(p.file_bytes for p in pools)
            out.append(f"object server {service}: {used} blocks used, {dirty} awaiting GC, "
                       f"{size} bytes in pool files")
        out += [f"DAMAGED {line}" for line in self.damaged]
        out += [f"LEAKED {line}" for line in self.leaked]
        if self.leaked:
            out.append(f"leaked: {len(self.leaked)} objects, {self.leaked_bytes} bytes")
        out.append("clean" if self.clean else
                   f"NOT CLEAN: {len(self.damaged)} damaged, {len(self.leaked)} leaked")
        return out


async def check_volume(services: LocalServices) -> CheckReport:
    """Cross-check every name server's links against every object server's blocks."""
    report = CheckReport()
    expected: dict[tuple[int, bytes], object] = {}
    pending: set[tuple[int, bytes]] = set()
    for ns in services.local_name_servers.values():
        for ref in await ns.inventory():
            if ref.os_id == NO_DATA_OS_ID:
                continue
            ident = (ref.os_id, ref.object_id)
            if ref.kind in ("guard", "gc"):
                pending.add(ident)
                continue
            if ref.kind == "object":
                report.names += 1
            else:
                report.parts += 1
            expected[ident] = ref
    report.pending = len(pending)
    for (os_id, object_id), ref in expected.items():
        server = services.local_object_servers.get(os_id)
        if server is None:
            report.damaged.append(f"{ref.where}: object server {format_id(os_id)} does not exist")
        elif object_id not in server:
            report.damaged.append(f"{ref.where}: object {object_id.hex()} missing on {format_id(os_id)}")
        else:
            size = server.stat(object_id).size
            if ref.size is not None and size != ref.size:
                report.damaged.append(f"{ref.where}: object {object_id.hex()} holds {size} bytes, "
                                      f"name says {ref.size}")
    for os_id, server in services.local_object_servers.items():
        verify = server.verify()
        report.pools[format_id(os_id)] = verify.pools
        report.damaged += [f"object {damage.object_id.hex()} on {format_id(os_id)}: {damage.reason}"
                           for damage in verify.damaged]
        for stat in server.objects():
            report.objects += 1
            ident = (os_id, stat.object_id)
            if ident not in expected and ident not in pending:
                report.leaked.append(f"object {stat.object_id.hex()} on {format_id(os_id)} "
                                     f"({stat.size} bytes) is referenced by no name")
                report.leaked_bytes += stat.size
    return report
