"""The recorder (datafy/monitor/recorder.py): every failed attempt rescheduled or dead-lettered, and every outcome
counted in the minute's figures (real sender, receiver and Redis)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

from datafy.config import Settings
from datafy.model import Claim
from datafy.monitor.recorder import FIGURES_EVERY_SECONDS, Recorder
from datafy.monitor.sender import Sender, Sent
from datafy.store import Store
from datafy.store.stats import Figures
from datafy.webhook import DeliveryResult
from devtools.receiver import Receiver, Reply
from tests.support.delivery import attempt, sealed_claims


def test_a_failure_is_rescheduled_then_dead_lettered(
    settings: Settings, store: Store, sender: Sender, receiver: Receiver
) -> None:
    settings = replace(settings, webhook_retry_schedule=(0.0,))
    receiver.behaviour = lambda batch, nth: Reply(status=503)
    attempt(settings, store, sender, *sealed_claims(store, "u1"))
    [again] = store.outbox.claim(1, 10)  # rescheduled, not lost
    attempt(settings, store, sender, again)
    total, [letter] = store.dead_letters.page(0, 10)
    assert total == 1 and letter.info["attempts"] == 2 and letter.info["last_status"] == 503


def test_the_minute_figures_count_every_outcome_and_no_lag_for_a_replay(
    settings: Settings, store: Store, sender: Sender, receiver: Receiver
) -> None:
    settings = replace(settings, webhook_retry_schedule=(0.0,))
    recorder = Recorder(settings, store)
    receiver.behaviour = lambda batch, nth: Reply(status=503 if batch["user"] == "bad" else 200)

    def round_(*claims: Claim) -> None:
        done = threading.Event()
        sender.on_finished = done.set
        sender.submit(list(claims))
        finished: list = []
        while len(finished) < len(claims):
            assert done.wait(5)
            done.clear()
            finished += sender.take_finished()
        recorder.failed([sent for sent in finished if not sent.result.delivered])
        delivered = [sent for sent in finished if sent.result.delivered]
        assert all(store.outbox.ack_and_claim([sent.claim for sent in delivered], 0, 0)[0])
        recorder.delivered(delivered)

    round_(*sealed_claims(store, "good", "bad"))  # delivered, and a retry
    round_(*store.outbox.claim(1, 10))  # the retry fails again: dead letter
    [letter] = store.dead_letters.page(0, 10)[1]
    receiver.behaviour = lambda batch, nth: Reply()
    assert store.dead_letters.replay(letter.batch_id)
    round_(*store.outbox.claim(1, 10))  # the replay is delivered, hours late maybe, on an operator's word

    recorder.write_figures(force=True)  # as a stopping monitor does; a running one, once a second
    totals = Figures()
    for _, figures in store.stats.minutes(int(time.time()) // 60 * 60):
        totals.add(figures)
    assert (totals.delivered, totals.retry, totals.dead_letter) == (2, 1, 1)
    assert sum(totals.buckets) == 1 and totals.lag_ms(0.5) is not None  # the first delivery's lag only


def test_the_minute_figures_reach_redis_at_most_once_a_second(settings: Settings, store: Store) -> None:
    recorder = Recorder(settings, store)

    def delivered() -> float:
        totals = Figures()
        for _, figures in store.stats.minutes(int(time.time()) // 60 * 60 + 60):
            totals.add(figures)
        return totals.delivered

    claims = sealed_claims(store, "a", "b", "c")
    sent = [Sent(claim, DeliveryResult(True, 200, "", False, None, 1.0)) for claim in claims]
    recorder.delivered(sent[:1])
    assert delivered() == 1  # the first round writes at once
    recorder.delivered(sent[1:])
    recorder.write_figures()
    assert delivered() == 1  # within the second: held, not lost
    recorder.written -= FIGURES_EVERY_SECONDS
    recorder.write_figures()
    assert delivered() == 3
