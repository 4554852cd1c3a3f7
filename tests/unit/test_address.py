"""runner/net/address.py: host names as people write them.

Python's IDNA codec says what it found wrong only in words; address.py reads them from the codec's own
error (the wrapper's __cause__, or from Python 3.13 the UnicodeEncodeError's reason), never by cutting up the
wrapper's text. These tests pin those words against the installed Python, so a change there fails here.
"""

from __future__ import annotations

import pytest

from runner.net.address import check_host

LONG_ONCE_ENCODED = "".join(chr(0x4E00 + 37 * i) for i in range(30)) + ".com"  # 30 characters, over 63 as xn--...


@pytest.mark.parametrize(
    ("host", "why"),
    [
        ("\u05d0a.com", "Violation of BIDI requirement 2"),  # RFC 3454 §6: right-to-left and left-to-right mixed
        (LONG_ONCE_ENCODED, "label empty or too long"),  # RFC 1035 §2.3.4, counted after the ACE encoding
    ],
)
def test_a_name_idna_cannot_encode_says_what_the_codec_found(host: str, why: str) -> None:
    with pytest.raises(ValueError) as refused:
        check_host(host)
    message = str(refused.value)
    assert message.startswith(f"not a host name IDNA can encode: '{host}' (") and message.endswith(")"), message
    assert why in message and "codec failed" not in message, message
