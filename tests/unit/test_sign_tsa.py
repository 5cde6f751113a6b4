"""The TSA client's checks (auditor/signing/tsa.py) on answers from the test TSA, no network.

The answers are real RFC 3161 responses made by tests/support/tsa_server.py; each check is
shown failing on the answer that breaks it.
"""

from __future__ import annotations

import hashlib

import pytest
import rfc3161_client

from auditor.errors import SigningError
from auditor.notary.timestamp import _precise_gen_time
from auditor.signing.tsa import _request, _token
from tests.support.tsa_server import Tsa

SIGNATURE = b"\x01" * 64


@pytest.fixture(scope="module")
def tsa() -> Tsa:
    return Tsa()


def test_a_good_answer_gives_a_token_over_the_signature(tsa: Tsa) -> None:
    body, nonce = _request(SIGNATURE)
    status, answer = tsa.answer(body)
    assert status == 200
    token = _token("tsa", answer, SIGNATURE, tsa.root, nonce)
    assert hashlib.sha256(SIGNATURE).digest() in token  # the imprint is inside the token


def test_a_replayed_answer_is_refused(tsa: Tsa) -> None:
    body, _ = _request(SIGNATURE)
    _, answer = tsa.answer(body)
    _, fresh_nonce = _request(SIGNATURE)  # a new request: the old answer has the old nonce
    with pytest.raises(SigningError, match="does not carry our nonce"):
        _token("tsa", answer, SIGNATURE, tsa.root, fresh_nonce)


def test_an_answer_for_other_bytes_is_refused(tsa: Tsa) -> None:
    body, nonce = _request(b"other bytes")
    _, answer = tsa.answer(body)
    with pytest.raises(SigningError, match="not over this signature"):
        _token("tsa", answer, SIGNATURE, tsa.root, nonce)


def test_an_answer_from_a_tsa_outside_the_given_root_is_refused(tsa: Tsa) -> None:
    stranger = Tsa()
    body, nonce = _request(SIGNATURE)
    _, answer = stranger.answer(body)
    with pytest.raises(SigningError, match="does not verify against --timestamp-root-cert"):
        _token("tsa", answer, SIGNATURE, tsa.root, nonce)


def test_gen_time_keeps_its_fraction(tsa: Tsa) -> None:
    """rfc3161-client rounds genTime down to the second; the verifier must not."""
    body, nonce = _request(SIGNATURE)
    _, answer = tsa.answer(body)
    token = _token("tsa", answer, SIGNATURE, tsa.root, nonce)
    coarse = rfc3161_client.decode_timestamp_response(answer).tst_info.gen_time
    assert _precise_gen_time(token, coarse) == tsa.last_gen_time  # milliseconds and all
    assert _precise_gen_time(b"not a token", coarse) == coarse
