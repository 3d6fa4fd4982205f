"""Deterministic, realistically messy sample data: CRM contact and order extracts, GA4 report rows.

The same seed and arguments always give byte-identical files. People are streamed to disk, so any scale
from 100 to 10M people runs in bounded memory. The mess is the kind real exports have: mixed-case and
padded emails, phones in national formats, the same person under two contact ids, exact duplicate rows,
blank fields, junk values (test@test.com), people who never consented, and a few rows that must be
quarantined (no contact id, an unparseable timestamp, a non-numeric or negative value, an unknown currency).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

CONTACT_COLUMNS = [
    "contact_id", "email", "phone", "first_name", "last_name", "city", "state", "postal_code", "country",
    "ga_client_id", "consent_marketing", "updated_at", "deleted",
]
ORDER_COLUMNS = [
    "order_id", "contact_id", "email", "phone", "order_ts", "value", "currency", "status", "action_source",
    "client_ip", "user_agent", "fbc", "fbp", "gclid", "ttclid", "event_source_url", "product_ids",
]
PRIVACY_SAMPLE = (3, 5, 7, 11)  # people named in the sample's suppression list and deletion requests
GA4_TRAFFIC_DIMENSIONS = [
    "date", "sessionSource", "sessionMedium", "sessionCampaignName", "sessionDefaultChannelGroup",
    "deviceCategory", "country",
]
GA4_TRAFFIC_METRICS = ["sessions", "totalUsers", "engagedSessions", "keyEvents", "purchaseRevenue"]
# GA4 reports revenue in the property's currency (USD here), converted at roughly these rates.
GA4_USD_PER_UNIT = {"USD": 1.0, "EUR": 1.08, "GBP": 1.27}
GA4_TRACKED_SHARE = 0.85  # ad blockers and declined cookie banners hide the rest of the web orders from GA4

FIRST_NAMES = ["Mary", "John", "Jane", "Valéry", "José", "Zoë", "Mary Ann", "Liam", "Olivia", "Noah",
               "Emma", "Ava", "Lucas", "Chloé", "Hannah", "Jürgen", "Amélie", "Ethan", "Sofia", "Mateo"]
LAST_NAMES = ["Smith", "O'Brien-Smith", "Doe", "García", "Müller", "Dubois", "Johnson", "Brown", "Nguyen",
              "Martin", "Schmidt", "Lefèvre", "Williams", "Jones", "Taylor", "Kowalski", "Rossi", "Kim"]
EMAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.com", "proton.me", "icloud.com"]
JUNK_EMAILS = ["test@test.com", "noreply@example.com", "none@none.com", "a@a.com"]
JUNK_PHONES = ["0000000000", "1111111111", "n/a", "123"]


@dataclass(frozen=True)
class Place:
    country_forms: tuple[str, ...]
    city: str
    state_forms: tuple[str, ...]
    postal_codes: tuple[str, ...]
    currency: str
    weight: int


PLACES = [
    Place(("US", "United States", "usa", "us"), "South San Francisco", ("CA", "California"),
          ("94080", "94080-1234"), "USD", 20),
    Place(("US", "United States"), "New York", ("NY", " New York "), ("10001", "10016"), "USD", 20),
    Place(("US",), "St. Louis", ("MO", "Missouri"), ("63101",), "USD", 15),
    Place(("US", "USA"), "Austin", ("TX", "Texas"), ("78701", "78702-5501"), "USD", 15),
    Place(("GB", "UK", "United Kingdom"), "London", ("",), ("SW1A 1AA", "EC1A 1BB"), "GBP", 12),
    Place(("FR", "France"), "Paris", ("",), ("75001", "75008"), "EUR", 8),
    Place(("DE", "Germany"), "Berlin", ("",), ("10115", "10117"), "EUR", 10),
]
US_AREA_CODES = ["212", "312", "415", "617", "646", "702", "713", "305", "206", "303"]
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.0 Safari/605.1.15",
]
GA4_CHANNELS = [
    ("google", "cpc", "brand_search", "Paid Search"),
    ("google", "organic", "(organic)", "Organic Search"),
    ("facebook", "paid_social", "autumn_sale", "Paid Social"),
    ("tiktok", "paid_social", "creator_launch", "Paid Social"),
    ("newsletter", "email", "weekly_digest", "Email"),
    ("(direct)", "(none)", "(direct)", "Direct"),
    ("pinterest", "paid_social", "home_ideas", "Paid Social"),
    ("bing", "organic", "(organic)", "Organic Search"),
]


class _Person:
    """Draws one person's identity and the rows their CRM holds, from a shared seeded RNG."""

    def __init__(self, rnd: random.Random, index: int) -> None:
        self.index = index
        self.place = rnd.choices(PLACES, weights=[p.weight for p in PLACES])[0]
        self.first = rnd.choice(FIRST_NAMES)
        self.last = rnd.choice(LAST_NAMES)
        local = f"{self.first}.{self.last}".lower().replace(" ", "").replace("'", "")
        self.email = f"{local}{index}@{rnd.choice(EMAIL_DOMAINS)}"
        self.phone_digits = _national_digits(rnd, self.place)
        self.ga_client_id = f"GA1.1.{rnd.getrandbits(31)}.{1700000000 + index % 10_000_000}"


