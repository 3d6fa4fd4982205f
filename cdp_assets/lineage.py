"""The asset graph as the definitions are assembled: who reads whom, and the blocking gates on the way.

Egress consults the latest result of every blocking gate upstream of it, and only those: conversions do
not wait on a gate of GA4's marts, so a GA4 problem never holds back what needs nothing from GA4.
"""

from collections.abc import Iterable, Mapping

import dagster as dg

Parents = Mapping[dg.AssetKey, frozenset[dg.AssetKey]]


def parent_map(assets: Iterable[dg.AssetsDefinition], extra: Mapping[dg.AssetKey, Iterable[dg.AssetKey]] = ()
               ) -> dict[dg.AssetKey, frozenset[dg.AssetKey]]:
    """Each asset key and the keys it reads, from built assets and from `extra` (assets not built yet)."""
    parents = {key: frozenset(deps) for a in assets for key, deps in a.asset_deps.items()}
    parents.update({key: frozenset(deps) for key, deps in dict(extra).items()})
    return parents


def ancestors(parents: Parents, keys: Iterable[dg.AssetKey]) -> set[dg.AssetKey]:
    """Every asset `keys` read, directly or through others."""
    found: set[dg.AssetKey] = set()
    pending = [p for key in keys for p in parents.get(key, ())]
    while pending:
        key = pending.pop()
        if key not in found:
            found.add(key)
            pending.extend(parents.get(key, ()))
    return found


def gates_on(gates: Iterable[dg.AssetCheckKey], keys: Iterable[dg.AssetKey]) -> list[dg.AssetCheckKey]:
    """The gates attached to any of `keys`, in a stable order."""
    wanted = set(keys)
    return sorted((g for g in gates if g.asset_key in wanted), key=lambda g: g.to_user_string())
