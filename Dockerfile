# One image for every process of the dispatcher: the command picks the role (api, worker, flower).
# `docker build .` builds the product image (its last stage); the sandbox vendors, which are for trying the
# stack out and never for production, have a stage of their own (`--target sandbox`, the compose sandbox profile).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY vendors ./vendors
COPY dispatcher ./dispatcher
COPY workers ./workers
COPY cli ./cli
COPY client ./client
RUN pip install ./client . && useradd --system --uid 10001 otp

FROM base AS sandbox
COPY sandbox ./sandbox
RUN pip install --no-deps .
USER otp
ENTRYPOINT ["otp-dispatcher"]
CMD ["sandbox"]

FROM base AS product
USER otp
ENTRYPOINT ["otp-dispatcher"]
CMD ["api"]
