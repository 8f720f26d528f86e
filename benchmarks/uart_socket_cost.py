"""Host CPU per UART byte as QEMU sends it: one byte per send, over TCP
loopback (QEMU's `-serial tcp:`, what hil used) and over a unix-domain
socket (`-serial unix:`, what it uses now), side by side in one run.

QEMU's UART models hand each byte the guest writes to the chardev on its
own, so a reply of ~120 bytes is ~120 sends. The sender here is a small C
program (built with the host's gcc, so Python's own cost per call does not
hide the kernel's), sending 1-byte messages while a thread reads them.

Usage: python benchmarks/uart_socket_cost.py [--bytes 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from pathlib import Path

SENDER_C = r"""
#define _GNU_SOURCE
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int reader_fd;

static void *drain(void *unused)
{
    char buffer[65536];
    (void)unused;
    while (read(reader_fd, buffer, sizeof buffer) > 0) {
    }
    return NULL;
}

static double thread_cpu_s(void)
{
    struct rusage usage;
    getrusage(RUSAGE_THREAD, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + 1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

int main(int argc, char **argv)
{
    long count = atol(argv[2]);
    int ends[2];
    if (strcmp(argv[1], "unix") == 0) {
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, ends) != 0)
            return 1;
    } else {
        struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t len = sizeof addr;
        int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);
        if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1) != 0 ||
            getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
            return 1;
        ends[0] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(ends[0], (struct sockaddr *)&addr, sizeof addr) != 0)
            return 1;
        ends[1] = accept(listener, NULL, NULL);
        setsockopt(ends[0], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* QEMU's nodelay=on */
    }
    reader_fd = ends[1];
    pthread_t reader;
    pthread_create(&reader, NULL, drain, NULL);
    double before = thread_cpu_s();
    for (long i = 0; i < count; i++) {
        char byte = (char)i;
        if (send(ends[0], &byte, 1, 0) != 1)
            return 1;
    }
    printf("%.3f\n", 1e6 * (thread_cpu_s() - before) / (double)count);
    shutdown(ends[0], SHUT_WR);
    pthread_join(reader, NULL);
    return 0;
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bytes", type=int, default=200_000, help="bytes sent per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements per transport, alternated")
    args = parser.parse_args()
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise SystemExit("needs a host C compiler: apt-get install -y gcc")
    with tempfile.TemporaryDirectory() as tmp:
        sender = Path(tmp) / "sender"
        subprocess.run([compiler, "-O2", "-pthread", "-x", "c", "-", "-o", str(sender)], input=SENDER_C,
                       text=True, check=True)
        per_byte: dict[str, list[float]] = {"tcp": [], "unix": []}
        for _ in range(args.repeats):
            for transport in per_byte:
                out = subprocess.run([str(sender), transport, str(args.bytes)], capture_output=True, text=True,
                                     check=True)
                per_byte[transport].append(float(out.stdout))
    print(f"sender CPU per 1-byte send, {args.bytes:,} bytes, {args.repeats} runs each (median, range):")
    for transport, values in per_byte.items():
        print(f"  {transport:5s} {statistics.median(values):.2f} us ({min(values):.2f}-{max(values):.2f})")
    ratio = statistics.median(per_byte["tcp"]) / statistics.median(per_byte["unix"])
    print(f"  tcp / unix: {ratio:.1f}x")


if __name__ == "__main__":
    main()
