"""OpenADR 2.0b VTN gateway: speaks to VENs through openleadr, keeps VEN state in NATS KV and
publishes every fact it learns to JetStream."""
