"""Routing: the vendors a send tries, in order, and why (policies, overrides, the reason each attempt keeps)."""

import random
from datetime import UTC, datetime

from config import ProviderSettings, Settings
from config.workflows import WorkflowStep
from dispatcher.schemas import Attempt, AttemptOutcome, ReceiptStatus
from dispatcher.store import Action, Evidence, Override
from workers.routing import Board, decide, decided, route, unconfirmed

FRENCH, BRITISH = "+33612345678", "+447700900123"


def chain(**extra: object) -> Settings:
    providers = [
        {"name": "d7", "kind": "d7", "base_url": "http://127.0.0.1:1", "api_token": "t"},
        {"name": "console", "kind": "console", "base_url": "http://127.0.0.1:1"},
        {"name": "india", "kind": "console", "base_url": "http://127.0.0.1:1", "countries": ["+91"]},
    ]
    return Settings.model_validate({"providers": providers, **extra})


def names(providers: tuple[ProviderSettings, ...]) -> list[str]:
    return [provider.name for provider in providers]


def test_the_route_is_the_chain_without_vendors_that_do_not_serve_the_country() -> None:
    assert names(route(chain(), "+33612345678")) == ["d7", "console"]


def test_a_country_route_puts_its_vendors_first() -> None:
    settings = chain(routes={"+91": ["india"], "+9198": ["console"]})

    assert names(route(settings, "+919012345678")) == ["india", "d7", "console"]
    assert names(route(settings, "+919812345678")) == ["console", "d7", "india"]


def test_the_vendor_that_delivered_last_leads_a_resend() -> None:
    assert names(route(chain(), "+33612345678", first="console")) == ["console", "d7"]


def test_a_disabled_vendor_is_not_routed_to() -> None:
    settings = Settings.model_validate(
        {"providers": [{"name": "c", "kind": "console", "base_url": "http://127.0.0.1:1", "enabled": False}]}
    )

    assert route(settings, "+33612345678") == ()


def two_vendors(**extra: object) -> Settings:
    providers = [
        {"name": "a", "kind": "console", "base_url": "http://127.0.0.1:1"},
        {"name": "b", "kind": "console", "base_url": "http://127.0.0.1:1"},
    ]
    return Settings.model_validate({"providers": providers, **extra})


ADAPTIVE = two_vendors(
    route_policies={"default": {"policy": "adaptive"}},
    routing={"exploration": 0, "min_trials": 0, "max_evidence": 10_000},
)
GOOD, BAD = Evidence(98, 2, 100), Evidence(70, 30, 100)


def first_vendors(settings: Settings, recipient: str, board: Board, draws: int = 200) -> set[str]:
    rng = random.Random(1)
    return {decide(settings, recipient, "SMS", "", None, board, rng).vendors[0].name for _ in range(draws)}


def test_the_ordered_policy_is_the_chain_of_today_and_needs_no_keeping() -> None:
    settings = chain(routes={"+33": ["console"]})

    decision = decide(settings, FRENCH, "SMS", "", None, Board(), random.Random(1))

    assert names(decision.vendors) == names(route(settings, FRENCH)) == ["console", "d7"]
    assert [(reason.policy, reason.rank, reason.score) for reason in decision.reasons] == [
        ("ordered", 1, None),
        ("ordered", 2, None),
    ]
    assert decision.reasons[0].reason == "ordered #1: the chain's order"
    assert decision.fixed


def test_adaptive_follows_the_evidence_of_the_numbers_country_and_the_channel() -> None:
    board = Board(
        evidence={
            ("+33", "SMS", "a"): BAD,
            ("+33", "SMS", "b"): GOOD,
            ("+44", "SMS", "a"): GOOD,
            ("+44", "SMS", "b"): BAD,
            ("+33", "WhatsApp", "a"): GOOD,
        }
    )

    assert first_vendors(ADAPTIVE, FRENCH, board) == {"b"}
    assert first_vendors(ADAPTIVE, BRITISH, board) == {"a"}


def test_an_adaptive_decision_says_its_draw_and_evidence_and_is_kept() -> None:
    board = Board(evidence={("+33", "SMS", "a"): BAD, ("+33", "SMS", "b"): GOOD})

    decision = decide(ADAPTIVE, FRENCH, "SMS", "", None, board, random.Random(1))

    lead = decision.reasons[0]
    assert (lead.policy, lead.rank, lead.successes, lead.failures) == ("adaptive", 1, 98, 2)
    assert lead.score is not None
    assert decision.reasons[1].score is not None
    assert lead.score > decision.reasons[1].score
    assert lead.reason == f"adaptive #1: drew {lead.score:.3f} from its posterior (98 converted, 2 failed)"
    assert not decision.fixed


def test_a_kept_decision_is_walked_again_by_the_same_send_only() -> None:
    decision = decide(ADAPTIVE, FRENCH, "SMS", "", None, Board(), random.Random(4))

    kept = decision.dumps(send_seq=2)

    assert decided(ADAPTIVE, FRENCH, kept, 2) == decision
    assert decided(ADAPTIVE, FRENCH, kept, 3) is None
    assert decided(ADAPTIVE, FRENCH, "", 2) is None


