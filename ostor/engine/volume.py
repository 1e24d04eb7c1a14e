"""A volume on disk: its ID, its name and object servers, and their directories.

Layout (seed, "Data Interchange"): ``DATA_DIR/volume.json`` lists the services;
each service keeps its files in ``DATA_DIR/services/<16 hex id>/``. The file
carries a format version so later layouts can migrate it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ostor.common.errors import CorruptStoreError
from ostor.common.ids import ServiceType, format_id, make_service_id, parse_id

VOLUME_FORMAT = 1
VOLUME_FILE = "volume.json"
SERVICES_DIR = "services"


@dataclass(frozen=True)
class VolumeLayout:
    """The services of one volume and where their data lives."""

    data_dir: Path
    volume_id: int
    name_servers: tuple[int, ...]
    object_servers: tuple[int, ...]

    def service_dir(self, service_id: int) -> Path:
        """The directory holding one service's files."""
        return self.data_dir / SERVICES_DIR / format_id(service_id)

    @classmethod
    def exists(cls, data_dir: Path) -> bool:
        """Whether ``data_dir`` already holds a volume."""
        return (Path(data_dir) / VOLUME_FILE).exists()

    @classmethod
    def new(cls, data_dir: Path, ns_count: int = 4, os_count: int = 4, volume_number: int = 1) -> "VolumeLayout":
        """Describe a fresh volume (nothing is written until :meth:`save`)."""
        if ns_count < 1 or os_count < 1:
            raise ValueError("a volume needs at least one name server and one object server")
        return cls(
            data_dir=Path(data_dir),
            volume_id=make_service_id(ServiceType.VOLUME, volume_number),
            name_servers=tuple(make_service_id(ServiceType.NS, i) for i in range(ns_count)),
            # Numbered after the name servers, as in the seed's get-config output.
            object_servers=tuple(make_service_id(ServiceType.OS, ns_count + i) for i in range(os_count)),
        )

    def save(self) -> None:
        """Write volume.json atomically (write, fsync, rename)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "format": VOLUME_FORMAT,
            "volume_id": format_id(self.volume_id),
            "name_servers": [format_id(i) for i in self.name_servers],
            "object_servers": [format_id(i) for i in self.object_servers],
        }
        tmp = self.data_dir / (VOLUME_FILE + ".tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.data_dir / VOLUME_FILE)
        dir_fd = os.open(self.data_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    @classmethod
    def load(cls, data_dir: Path) -> "VolumeLayout":
        """Read volume.json; a damaged or unknown file raises CorruptStoreError naming it."""
        path = Path(data_dir) / VOLUME_FILE
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            if doc.get("format") != VOLUME_FORMAT:
                raise CorruptStoreError(path, f"unknown volume format {doc.get('format')!r}")
            return cls(
                data_dir=Path(data_dir),
                volume_id=parse_id(doc["volume_id"]),
                name_servers=tuple(parse_id(i) for i in doc["name_servers"]),
                object_servers=tuple(parse_id(i) for i in doc["object_servers"]),
            )
        except CorruptStoreError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CorruptStoreError(path, f"cannot read volume description: {exc}") from exc
