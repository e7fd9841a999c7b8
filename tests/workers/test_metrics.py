"""The worker's metrics: the circuit gauge is read from the shared breakers at each scrape."""

from prometheus_client import CollectorRegistry

from workers.metrics import CircuitStates


def scrape(states: CircuitStates) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(states)
    return {
        sample.labels["vendor"]: sample.value
        for family in registry.collect()
        for sample in family.samples
        if family.name == "otp_circuit_open"
    }


def test_the_circuit_gauge_shows_each_vendors_state_as_read_at_the_scrape() -> None:
    states = CircuitStates()
    shared = {"d7": True, "octopush": False}
    states.read_from(lambda: shared)
    assert scrape(states) == {"d7": 1.0, "octopush": 0.0}

    shared["d7"] = False  # the breaker closed; nothing in this process called d7

    assert scrape(states) == {"d7": 0.0, "octopush": 0.0}


def test_a_scrape_while_redis_is_away_leaves_the_circuit_gauge_out() -> None:
    states = CircuitStates()

    def unreachable() -> dict[str, bool]:
        raise TimeoutError

    states.read_from(unreachable)

    assert scrape(states) == {}