def test_a_banned_vendor_is_never_routed_to_in_its_country_and_the_reason_says_so() -> None:
    board = Board(overrides=[Override("+33", "*", "a", Action.BAN)])

    decision = decide(two_vendors(), FRENCH, "SMS", "", None, board, random.Random(1))

    assert names(decision.vendors) == ["b"]
    assert decision.reasons[0].banned == ["a"]
    assert decision.reasons[0].reason == "ordered #1: the chain's order; banned: a"
    assert names(decide(two_vendors(), BRITISH, "SMS", "", None, board, random.Random(1)).vendors) == ["a", "b"]


def test_a_pinned_vendor_leads_on_its_channel_only_whatever_the_scores() -> None:
    board = Board(
        evidence={("+33", "SMS", "a"): BAD, ("+33", "SMS", "b"): GOOD},
        overrides=[Override("+33", "SMS", "a", Action.PIN)],
    )

    on_sms = decide(ADAPTIVE, FRENCH, "SMS", "", None, board, random.Random(1))
    on_whatsapp = decide(two_vendors(), FRENCH, "WhatsApp", "", None, board, random.Random(1))

    assert names(on_sms.vendors) == ["a", "b"]
    assert (on_sms.reasons[0].pinned, on_sms.reasons[0].reason) == (True, "adaptive #1: pinned by an operator")
    assert not on_whatsapp.reasons[0].pinned


def test_a_pin_leads_before_the_vendor_that_took_the_previous_send() -> None:
    board = Board(overrides=[Override("+33", "*", "b", Action.PIN)])
    settings = chain()

    resend = decide(settings, FRENCH, "SMS", "console", None, Board(), random.Random(1))
    pinned = decide(two_vendors(), FRENCH, "SMS", "a", None, board, random.Random(1))

    assert names(resend.vendors) == ["console", "d7"]
    assert resend.reasons[0].reason == "ordered #1: took the previous send"
    assert names(pinned.vendors) == ["b", "a"]


def test_a_resends_previous_vendor_without_a_confirmed_send_is_tried_last_unless_pinned() -> None:
    pinned = Board(overrides=[Override("+33", "*", "a", Action.PIN)])

    resend = decide(two_vendors(), FRENCH, "SMS", "", None, Board(), random.Random(1), last="a")
    pinned_resend = decide(two_vendors(), FRENCH, "SMS", "", None, pinned, random.Random(1), last="a")

    assert names(resend.vendors) == ["b", "a"]
    assert [reason.reason for reason in resend.reasons] == [
        "ordered #1: the chain's order",
        "ordered #2: took the previous send, no delivered receipt: tried last",
    ]
    assert names(pinned_resend.vendors) == ["a", "b"]


def sent(send: int, vendor: str, receipt: ReceiptStatus, channel: str | None = None) -> Attempt:
    """An attempt of send ``send`` that ``vendor`` took, with its receipt."""
    return Attempt(
        send_number=send,
        vendor=vendor,
        started_at=datetime.now(UTC),
        latency_ms=1.0,
        outcome=AttemptOutcome.DELIVERED,
        channel=channel,
        receipt=receipt,
    )


def test_a_vendor_is_unconfirmed_when_no_delivered_receipt_came_for_its_latest_earlier_send_on_the_channel() -> None:
    attempts = [
        sent(1, "a", ReceiptStatus.UNDELIVERED),
        sent(1, "b", ReceiptStatus.NONE, channel="WhatsApp"),
        sent(2, "a", ReceiptStatus.DELIVERED),
        sent(2, "c", ReceiptStatus.NONE),
        sent(3, "d", ReceiptStatus.NONE),
    ]

    assert unconfirmed(attempts, 3, "SMS", "SMS") == {"c"}
    assert unconfirmed(attempts, 3, "WhatsApp", "SMS") == {"b"}
    assert unconfirmed(attempts, 2, "SMS", "SMS") == {"a"}


def test_a_workflow_step_naming_its_vendor_keeps_it_unless_it_is_banned() -> None:
    step = WorkflowStep(vendor="a")
    pin_b = Board(overrides=[Override("+33", "*", "b", Action.PIN)])
    ban_a = Board(overrides=[Override("+33", "*", "a", Action.BAN)])

    assert names(decide(ADAPTIVE, FRENCH, "SMS", "", step, pin_b, random.Random(1)).vendors) == ["a"]
    assert decide(ADAPTIVE, FRENCH, "SMS", "", step, ban_a, random.Random(1)).vendors == ()


def test_a_weighted_route_draws_its_first_vendor_by_weight() -> None:
    settings = two_vendors(route_policies={"+33": {"policy": "weighted", "weights": {"b": 1}}})

    decision = decide(settings, FRENCH, "SMS", "", None, Board(), random.Random(1))

    assert names(decision.vendors) == ["b", "a"]
    assert [reason.score for reason in decision.reasons] == [1.0, 0.0]
    assert decision.reasons[1].reason == "weighted #2: weight share 0.00, as a fallback"
