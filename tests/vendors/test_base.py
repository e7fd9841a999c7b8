"""Every transport failure aiohttp can raise maps to exactly one error kind, by the documented rule: a request
that never left (or was answered) is temporary; one that may have left without an answer is outcome unknown."""

from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import client_exceptions

from vendors import OutcomeUnknown, Rejected, TemporaryError, VendorUnavailable
from vendors.base import transport_failure

KINDS = (TemporaryError, OutcomeUnknown, VendorUnavailable, Rejected)

NEVER_LEFT: set[type[BaseException]] = {
    aiohttp.ClientConnectorError,
    aiohttp.ClientConnectorDNSError,
    aiohttp.ClientConnectorSSLError,
    aiohttp.ClientConnectorCertificateError,
    aiohttp.ClientSSLError,
    aiohttp.ClientProxyConnectionError,
    client_exceptions.UnixClientConnectorError,
    aiohttp.ConnectionTimeoutError,
    aiohttp.ServerFingerprintMismatch,
    aiohttp.ClientHttpProxyError,
    aiohttp.ClientConnectionResetError,
    aiohttp.UploadAbortedError,
    aiohttp.InvalidURL,
    aiohttp.InvalidUrlClientError,
    aiohttp.InvalidUrlRedirectClientError,
    aiohttp.NonHttpUrlClientError,
    aiohttp.NonHttpUrlRedirectClientError,
}
"""No request reached the vendor."""
ANSWERED: set[type[BaseException]] = {
    aiohttp.ClientResponseError,
    aiohttp.ContentTypeError,
    aiohttp.TooManyRedirects,
    aiohttp.WSServerHandshakeError,
    aiohttp.RedirectClientError,
}
"""The vendor answered, with something aiohttp would not take."""
MAY_HAVE_LEFT: set[type[BaseException]] = {
    TimeoutError,
    aiohttp.ServerTimeoutError,
    aiohttp.SocketTimeoutError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ServerConnectionError,
    aiohttp.ClientConnectionError,
    aiohttp.ClientOSError,
    aiohttp.ClientPayloadError,
    aiohttp.ClientError,  # a failure aiohttp does not say more of
}
"""The request left, or may have, and no answer came."""


def name(cls: object) -> str:
    return cls.__name__ if isinstance(cls, type) else repr(cls)


def subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


RAISED = sorted({aiohttp.ClientError, *subclasses(aiohttp.ClientError), TimeoutError}, key=name)
"""Everything ``Provider.call`` may catch: every aiohttp client error this aiohttp has, and timeouts."""


def test_every_aiohttp_client_error_is_placed_by_the_rule() -> None:
    placed = NEVER_LEFT | ANSWERED | MAY_HAVE_LEFT

    unplaced = {name(cls) for cls in RAISED} - {name(cls) for cls in placed}

    assert not unplaced, f"aiohttp has new client errors: decide whether their request may have left: {unplaced}"


@pytest.mark.parametrize("cls", RAISED, ids=name)
def test_each_transport_failure_maps_to_exactly_one_kind(cls: type[BaseException]) -> None:
    error = transport_failure(cls.__new__(cls), "d7", 5.0)

    assert type(error) in KINDS


@pytest.mark.parametrize("cls", sorted(NEVER_LEFT | ANSWERED, key=name), ids=name)
def test_a_request_that_never_left_or_was_answered_is_temporary(cls: type[BaseException]) -> None:
    assert type(transport_failure(cls.__new__(cls), "d7", 5.0)) is TemporaryError


@pytest.mark.parametrize("cls", sorted(MAY_HAVE_LEFT, key=name), ids=name)
def test_a_request_that_may_have_left_without_an_answer_is_outcome_unknown(cls: type[BaseException]) -> None:
    error = transport_failure(cls.__new__(cls), "d7", 5.0)

    assert type(error) is OutcomeUnknown
    assert error.code == "NO_ANSWER"


def test_a_connection_that_failed_says_so_in_its_code() -> None:
    error = transport_failure(aiohttp.ClientConnectorError.__new__(aiohttp.ClientConnectorError), "d7", 5.0)

    assert (type(error), error.code) == (TemporaryError, "CONNECT_FAILED")
