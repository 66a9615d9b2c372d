# The lab's image: simulators (`ehrlab serve`), the integration service (`ehrlab service`), the scenario
# runner (`ehrlab run`) and locust (`--entrypoint locust`). Used by docker-compose.yml; see README.md,
# "Docker compose".
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

RUN useradd --create-home --uid 1000 --user-group --shell /usr/sbin/nologin ehrlab
WORKDIR /app

# Editable install: the package keeps the repository's layout under /app, so what the lab finds beside
# its code (scenarios/slas.yaml, the SLA catalogue) is where it is in a clone.
COPY pyproject.toml README.md ./
COPY harness ./harness
COPY integrations ./integrations
COPY simulators ./simulators
COPY loadtests ./loadtests
# `load` carries locust (the compose file's master and workers run it from this image).
ARG EXTRAS=load
RUN pip install -e ".[${EXTRAS}]"

COPY scenarios ./scenarios
RUN mkdir -p /app/reports /data && chown ehrlab:ehrlab /app/reports /data

USER ehrlab
ENTRYPOINT ["ehrlab"]
CMD ["--help"]
