"""Where predictions go: MQTT publish, OPC UA write, HTTP post — each behind a bounded, drop-oldest queue."""
