"""Identity workloads as in `cdp_landscape.md` section 1.7, and the identity settings that stitch them.

Each person gets 1-5 records from `ga4` (40 %), `crm_csv`, `hubspot` or `salesforce`. CRM rows carry the
person's email (70 %), phone (40 %), user id (30 %) and CRM id (80 %); GA4 rows a user id (50 %) and one
of the person's 1-3 anonymous ids. With probability `junk_rate` a CRM email or phone is replaced by a
shared junk value. Ground truth is `cluster`. Deterministic for a seed; the Splink oracle test and the
benchmark use the same rows.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime

import pyarrow as pa

from cdp_assets.identity.config import IdentifierType, IdentityConfig, Source

JUNK_EMAILS = ("test@test.com", "noreply@example.com", "none@none.com")
JUNK_PHONES = ("+10000000000", "+11111111111")
IDENTIFIERS = ("email", "phone", "user_id", "anonymous_id", "crm_id")
LOADED = datetime(2026, 1, 1)


def generate(people: int, seed: int = 42, junk_rate: float = 0.002, first_id: int = 0,
             loaded_at: datetime = LOADED) -> pa.Table:
    """Records of `people` persons (numbered from `first_id`), one row each, with the true `cluster`."""
    rnd = random.Random(seed)
    columns: dict[str, list] = {name: [] for name in ("unique_id", "source", "cluster", *IDENTIFIERS)}
    unique_id = first_id * 10
    for person in range(first_id, first_id + people):
        email, phone = f"user{person}@mail{person % 97}.example", f"+1{2000000000 + person * 7 % 7999999999}"
        anonymous = [f"{rnd.getrandbits(32)}.{1700000000 + person}" for _ in range(rnd.choice([1, 1, 1, 2, 2, 3]))]
        for _ in range(rnd.choice([1, 2, 2, 3, 3, 4, 5])):
            source = rnd.choice(["ga4", "ga4", "crm_csv", "hubspot", "salesforce"])
            if source == "ga4":
                values = (None, None, f"u{person}" if rnd.random() < .5 else None, rnd.choice(anonymous), None)
            else:
                e = email if rnd.random() < .7 else None
                p = phone if rnd.random() < .4 else None
                if rnd.random() < junk_rate:
                    e = rnd.choice(JUNK_EMAILS)
                if rnd.random() < junk_rate:
                    p = rnd.choice(JUNK_PHONES)
                values = (e, p, f"u{person}" if rnd.random() < .3 else None, None,
                          f"c{person}" if rnd.random() < .8 else None)
            columns["unique_id"].append(unique_id)
            columns["source"].append(source)
            columns["cluster"].append(person)
            for name, value in zip(IDENTIFIERS, values, strict=True):
                columns[name].append(value)
            unique_id += 1
    table = pa.table(columns)
    return table.append_column("loaded_at", pa.array([loaded_at] * table.num_rows, pa.timestamp("us")))


def identity_config(table: str = "bench.records", guards: bool = True, max_records: int = 50) -> IdentityConfig:
    """The workload's records stitched on its five identifiers; guards as section 1.7's degree guard (50)."""
    types = tuple(IdentifierType(name, rank, "lowercase" if name == "email" else "trim",
                                 max_records if guards else None, None) for rank, name in enumerate(
        ("user_id", "crm_id", "email", "phone", "anonymous_id")))
    source = Source("record", table, "unique_id", {name: name for name in IDENTIFIERS}, None, "loaded_at", None)
    config = IdentityConfig((source,), types, (), (), max_profile_records=1000)
    if not guards:
        return config
    limits = {"user_id": 1, "crm_id": 1, "email": 5, "phone": 5, "anonymous_id": 10}
    return replace(config, types=tuple(replace(t, max_per_profile=limits[t.name]) for t in types),
                   blocked_exact=("", "null", "unknown", "anonymous", "-1"), blocked_patterns=("^[0-]*$",))


def pair_counts(labels: list[int], truth: list[int]) -> tuple[int, int, int]:
    """(true positive, predicted, true) record pairs from the contingency sums of two labelings."""
    def pairs(counts) -> int:
        return sum(n * (n - 1) // 2 for n in counts)

    joint: dict[tuple[int, int], int] = {}
    predicted: dict[int, int] = {}
    actual: dict[int, int] = {}
    for label, cluster in zip(labels, truth, strict=True):
        joint[label, cluster] = joint.get((label, cluster), 0) + 1
        predicted[label] = predicted.get(label, 0) + 1
        actual[cluster] = actual.get(cluster, 0) + 1
    return pairs(joint.values()), pairs(predicted.values()), pairs(actual.values())
