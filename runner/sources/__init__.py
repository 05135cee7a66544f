"""Where field values come from: file replay, MQTT, OPC UA, Modbus TCP — each writes the Table."""
