"""The connector health state machine, driven cycle by cycle on a fake clock."""

from __future__ import annotations

from datetime import timedelta

from fake_clock import START, FakeClock
from sentinel_signl4.engine.health import ConnectorHealth, CycleOutcome, HealthState, store_error_message
from sentinel_signl4.metrics import Metrics

CYCLE = 30  # seconds between cycles
NOT_FOUND = "NotFoundError: SIGNL4 answered 404 (code 3004): unknown team"


def quiet(**changes: object) -> CycleOutcome:
    """A cycle in which nothing failed and no page waits."""
    outcome = CycleOutcome(open_raises=0)
    for name, value in changes.items():
        setattr(outcome, name, value)
    return outcome


def test_a_refused_send_stays_error_over_quiet_cycles_until_a_send_succeeds() -> None:
    clock, health = FakeClock(), ConnectorHealth("contoso")
    health.record(clock(), quiet(config_errors={"send": NOT_FOUND}, open_raises=1, oldest_pending_at=clock()))
    failing_since = clock()
    states = []
    for _ in range(8):  # the row is not due again for a minute: these cycles attempt no send at all
        clock.advance(CYCLE)
        health.record(clock(), quiet(open_raises=1, oldest_pending_at=START, recovered={"poll", "outbox"}))
        states.append((health.state, health.reason))
    assert states == [(HealthState.ERROR, NOT_FOUND)] * 8
    assert health.since == failing_since and health.failing_since == failing_since
    assert health.last_success_at is None  # cycles ran, but none succeeded while the page could not go out
    clock.advance(CYCLE)
    health.record(clock(), quiet(recovered={"send"}))
    assert health.state is HealthState.OK and health.reason is None and health.last_success_at == clock()
    assert health.failing_since is None and health.since == clock()


def test_a_config_error_of_a_step_is_cleared_only_by_that_step_succeeding() -> None:
    clock, health = FakeClock(), ConnectorHealth("contoso")
    health.record(clock(), quiet(config_errors={"poll": "AuthError: AADSTS7000215"}))
    clock.advance(CYCLE)
    health.record(clock(), quiet(recovered={"inbox"}))  # poll skipped or not reached: no proof yet
    assert health.state is HealthState.ERROR and health.reason == "AuthError: AADSTS7000215"
    clock.advance(CYCLE)
    health.record(clock(), quiet(recovered={"poll"}))
    assert health.state is HealthState.OK


def test_a_dead_letter_keeps_error_across_cycles_until_it_is_gone() -> None:
    clock, health = FakeClock(), ConnectorHealth("contoso")
    for _ in range(5):
        health.record(clock(), quiet(dead_letters=1))
        assert health.state is HealthState.ERROR and "1 page(s) dead-lettered" in (health.reason or "")
        clock.advance(CYCLE)
    health.record(clock(), quiet())
    assert health.state is HealthState.OK and health.dead_letters == 0


def test_a_page_pending_past_stuck_after_is_an_error_and_the_threshold_is_configurable() -> None:
    clock = FakeClock()
    health = ConnectorHealth("contoso", stuck_after=timedelta(minutes=2))
    queued = clock()
    health.record(clock(), quiet(open_raises=1, oldest_pending_at=queued, retrying=1))
    assert health.state is HealthState.DEGRADED  # waiting for a retry, not stuck yet
    clock.advance(minutes=2, seconds=1)
    health.record(clock(), quiet(open_raises=1, oldest_pending_at=queued, retrying=1))
    assert health.state is HealthState.ERROR
    assert health.reason == "a page has been pending for 2 min (more than 2 min)"
    assert health.oldest_pending_age(clock()) == 121


def test_transient_failures_are_degraded_then_error_when_they_persist() -> None:
    clock, health = FakeClock(), ConnectorHealth("contoso")
    health.record(clock(), quiet(transient_error="TransientError: 503 from Sentinel"))
    assert health.state is HealthState.DEGRADED and health.reason == "TransientError: 503 from Sentinel"
    assert health.failing_since == START and health.last_success_at is None
    clock.advance(CYCLE)
    health.record(clock(), quiet())  # recovered
    assert health.state is HealthState.OK and health.last_success_at == clock()
    for _ in range(12):  # 5 min 30 s of failing cycles
        clock.advance(CYCLE)
        health.record(clock(), quiet(transient_error="TransientError: 503 from Sentinel"))
    assert health.state is HealthState.ERROR
    assert health.reason == "failing for 5 min: TransientError: 503 from Sentinel"


