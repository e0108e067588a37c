# The orchestrator's worker and HTTP service: one image, two commands (incident-worker, incident-http).
FROM python:3.11-slim

# templates/ and examples/ are found next to settings.py: PYTHONPATH runs the source tree in /app,
# not the copy `pip install` puts in site-packages.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app

WORKDIR /app
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY . .
# Runtime dependencies only: no `[test]` extra.
RUN pip install . \
    && mkdir -p /app/.data \
    && chown app:app /app/.data

USER app
EXPOSE 8080 9464
CMD ["incident-worker"]
