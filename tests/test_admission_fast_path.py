"""Admission.try_acquire: the candidate loop takes a free slot without arming a timer, and
that shortcut must never jump the queue."""

from __future__ import annotations

import asyncio

from modelport.router import Admission


def test_a_free_slot_is_taken_at_once() -> None:
    admission = Admission(max_concurrent=2, max_queue=4, queue_timeout_s=1.0)
    assert admission.try_acquire()
    assert admission.try_acquire()
    assert admission.in_flight == 2
    assert not admission.try_acquire()  # full: the caller must wait in acquire()
    assert admission.in_flight == 2


async def test_a_queued_request_keeps_its_turn() -> None:
    admission = Admission(max_concurrent=1, max_queue=4, queue_timeout_s=5.0)
    assert admission.try_acquire()
    waiter = asyncio.create_task(admission.acquire())
    await asyncio.sleep(0)
    assert admission.queued == 1
    admission.release()  # the slot passes to the waiter, not to whoever asks next
    assert not admission.try_acquire()
    await waiter
    assert admission.in_flight == 1
    admission.release()
    assert admission.in_flight == 0
    assert admission.try_acquire()