def _national_digits(rnd: random.Random, place: Place) -> str:
    country = place.country_forms[0]
    if country == "US":
        return rnd.choice(US_AREA_CODES) + str(rnd.randint(201, 989)) + f"{rnd.randint(0, 9999):04d}"
    if country == "GB":
        return "207" + f"{rnd.randint(1000000, 9999999)}"
    if country == "FR":
        return "1" + f"{rnd.randint(10000000, 99999999)}"
    return "30" + f"{rnd.randint(1000000, 99999999)}"


def _format_phone(rnd: random.Random, digits: str, country: str) -> str:
    """One of the many ways a CRM stores the same phone number."""
    if country == "US":
        a, b, c = digits[:3], digits[3:6], digits[6:]
        return rnd.choice([f"({a}) {b}-{c}", f"{a}-{b}-{c}", f"+1 {a} {b} {c}", digits, f"1-{a}-{b}-{c}",
                           f"{a}.{b}.{c}"])
    prefix = {"GB": "44", "FR": "33", "DE": "49"}[country]
    spaced = " ".join([digits[:2], digits[2:6], digits[6:]])
    return rnd.choice([f"0{spaced}", f"+{prefix} {spaced}", f"00{prefix} {spaced}", f"+{prefix}{digits}"])


def _international_phone(digits: str, country: str) -> str:
    """Checkout forms store an international number: orders carry no country to read a national one in."""
    prefix = {"US": "1", "GB": "44", "FR": "33", "DE": "49"}[country]
    return f"+{prefix} {digits[:3]} {digits[3:6]} {digits[6:]}"


def _mess_email(rnd: random.Random, email: str) -> str:
    roll = rnd.random()
    if roll < 0.25:
        return email.upper() if rnd.random() < 0.3 else email.capitalize()
    if roll < 0.35:
        return f"  {email} "
    return email


def _timestamp(rnd: random.Random, moment: datetime) -> str:
    """ISO with Z, ISO with a space, or a US-style local form: all seen in real exports."""
    style = rnd.random()
    if style < 0.6:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style < 0.9:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%m/%d/%Y %H:%M")


def _consent(rnd: random.Random) -> str:
    granted = rnd.random() < 0.7
    blank = rnd.random() < 0.12
    if blank:
        return ""
    return rnd.choice(["true", "yes", "1", "TRUE"] if granted else ["false", "no", "0"])


def _contact_row(rnd: random.Random, person: _Person, contact_id: str, updated: datetime) -> list[str]:
    country = person.place.country_forms[0]
    email = _mess_email(rnd, person.email) if rnd.random() > 0.08 else ""
    phone = _format_phone(rnd, person.phone_digits, country) if rnd.random() < 0.75 else ""
    if rnd.random() < 0.006:
        email = rnd.choice(JUNK_EMAILS)
    if rnd.random() < 0.004:
        phone = rnd.choice(JUNK_PHONES)
    first = person.first.upper() if rnd.random() < 0.1 else person.first
    last = f" {person.last}" if rnd.random() < 0.05 else person.last
    return [
        contact_id, email, phone, first if rnd.random() > 0.05 else "", last,
        person.place.city if rnd.random() > 0.05 else "",
        rnd.choice(person.place.state_forms),
        rnd.choice(person.place.postal_codes) if rnd.random() > 0.05 else "",
        rnd.choice(person.place.country_forms) if rnd.random() > 0.03 else "",
        person.ga_client_id if rnd.random() < 0.6 else "",
        _consent(rnd), _timestamp(rnd, updated),
        "true" if rnd.random() < 0.003 else "",
    ]


