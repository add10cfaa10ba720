"""OpenADR 2.0b VTN gateway: its own 2.0b codec on an httptools HTTP/1.1 server, VEN state in NATS KV mirrored in
memory, every fact published to JetStream before a VEN is told it was received."""
