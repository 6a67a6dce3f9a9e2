"""hume-kafka-bridge: Kafka media records -> Hume expression measurement -> Kafka outcome records.

Data flow, module by module:

    config        the frozen settings tree, read from the environment once
    source        Kafka consumer: where a record enters, pauses and resumes
    core/         pure logic: decode -> route per stream -> track offsets (no I/O, no clock)
    hume/         the upstream adapter: a pool of reconnecting Hume sessions
    sink          Kafka producer: where an outcome leaves and is acknowledged
    app           wires them together and owns every task; commits offsets
    metrics, log  Prometheus metrics and structlog JSON logging
    emulator/     a local Hume server for tests, demo and benchmark (never imported by the bridge)
"""

__version__ = "0.1.0"