def _order_row(rnd: random.Random, person: _Person, order_id: str, contact_id: str, when: datetime) -> list[str]:
    website = rnd.random() < 0.85
    action_source = "website" if website else rnd.choice(["physical_store", "phone_call"])
    guest = rnd.random() < 0.15
    ms = int(when.timestamp() * 1000) - rnd.randint(0, 86_400_000)
    value = f"{rnd.uniform(5, 400):.2f}"
    currency = person.place.currency if rnd.random() > 0.1 else person.place.currency.lower()
    status = rnd.choices(["completed", "paid", "fulfilled", "cancelled", "refunded"], [80, 5, 5, 5, 5])[0]
    return [
        order_id,
        "" if guest else contact_id,
        _mess_email(rnd, person.email) if guest or rnd.random() < 0.5 else "",
        (_international_phone(person.phone_digits, person.place.country_forms[0])
         if guest and rnd.random() < 0.4 else ""),
        _timestamp(rnd, when), value, currency, status, action_source,
        f"{rnd.randint(24, 99)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}" if website else "",
        rnd.choice(USER_AGENTS) if website else "",
        f"fb.1.{ms}.IwAR{rnd.getrandbits(64):x}" if website and rnd.random() < 0.3 else "",
        f"fb.1.{ms}.{rnd.getrandbits(30)}" if website and rnd.random() < 0.6 else "",
        f"Cj0KCQ{rnd.getrandbits(80):x}" if website and rnd.random() < 0.25 else "",
        f"E.C.P.{rnd.getrandbits(64):x}" if website and rnd.random() < 0.1 else "",
        "https://shop.example.com/checkout/thanks" if website else "",
        "|".join(f"SKU-{rnd.randint(100, 999)}" for _ in range(rnd.randint(1, 3))),
    ]


def _ga4_transaction(rnd: random.Random, order: list[str], when: datetime) -> dict[str, str]:
    """The row GA4's transactions report holds for a tracked web order: its session's last touch."""
    if order[13]:
        touch = GA4_CHANNELS[0]
    elif order[11]:
        touch = GA4_CHANNELS[2]
    elif order[14]:
        touch = GA4_CHANNELS[3]
    else:
        touch = rnd.choices(GA4_CHANNELS, weights=[0, 30, 0, 0, 25, 35, 5, 5])[0]
    source, medium, campaign, _ = touch
    revenue = float(order[5]) * GA4_USD_PER_UNIT[order[6].upper()]
    return {"date": when.strftime("%Y%m%d"), "transactionId": order[0], "sessionSource": source,
            "sessionMedium": medium, "sessionCampaignName": campaign, "purchaseRevenue": f"{revenue:.2f}"}


def _corrupt_contact(rnd: random.Random, row: list[str]) -> list[str]:
    """A row real exports contain now and then, which validation must quarantine."""
    broken = list(row)
    fault = rnd.choice(["no_id", "bad_ts", "bad_email"])
    if fault == "no_id":
        broken[0] = ""
    elif fault == "bad_ts":
        broken[11] = "last tuesday"
    else:
        broken[1] = broken[1].strip().split("@")[0] + "@" if broken[1] else "not-an-email"
    return broken


def _corrupt_order(rnd: random.Random, row: list[str]) -> list[str]:
    broken = list(row)
    fault = rnd.choice(["no_id", "bad_value", "negative", "currency", "bad_ts"])
    if fault == "no_id":
        broken[0] = ""
    elif fault == "bad_value":
        broken[5] = "twelve dollars"
    elif fault == "negative":
        broken[5] = "-" + broken[5]
    elif fault == "currency":
        broken[6] = "XYZ"
    else:
        broken[4] = "2024-13-45 99:99"
    return broken


