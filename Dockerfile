# Stackwatch service image. Build: docker build -t stackwatch .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app

# CPU-only torch first, so nothing pulls a CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY stackwatch ./stackwatch
RUN pip install .

RUN useradd --create-home --uid 10001 stackwatch && mkdir -p /data && chown stackwatch /data
USER stackwatch
VOLUME ["/data"]
EXPOSE 6066
ENTRYPOINT ["stackwatch"]
CMD ["up", "-c", "/etc/stackwatch/stackwatch.yaml"]
