"""Durable state tables (ledgers, id maps, snapshots) that carry a schema version.

Each state table is declared once with its DDL per version. `ensure` creates it or migrates it in place
to the version this code expects, and records the version in `cdp_meta.state_tables`, so upgrades never
need a manual step and an older build refuses to write a table a newer build has migrated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.engine import Connection

from cdp_assets.resources.warehouse import WarehouseResource

REGISTRY = "cdp_meta.state_tables"


@dataclass(frozen=True)
class StateTable:
    name: str
    create_sql: str
    version: int = 1
    # migrations[v] upgrades a table from version v-1 to v
    migrations: dict[int, list[str]] = field(default_factory=dict)

    def ensure(self, warehouse: WarehouseResource, conn: Connection) -> None:
        warehouse.ensure_schemas(conn)
        warehouse.run(conn, f"CREATE TABLE IF NOT EXISTS {REGISTRY} "
                            "(table_name VARCHAR PRIMARY KEY, version INTEGER NOT NULL, migrated_at TIMESTAMP)")
        stored = warehouse.scalar(conn, f"SELECT version FROM {REGISTRY} WHERE table_name = :t", {"t": self.name})
        if stored is None:
            warehouse.run(conn, self.create_sql)
            warehouse.run(conn, f"INSERT INTO {REGISTRY} VALUES (:t, :v, current_timestamp)",
                          {"t": self.name, "v": self.version})
            return
        if stored > self.version:
            raise RuntimeError(
                f"{self.name} is at schema version {stored}, newer than this build of cdp_assets "
                f"understands ({self.version}); upgrade cdp_assets before running it against this warehouse"
            )
        for version in range(stored + 1, self.version + 1):
            for statement in self.migrations[version]:
                warehouse.run(conn, statement)
            warehouse.run(conn, f"UPDATE {REGISTRY} SET version = :v, migrated_at = current_timestamp "
                                "WHERE table_name = :t", {"t": self.name, "v": version})
