"""Identity resolution on hand-built records: exact components, guards, stable profile ids."""

import dagster as dg

from cdp_assets.identity.graph import identity_graph

CONTACT_COLUMNS = "contact_id VARCHAR, email VARCHAR, phone_e164 VARCHAR, ga_client_id VARCHAR"
ORDER_COLUMNS = "order_id VARCHAR, contact_id VARCHAR, email VARCHAR, phone_e164 VARCHAR"


def stage(warehouse, contacts: list[tuple], orders: list[tuple] = ()) -> None:
    with warehouse.begin() as conn:
        warehouse.ensure_schemas(conn)
        for table, columns, values in (("staging.stg_crm_contacts", CONTACT_COLUMNS, contacts),
                                       ("staging.stg_crm_orders", ORDER_COLUMNS, orders)):
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
            conn.exec_driver_sql(f"CREATE TABLE {table} ({columns})")
            for row in values:
                placeholders = ", ".join(f":v{i}" for i in range(len(row)))
                warehouse.run(conn, f"INSERT INTO {table} VALUES ({placeholders})",
                              {f"v{i}": v for i, v in enumerate(row)})


def resolve(warehouse) -> dict[str, str]:
    result = dg.materialize([identity_graph], resources={"warehouse": warehouse})
    assert result.success
    with warehouse.begin() as conn:
        return dict(warehouse.run(conn, "SELECT record_key, profile_id FROM core.record_profiles").fetchall())


def groups(assignment: dict[str, str]) -> list[list[str]]:
    by_profile: dict[str, list[str]] = {}
    for record, profile in assignment.items():
        by_profile.setdefault(profile, []).append(record)
    return sorted(sorted(members) for members in by_profile.values())


def test_a_chain_of_shared_identifiers_is_one_person(warehouse):
    stage(warehouse,
          [("C1", "ann@x.com", None, None), ("C2", "ann@x.com", "+14155550134", None),
           ("C3", None, None, "GA1.1.7.1")],
          [("O1", None, None, "+14155550134"), ("O2", "C3", "ann@x.com", None)])

    assert groups(resolve(warehouse)) == [["contact:C1", "contact:C2", "contact:C3", "order:O1", "order:O2"]]


def test_people_sharing_nothing_stay_apart(warehouse):
    stage(warehouse, [("C1", "ann@x.com", None, None), ("C2", "bob@x.com", None, None)],
          [("O1", "C2", None, None)])

    assert groups(resolve(warehouse)) == [["contact:C1"], ["contact:C2", "order:O1"]]


def test_a_blocked_value_links_nobody_and_is_audited(warehouse):
    stage(warehouse, [("C1", "test@test.com", None, None), ("C2", "test@test.com", None, None),
                      ("C3", "noreply@shop.com", None, None), ("C4", "noreply@shop.com", None, None)])

    assert groups(resolve(warehouse)) == [["contact:C1"], ["contact:C2"], ["contact:C3"], ["contact:C4"]]
    with warehouse.begin() as conn:
        audit = warehouse.run(conn, "SELECT record_key, reason FROM core.identity_audit ORDER BY record_key")
        assert [tuple(r) for r in audit] == [("contact:C1", "blocked value"), ("contact:C2", "blocked value"),
                                              ("contact:C3", "blocked pattern"), ("contact:C4", "blocked pattern")]


def test_a_value_shared_by_more_records_than_the_cap_links_nobody(warehouse):
    shared = [(f"C{i:03d}", None, "+14155550134", None) for i in range(101)]
    pair = [("D1", None, "+14155550199", None), ("D2", None, "+14155550199", None)]
    stage(warehouse, shared + pair)

    assignment = resolve(warehouse)

    assert len(set(assignment.values())) == 102
    assert assignment["contact:D1"] == assignment["contact:D2"]


def test_profile_ids_are_the_same_on_a_second_run(warehouse):
    stage(warehouse, [("C1", "ann@x.com", None, None), ("C2", "ann@x.com", None, None),
                      ("C3", "bob@x.com", None, None)])

    assert resolve(warehouse) == resolve(warehouse)


def test_a_new_record_joins_an_existing_profile_keeping_its_id(warehouse):
    stage(warehouse, [("C5", "ann@x.com", None, None)])
    before = resolve(warehouse)["contact:C5"]
    stage(warehouse, [("C5", "ann@x.com", None, None), ("C1", "ann@x.com", None, None)])

    after = resolve(warehouse)

    assert after == {"contact:C5": before, "contact:C1": before}


def test_a_merge_keeps_the_id_held_by_more_records(warehouse):
    stage(warehouse, [("C1", "ann@x.com", None, None), ("C2", "ann@x.com", None, None),
                      ("C3", None, "+14155550134", None)])
    first = resolve(warehouse)
    stage(warehouse, [("C1", "ann@x.com", None, None), ("C2", "ann@x.com", None, None),
                      ("C3", None, "+14155550134", None), ("C4", "ann@x.com", "+14155550134", None)])

    merged = resolve(warehouse)

    assert set(merged.values()) == {first["contact:C1"]}


def test_after_a_split_each_part_has_its_own_id(warehouse):
    stage(warehouse, [("C1", "ann@x.com", None, None), ("C2", "ann@x.com", "+14155550134", None),
                      ("C3", None, "+14155550134", None)])
    joined = resolve(warehouse)
    stage(warehouse, [("C1", "ann@x.com", None, None), ("C2", "ann@x.com", None, None),
                      ("C3", None, "+14155550134", None)])

    split = resolve(warehouse)

    assert split["contact:C1"] == split["contact:C2"] == joined["contact:C1"]
    assert split["contact:C3"] != joined["contact:C1"]


def test_profile_identifiers_list_every_linking_identifier(warehouse):
    stage(warehouse, [("C1", "ann@x.com", "+14155550134", "GA1.1.7.1")], [("O1", "C1", "test@test.com", None)])

    resolve(warehouse)

    with warehouse.begin() as conn:
        rows = warehouse.run(conn, "SELECT id_type, id_value FROM core.profile_identifiers ORDER BY id_type")
        assert [tuple(r) for r in rows] == [("contact_id", "C1"), ("email", "ann@x.com"),
                                            ("ga_client_id", "GA1.1.7.1"), ("phone", "+14155550134")]
