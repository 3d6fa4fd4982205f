"""Phone numbers are read to E.164 in their country, or refused with the reason."""

import pytest

from cdp_assets.privacy.pii import PhoneError, to_e164


def test_national_number_is_read_in_its_country():
    assert to_e164("020 7183 8750", "GB") == "+442071838750"


def test_national_number_without_country_is_refused_with_reason():
    with pytest.raises(PhoneError, match="no country code"):
        to_e164("(650) 555-1212")


def test_invalid_number_is_refused_with_reason():
    with pytest.raises(PhoneError, match="not a valid number for US"):
        to_e164("212 123 4567", "US")
