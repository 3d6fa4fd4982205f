"""Per-platform normalization and hashing reproduce every vector of destinations.md section 9."""

import pytest

from cdp_assets.privacy.hashing import normalize, prepare

# (row, field, raw input, normalized form, sha256) from destinations.md section 9.
META_VECTORS = [
    (1, "em", "John_Smith@gmail.com", "john_smith@gmail.com",
     "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
    (2, "em", "  Jane.Doe@Gmail.COM ", "jane.doe@gmail.com",
     "831f6494ad6be4fcb3a724c3d5fef22d3ceffa3c62ef3a7984e45a0ea177f982"),
    (3, "em", "jane.doe+promo@gmail.com", "jane.doe+promo@gmail.com",
     "5f0d1df1fc49e30424381b57b1d4c73e067772a4267dde043a19b026935602c8"),
    (5, "ph", "+1 (650) 555-1212", "16505551212",
     "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    (6, "ph", "1-650-555-1212", "16505551212",
     "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    (7, "ph", "+44 20 7183 8750", "442071838750",
     "8d5f937f3a5590634cbe975951a6aa1543170671ce6e73cce4062f4e8c288417"),
    (8, "ph", "0044 20 7183 8750", "442071838750",
     "8d5f937f3a5590634cbe975951a6aa1543170671ce6e73cce4062f4e8c288417"),
    (10, "ph", "+33 1 42 68 53 00", "33142685300",
     "a7ee5e5f621eee53700e8c391504973a6477203ada0a7ab40782713bf4ee6f43"),
    (11, "ph", "(650) 555.1212", "6505551212",
     "5eed6d50c9a69704a9a72b4af7d14d04d33e4460039e101b525f5d4f8a106a38"),
    (12, "fn", "Mary", "mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
    (13, "fn", "Valéry", "valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
    (14, "fn", "정", "정", "8fa8cd9c440be61d0151429310034083132b35975c4bea67fdd74158eb51db14"),
    (15, "fn", "  JOHN ", "john", "96d9632f363564cc3032521409cf22a852f2032eec099ed5967c0d000cec607a"),
    (16, "ln", "O'Brien-Smith", "obriensmith", "16765783f9c8c8a3accf27f1abb877688cb5904c21a4a7afb5f125bcfcb246ba"),
    (17, "fn", "Mary Ann", "maryann", "16b3f07f0ec2f9dd127b71dc2e6c791b7d93116a1c3bc99d057eaa7a8a077e73"),
    (18, "ct", "South San Francisco", "southsanfrancisco",
     "e6a4de398edea64e0e057033d684bebe76c975d00b1c919471703d318fb05d7f"),
    (19, "ct", "St. Louis", "stlouis", "8ba24bdf99947996f3000259be455de791b06fcc0e802ce05031030df1ee8ea3"),
    (20, "ct", "São Paulo", "sopaulo", "4a287883aa51936209f313e4c62d9b38b41b7df896dfdff33b98dc1a86607668"),
    (21, "st", "CA", "ca", "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126"),
    (22, "st", "California", "ca", "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126"),
    (23, "st", " New York ", "ny", "1b06e2003f8420d6fa42badd8f77ec0f706b976b7a48b13c567dc5a559681683"),
    (24, "st", "Ontario", "on", "b8d31e852725afb1e26d53bab6095b2bff1749c9275be13ed1c05a56ed31ec09"),
    (25, "zp", "94025-1234", "94025", "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7"),
    (26, "zp", " 94025 ", "94025", "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7"),
    (27, "zp", "SW1A 1AA", "sw1a1aa", "830e1d4b9838bab1f5c2acdb23e0b502ff13a9832c4632e8d67a1d43d3b7f614"),
    (28, "country", "US", "us", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
    (29, "country", "United States", "us", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
    (30, "country", "United Kingdom", "gb", "0b407281768f0e833afef47ed464b6571d01ca4d53c12ce5c51d1462f4ad6677"),
    (31, "country", "GB", "gb", "0b407281768f0e833afef47ed464b6571d01ca4d53c12ce5c51d1462f4ad6677"),
    (32, "ge", "Female", "f", "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111"),
    (33, "ge", "M", "m", "62c66a7a5dd70c3146618063c344e531e6d4b59e379808443ce962b3abd63c5a"),
    (34, "db", "1997-02-16", "19970216", "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    (35, "db", "02/16/1997", "19970216", "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    (36, "db", "16.02.1997", "19970216", "01acdbf6ec7b4f478a225f1a246e5d6767eeab1a7ffa17f025265b5b94f40f0c"),
    (37, "external_id", " User-123 ", "user-123", "fcdec6df4d44dbc637c7c5b58efface52a7f8a88535423430255be0bb89bedd8"),
]


@pytest.mark.parametrize(("row", "field", "raw", "normalized", "digest"), META_VECTORS, ids=lambda v: str(v))
def test_meta_vector_normalizes_and_hashes_as_documented(row, field, raw, normalized, digest):
    assert normalize("meta", field, raw) == normalized
    assert prepare("meta", field, raw) == digest


# Meta's rule for a state outside the US (destinations.md 8.1: "lowercase, no punctuation, no special characters,
# no white space"): sent as written, not dropped and not turned into an ISO code; a Canadian province keeps its
# two-letter code (vector 24), named with or without its accent.
META_STATE_VECTORS = [
    ("NSW", "nsw", "d3ef3c33db1fb92a87bc9b67e495a01e181a1c47c22e3aa32158e4500eeab448"),
    ("New South Wales", "newsouthwales", "96236847af45f93f09c6ba2627cdb8da07e395f009d0e42f782cffb119cc24da"),
    ("Île-de-France", "ledefrance", "0ddd2abe8eadd5bcd9f73a036ce35f07ed7fccdf2281125e3daa6ab5e57477bc"),
    ("Québec", "qc", "997164d13810adf6cab52541447d083c4472e5ca6052cc6ddd9501318ac5730c"),
]


@pytest.mark.parametrize(("raw", "normalized", "digest"), META_STATE_VECTORS, ids=lambda v: str(v))
def test_meta_sends_a_state_outside_the_us_lowercase_without_punctuation_or_spaces(raw, normalized, digest):
    assert normalize("meta", "st", raw) == normalized
    assert prepare("meta", "st", raw) == digest


def test_pinterest_still_takes_only_a_two_letter_state_code():
    assert (normalize("pinterest", "st", "NSW"), normalize("pinterest", "st", "California")) == (None, "ca")


def test_gmail_address_keeps_its_dots_for_meta_unlike_google():
    # Vector 4 is what Google's rule makes of vector 2; Meta must not produce it.
    google_form = "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"
    assert prepare("meta", "em", "  Jane.Doe@Gmail.COM ") != google_form
    assert prepare("google", "em", "  Jane.Doe@Gmail.COM ") == google_form


def test_french_trunk_zero_is_dropped_by_parsing_not_kept_by_digit_stripping():
    # Vector 9 is the trap: stripping digits from "+33 (0)1 ..." keeps the trunk 0.
    assert normalize("meta", "ph", "+33 (0)1 42 68 53 00") == "33142685300"


def test_uppercase_sha256_is_lowercased_and_not_hashed_again():
    digest = "62A14E44F765419D10FEA99367361A727C12365E2520F32218D505ED9AA0F62F"
    assert prepare("meta", "em", digest) == digest.lower()


def test_nfd_name_hashes_like_its_nfc_form():
    assert prepare("meta", "fn", "Vale\u0301ry") == "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"


def test_uk_alias_maps_to_gb():
    assert normalize("meta", "country", "UK") == "gb"


def test_malformed_email_is_not_sent():
    assert prepare("meta", "em", "john.smith@") is None


def test_blank_value_is_not_sent():
    assert prepare("meta", "fn", "   ") is None


# (platform, field, raw input, what is sent) from the section 9 cross-platform contrast table, plus
# googlemail.com (Gmail's other domain) and Meta's refusal of a gender other than m or f.
CONTRAST_VECTORS = [
    ("google", "ph", "+1 (650) 555-1212", "1e231c66011e7a2d867a9cfae267a6aff103cf4913640b6e71a99850fc0ffbc8"),
    ("meta", "ph", "+1 (650) 555-1212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ("pinterest", "ph", "+1 (650) 555-1212", "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
    ("tiktok", "ph", "+44 20 7183 8750", "e631c2534428c6c9b48c2167604a8983046085e43a2c00ed748733c544c0bb4d"),
    ("google", "em", "jane.doe@gmail.com", "d6117306485ed0e50afab3ac871e98f81699151f30281527d63ff5f233656c69"),
    ("google", "em", "jane.doe@googlemail.com", "338abf9ef1c8793cadc7bcf51ed595338eb727ed9e06ce3d91d566d60b975937"),
    ("google", "em", "jane.doe@example.com", "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"),
    ("google", "fn", "Jane", "81f8f6dde88365f3928796ec7aa53f72820b06db8664f5fe76a7eb13e24546a2"),
    ("google", "ln", "Doe", "799ef92a11af918e3fb741df42934f3b568ed2d93ac1df74f1b8d41a27932a6f"),
    ("pinterest", "ge", "n", "1b16b1df538ba12dc3f97edbb85caa7050d46c148134290feba80f8236c83db9"),
    ("meta", "ge", "n", None),
]


@pytest.mark.parametrize(("platform", "field", "raw", "sent"), CONTRAST_VECTORS, ids=lambda v: str(v))
def test_platforms_hash_the_pre_image_their_rules_require(platform, field, raw, sent):
    assert prepare(platform, field, raw) == sent


def test_google_sends_country_and_postal_code_in_clear():
    assert prepare("google", "country", "United States") == "US"
    assert prepare("google", "zp", " 94025 ") == "94025"


def test_tiktok_sends_city_state_and_country_unhashed_as_lowercase_codes():
    assert [prepare("tiktok", f, v) for f, v in (("ct", "St. Louis"), ("st", "Missouri"), ("country", "USA"))] == \
        ["stlouis", "mo", "us"]


def test_pinterest_omits_a_postcode_that_is_not_digits():
    assert prepare("pinterest", "zp", "SW1A 1AA") is None
    assert prepare("pinterest", "zp", "94025-1234") == \
        "b9a9cf3cd3723a2e91b7c23ecf68456e872b6e5d86e5cab7f3d45a7302da32c7"


def test_an_e164_phone_from_the_warehouse_is_taken_as_written():
    assert normalize("google", "ph", "+16505551212") == "+16505551212"
