"""Phones read with phonenumbers during validation: reasons per row, and the same answers on every core."""

from cdp_assets.ingest import phones
from cdp_assets.ingest.phones import parse_phone, parse_phones

PAIRS = [("(415) 555-0134", "US"), ("020 7946 0958", "UNITED KINGDOM"), ("+49 30 12345678", ""),
         ("4155550134", ""), ("123", "US"), ("n/a", "US")] * 10


def test_a_national_number_is_read_in_the_contacts_country():
    assert parse_phone("020 7946 0958", "UNITED KINGDOM") == ("GB", "+442079460958", None)


def test_an_unreadable_phone_gets_a_reason_a_person_understands():
    assert [parse_phone(p, c)[2] for p, c in [("4155550134", ""), ("123", "US"), ("n/a", "US")]] == [
        "phone has no country code, and no country to read a national number in",
        "phone is not a valid number for US",
        "phone is not a phone number"]


def test_parsing_on_worker_processes_gives_the_same_rows_as_in_process(monkeypatch):
    serial = parse_phones(PAIRS).to_pylist()
    pools = []

    class CountedPool(phones.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(phones, "PARALLEL_THRESHOLD", 10)
    monkeypatch.setattr(phones, "ProcessPoolExecutor", CountedPool)

    assert parse_phones(PAIRS).to_pylist() == serial
    assert len(pools) == 1
