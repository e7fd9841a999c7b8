# One image for every process of the dispatcher: the command picks the role (api, worker, flower, sandbox).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY dispatcher ./dispatcher
COPY workers ./workers
RUN pip install . && useradd --system --uid 10001 otp
USER otp

ENTRYPOINT ["otp-dispatcher"]
CMD ["api"]
