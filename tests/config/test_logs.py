"""Log lines: JSON with the event's fields in production."""

import json
import logging

from config.logs import JsonFormatter
from tests.support import Api, Stack


def test_a_json_line_carries_the_message_and_the_event_fields() -> None:
    record = logging.LogRecord("workers.delivery", logging.INFO, __file__, 1, "otp %s done", ("abc",), None)
    record.otp_id, record.vendor, record.latency_ms = "abc", "d7", 12.5

    line = json.loads(JsonFormatter().format(record))

    assert (line["message"], line["level"], line["logger"]) == ("otp abc done", "INFO", "workers.delivery")
    assert (line["otp_id"], line["vendor"], line["latency_ms"]) == ("abc", "d7", 12.5)


async def test_the_worker_logs_each_attempt_as_one_json_line_with_its_fields(api: Api, stack: Stack) -> None:
    otp_id = await api.send()
    await api.delivered(otp_id)

    lines = [json.loads(line) for line in (stack.logs / "worker.log").read_text().splitlines() if line.startswith("{")]

    mine = [line for line in lines if line.get("otp_id") == otp_id]
    assert [(line["vendor"], line["outcome"]) for line in mine] == [("d7", "DELIVERED")]
    assert mine[0]["latency_ms"] >= 0
