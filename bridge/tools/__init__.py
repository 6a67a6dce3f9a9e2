"""Tools around the service: the demo, produce, bench, the embedded broker, sample media and the Hume
emulator. The service (``hume-bridge run``) never imports this package; its dependencies are the
``tools`` extra, so the production image does not carry them."""
