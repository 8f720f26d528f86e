"""hil's own pyserial URL handlers (`serial.protocol_handler_packages`):
`unix://` for a unix-domain socket, which is how QEMU's UART reaches hil."""
