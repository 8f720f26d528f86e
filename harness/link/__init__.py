"""Link stage: bytes over a serial URL, frames, and the device protocol."""

import serial as _serial

# pyserial finds URL handlers by package: ours adds unix:// (harness/link/urlhandler/)
if "harness.link.urlhandler" not in _serial.protocol_handler_packages:
    _serial.protocol_handler_packages.append("harness.link.urlhandler")
