import pytest

from dispatcher.sealing import Sealer


def test_a_sealed_value_opens_to_the_same_object() -> None:
    sealer = Sealer("secret")

    assert sealer.open(sealer.seal({"recipient": "+33612345678"})) == {"recipient": "+33612345678"}


def test_a_sealed_value_does_not_show_its_content() -> None:
    assert "33612345678" not in Sealer("secret").seal({"recipient": "+33612345678"})


def test_a_value_sealed_with_another_key_does_not_open() -> None:
    with pytest.raises(ValueError, match="cannot be opened"):
        Sealer("other").open(Sealer("secret").seal({"a": 1}))