def test_failed_side_effects_are_degraded_not_ok() -> None:
    clock, health = FakeClock(), ConnectorHealth("contoso")
    health.record(clock(), quiet(failed_actions=2, retrying=2, open_raises=2, oldest_pending_at=clock()))
    assert health.state is HealthState.DEGRADED
    assert health.reason == "2 side effect(s) failed this cycle and will be retried"
    clock.advance(CYCLE)
    health.record(clock(), quiet(retrying=2, open_raises=2, oldest_pending_at=START))
    assert health.state is HealthState.DEGRADED and health.reason == "2 side effect(s) waiting for a retry"


def test_a_store_failure_is_an_error_with_its_message_and_keeps_the_last_known_figures() -> None:
    clock, health = FakeClock(), ConnectorHealth("contoso")
    health.record(clock(), quiet(dead_letters=2))
    clock.advance(CYCLE)
    health.record(clock(), CycleOutcome(store_error="store: OperationalError: database is locked"))
    assert health.state is HealthState.ERROR and health.reason == "store: OperationalError: database is locked"
    assert health.dead_letters == 2
    clock.advance(CYCLE)
    health.store_failed(clock(), "store: OperationalError: disk I/O error")
    assert health.state is HealthState.ERROR and health.reason == "store: OperationalError: disk I/O error"


def test_standby_names_the_holder_and_is_not_failing() -> None:
    clock, health = FakeClock(), ConnectorHealth("contoso")
    health.record(clock(), quiet(transient_error="TransientError: 503"))
    clock.advance(CYCLE)
    health.standby(clock(), "host-b:1:abcd1234")
    assert health.state is HealthState.STANDBY and health.reason == "lease held by host-b:1:abcd1234"
    assert health.failing_since is None


def test_store_error_message_drops_sql_and_dsn_passwords() -> None:
    from sqlalchemy.exc import OperationalError

    wrapped = OperationalError("INSERT INTO outbox VALUES (?)", {"p": "payload"},
                               Exception("could not connect to postgresql://s4:hunter2-pw@db:5432/s4"))
    message = store_error_message(wrapped)
    assert message == "store: Exception: could not connect to postgresql://s4:***@db:5432/s4"


def test_metrics_mirror_the_state() -> None:
    clock, metrics = FakeClock(), Metrics()
    health = ConnectorHealth("contoso", on_update=metrics.publish_health)

    def sample(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, {"connector": "contoso", **labels})

    health.record(clock(), quiet())
    assert sample("s4s_connector_state", state="ok") == 1
    assert sample("s4s_connector_last_success_timestamp_seconds") == START.timestamp()
    clock.advance(CYCLE)
    health.record(clock(), quiet(transient_error="TransientError: 503"))
    assert sample("s4s_connector_state", state="degraded") == 1
    assert sample("s4s_connector_state", state="ok") == 0
    assert sample("s4s_connector_up") == 1  # degraded still pages
    clock.advance(CYCLE)
    health.record(clock(), quiet(dead_letters=3, open_raises=1, oldest_pending_at=START))
    assert sample("s4s_connector_state", state="error") == 1
    assert sample("s4s_connector_state", state="degraded") == 0
    assert sample("s4s_connector_up") == 0
    assert sample("s4s_dead_letters") == 3
    assert sample("s4s_oldest_pending_page_age_seconds") == 2 * CYCLE
    assert sample("s4s_connector_last_success_timestamp_seconds") == START.timestamp()  # none since


def test_an_expiring_credential_degrades_and_an_expired_one_is_an_error() -> None:
    from sentinel_signl4.engine.credential_expiry import CredentialExpiry

    clock, health = FakeClock(), ConnectorHealth("contoso")
    health.credential = CredentialExpiry(START + timedelta(days=31), "certificate app.pem")
    health.record(clock(), quiet())
    assert health.state is HealthState.OK
    clock.advance(days=2)
    health.record(clock(), quiet())
    assert health.state is HealthState.DEGRADED
    assert health.reason == "certificate app.pem expires on 2026-12-27 (in 29 days): renew it"
    clock.advance(days=29)
    health.record(clock(), quiet())
    assert health.state is HealthState.ERROR and health.reason == "certificate app.pem expired on 2026-12-27"