def write_crm_extracts(
    landing_dir: Path, people: int, end_date: date, days: int = 30, seed: int = 42,
    order_weights: tuple[int, int, int, int] = (35, 40, 17, 8),
) -> dict[str, int]:
    """Write `crm/contacts.csv` and `crm/orders.csv` for `people` people, orders over `days` days to end_date,
    plus `crm/deletions.csv` and `crm/suppressions.csv` naming a few of them, and `ga4/transactions.jsonl`:
    the GA4 transactions report rows of the web orders GA4 saw. `order_weights` are the relative odds of a
    person having 0, 1, 2 or 3 orders."""
    if not 1 <= people <= 10_000_000:
        raise ValueError(f"people must be between 1 and 10,000,000, not {people}")
    rnd = random.Random(seed)
    crm = landing_dir / "crm"
    crm.mkdir(parents=True, exist_ok=True)
    start = datetime.combine(end_date - timedelta(days=days - 1), datetime.min.time(), tzinfo=UTC)
    span = days * 86_400
    counts = {"people": people, "contacts": 0, "orders": 0, "ga4_transactions": 0}
    kept: dict[int, _Person] = {}
    # GA4 draws from its own generator, so the CRM files are the same with or without it.
    ga4_rnd = random.Random(f"{seed}:ga4")
    (landing_dir / "ga4").mkdir(parents=True, exist_ok=True)
    with (crm / "contacts.csv").open("w", newline="", encoding="utf-8") as cf, \
            (crm / "orders.csv").open("w", newline="", encoding="utf-8") as of, \
            (landing_dir / "ga4" / "transactions.jsonl").open("w", encoding="utf-8") as tf:
        contacts, orders = csv.writer(cf), csv.writer(of)
        contacts.writerow(CONTACT_COLUMNS)
        orders.writerow(ORDER_COLUMNS)
        for index in range(people):
            person = _Person(rnd, index)
            if index in PRIVACY_SAMPLE:
                kept[index] = person
            contact_id = f"C{index:08d}"
            updated = start - timedelta(seconds=rnd.randint(0, 365 * 86_400))
            rows = [_contact_row(rnd, person, contact_id, updated)]
            if rnd.random() < 0.12:  # the same person entered again under another id
                rows.append(_contact_row(rnd, person, f"C{index:08d}D", updated + timedelta(days=3)))
            if rnd.random() < 0.005:
                rows.append(list(rows[0]))
            if rnd.random() < 0.004:
                rows[0] = _corrupt_contact(rnd, rows[0])
            contacts.writerows(rows)
            counts["contacts"] += len(rows)
            for n in range(rnd.choices([0, 1, 2, 3], order_weights)[0]):
                when = start + timedelta(seconds=rnd.randint(0, span - 1))
                row = _order_row(rnd, person, f"O{index:08d}{n}", contact_id, when)
                if rnd.random() < 0.004:
                    row = _corrupt_order(rnd, row)
                elif row[8] == "website" and ga4_rnd.random() < GA4_TRACKED_SHARE:
                    tf.write(json.dumps(_ga4_transaction(ga4_rnd, row, when)) + "\n")
                    counts["ga4_transactions"] += 1
                orders.writerow(row)
                counts["orders"] += 1
                if rnd.random() < 0.005:
                    orders.writerow(row)
                    counts["orders"] += 1
    _write_privacy_lists(crm, kept)
    return counts


def _write_privacy_lists(crm: Path, people: dict[int, _Person]) -> None:
    """A deletion request and a suppression list naming a few of the sample's people, as users drop them."""
    with (crm / "deletions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "phone", "contact_id"])
        if 7 in people:
            writer.writerow([people[7].email.upper(), "", ""])
        if 11 in people:
            writer.writerow(["", "", "C00000011"])
        writer.writerow(["not-an-email", "", ""])
    with (crm / "suppressions.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["email", "phone"])
        for index in (3, 5):
            if index in people:
                person = people[index]
                writer.writerow([person.email, _international_phone(person.phone_digits,
                                                                     person.place.country_forms[0])])


def ga4_traffic_rows(start: date, end: date, seed: int = 42) -> Iterator[dict[str, str]]:
    """GA4 Data API rows for the daily traffic report, one per channel/device/country and day.

    Each day is seeded on its own, so a day's rows are the same whatever range asks for them.
    Values are strings, as the API returns them; `date` is YYYYMMDD, GA4's own format.
    """
    day = start
    while day <= end:
        rnd = random.Random(f"{seed}:{day.isoformat()}")
        for source, medium, campaign, group in GA4_CHANNELS:
            for device in ("desktop", "mobile", "tablet"):
                for country in ("United States", "United Kingdom", "France", "Germany"):
                    sessions = rnd.randint(0, 400)
                    users = rnd.randint(int(sessions * 0.6), sessions) if sessions else 0
                    engaged = rnd.randint(0, sessions)
                    key_events = rnd.randint(0, max(engaged // 10, 0))
                    yield {
                        "date": day.strftime("%Y%m%d"), "sessionSource": source, "sessionMedium": medium,
                        "sessionCampaignName": campaign, "sessionDefaultChannelGroup": group,
                        "deviceCategory": device, "country": country, "sessions": str(sessions),
                        "totalUsers": str(users), "engagedSessions": str(engaged),
                        "keyEvents": str(key_events),
                        "purchaseRevenue": f"{key_events * rnd.uniform(20, 120):.2f}",
                    }
        day += timedelta(days=1)


def write_ga4_sample(landing_dir: Path, start: date, end: date, seed: int = 42) -> int:
    """Write GA4-shaped daily traffic rows to `ga4/daily_traffic.jsonl`; returns the row count.

    The transactions report's rows come with the orders they belong to, from `write_crm_extracts`."""
    target = landing_dir / "ga4"
    target.mkdir(parents=True, exist_ok=True)
    rows = 0
    with (target / "daily_traffic.jsonl").open("w", encoding="utf-8") as out:
        for row in ga4_traffic_rows(start, end, seed):
            out.write(json.dumps(row) + "\n")
            rows += 1
    return rows
