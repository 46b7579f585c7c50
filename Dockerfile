# One image for the server-side services (ingest, api) and the gateway/simulator.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY telemetry telemetry
COPY coldchain coldchain
COPY firmware_sim firmware_sim
COPY gateway gateway
COPY ingest ingest
COPY erp_core erp_core
COPY dashboards dashboards
COPY coldtrace coldtrace
RUN pip install --no-cache-dir '.[all]'
ENTRYPOINT ["coldtrace"]
