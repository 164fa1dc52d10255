"""One owner per bus: a silent device's circuit breaker, and the silence between two requests.

The poller's clock is passed in, so the breaker's schedule is checked without waiting for it; the
reads are real (a closed TCP port, then the simulator on it).
"""

from edge_store.bus import OPEN_AFTER, PROBE_FIRST_S, DevicePoller
from edge_store.link import Link
from edge_store.modbus_reader import Reader
from edge_store.registers import LIVE, STATS
from tests.samples import FROZEN, expected_values
from tests.support import free_port


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_silent_device_is_probed_with_a_growing_backoff_and_read_at_once_when_it_answers(start_simulator):
    port = free_port()
    clock = Clock()
    link = Link(f"tcp://127.0.0.1:{port}", timeout_s=0.3)
    reader = Reader(link=link, retries=2)
    poller = DevicePoller("side", reader, interval_s=0.5, slow_interval_s=60.0, probe_max_s=30.0, monotonic=clock)
    try:
        for n in range(OPEN_AFTER):
            assert poller.poll_due().result.values is None
            assert poller.backed_off == (n == OPEN_AFTER - 1)
            clock.now = poller.next_due()
        assert poller.probe_s == PROBE_FIRST_S
        waits = []
        for _ in range(4):  # each probe is one attempt, and the next one comes twice as late, up to probe_max_s
            clock.now = poller.next_due()
            before = link.requests
            reading = poller.poll_due()
            assert reading.group == LIVE and reading.result.values is None and len(reading.result.errors) == 1
            assert link.requests - before <= 1
            waits.append(poller.next_due() - clock.now)
            assert poller.poll_due() is None  # nothing due in between, not even the slow groups
        assert waits == [2 * PROBE_FIRST_S, 4 * PROBE_FIRST_S, 30.0, 30.0]
        start_simulator("--tcp", f"127.0.0.1:{port}", *FROZEN)
        clock.now = poller.next_due()
        reading = poller.poll_due()  # the probe answers: a sample
        assert reading.result.values["pv_voltage"] == expected_values()["pv_voltage"]
        assert not poller.backed_off and poller.failures_in_a_row == 0
        assert poller.poll_due().group == STATS  # and the slow groups at once
    finally:
        reader.close()


def test_the_link_keeps_the_silence_between_two_requests():
    clock = Clock()
    slept = []

    def sleep(s):
        slept.append(s)
        clock.now += s

    link = Link("/dev/null-bus", inter_request_s=0.02, sleep=sleep, monotonic=clock)
    link.quiet()  # the first request waits for nothing
    link.request_done()
    clock.now += 0.005
    link.quiet()
    link.request_done()
    clock.now += 0.05
    link.quiet()
    assert [round(s, 9) for s in slept] == [0.015]
