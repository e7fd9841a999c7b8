"""Log output: one JSON object per line in production, plain text in ``dev``.

Fields passed as ``extra`` (otp_id, vendor, outcome, latency_ms, error_code) become JSON fields, so
logs can be searched by OTP or vendor. Numbers only ever reach a log masked (``vendors.phone.mask_number``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

FIELDS = ("otp_id", "vendor", "outcome", "latency_ms", "error_code")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event |= {name: getattr(record, name) for name in FIELDS if hasattr(record, name)}
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)


def configure_logging(log_format: Literal["json", "text"]) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
