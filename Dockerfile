# Image for docker-compose.yml (api and worker). CPU only; the OCR models ship inside the
# rapidocr-onnxruntime wheel, so nothing is downloaded at run time.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml ./
COPY models ./models
COPY extractors ./extractors
COPY worker ./worker
COPY nianbao ./nianbao
RUN pip install --no-cache-dir .
RUN useradd --create-home nianbao && mkdir -p /var/lib/nianbao && chown nianbao /var/lib/nianbao
USER nianbao
ENV NIANBAO_HOME=/var/lib/nianbao
EXPOSE 8000
CMD ["nianbao", "serve", "--host", "0.0.0.0", "--port", "8000"]
