"""Operations telemetry: Prometheus metrics, OpenTelemetry traces, structured logs."""
